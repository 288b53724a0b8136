/**
 * What a mechanism family provides to the function layer. Families live one per file beside
 * this one (aes.ts, …) and register in registry.ts; the functions in emulator/functions/ check
 * sessions, handles, key usage flags and CKA_ALLOWED_MECHANISMS, then call these.
 */
import type { Mechanism } from "../pkcs11.js";
import type { ObjectMaterial, P11Object } from "../objects/object.js";

/** A cipher operation (C_Encrypt*, C_Decrypt*). Lengths are upper bounds, for CKR_BUFFER_TOO_SMALL checks. */
export interface CipherOperation {
  /** Single-part: the whole input at once. */
  once(input: Buffer): Buffer;
  /** Single-part straight into the caller's buffer (at least onceLength bytes); returns the written prefix. */
  onceInto?(input: Buffer, out: Buffer): Buffer;
  onceLength(inputLength: number): number;
  update(input: Buffer): Buffer;
  updateLength(inputLength: number): number;
  final(): Buffer;
  finalLength(): number;
  abort?(): void;
}

export interface SignOperation {
  /** A single-part mechanism (v2.40 Current Mechanisms table 2: CKM_RSA_PKCS, CKM_ECDSA): C_SignUpdate is refused. */
  singlePart?: true;
  update(input: Buffer): void;
  final(): Buffer;
  length(): number;
  abort?(): void;
}

export interface VerifyOperation {
  /** As SignOperation's: C_VerifyUpdate is refused. */
  singlePart?: true;
  update(input: Buffer): void;
  /** False for a signature that does not verify (C_Verify then returns CKR_SIGNATURE_INVALID). */
  final(signature: Buffer): boolean;
  abort?(): void;
}

export interface DigestOperation {
  update(input: Buffer): void;
  final(): Buffer;
  length(): number;
  abort?(): void;
}

/** A new key's material plus the attributes the mechanism fixes (class, type, length, …). */
export interface NewKey {
  fixed: Map<number, Buffer>;
  material: ObjectMaterial;
}

export interface MechanismFamily {
  /** CK_MECHANISM_INFO: key sizes in the unit the spec gives for the mechanism, and CKF_ flags. */
  info: { minKeySize: number; maxKeySize: number; flags: number };
  /** Key types (CKK_) this mechanism accepts, for CKR_KEY_TYPE_INCONSISTENT. */
  keyTypes?: readonly number[];
  encrypt?(key: P11Object, mechanism: Mechanism): CipherOperation;
  decrypt?(key: P11Object, mechanism: Mechanism): CipherOperation;
  sign?(key: P11Object, mechanism: Mechanism): SignOperation;
  verify?(key: P11Object, mechanism: Mechanism): VerifyOperation;
  digest?(mechanism: Mechanism): DigestOperation;
  generateKey?(template: Map<number, Buffer>, mechanism: Mechanism): NewKey;
  generateKeyPair?(publicTemplate: Map<number, Buffer>, privateTemplate: Map<number, Buffer>, mechanism: Mechanism): { publicKey: NewKey; privateKey: NewKey };
  wrap?(wrappingKey: P11Object, key: P11Object, mechanism: Mechanism): Buffer;
  /** Recovers key material; `template` is the caller's (class and key type decide the parse). */
  unwrap?(unwrappingKey: P11Object, wrapped: Buffer, template: Map<number, Buffer>, mechanism: Mechanism): NewKey;
  derive?(baseKey: P11Object, template: Map<number, Buffer>, mechanism: Mechanism): NewKey;
}
