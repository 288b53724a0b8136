/**
 * Objects on the token and the attribute rules of PKCS#11 v2.40 §4 applied to them: building an
 * object's attributes for C_CreateObject / C_GenerateKey(Pair) / C_UnwrapKey / C_CopyObject,
 * C_SetAttributeValue's rules (read-only attributes, SENSITIVE only to true, EXTRACTABLE only
 * to false, TRUSTED by the SO only), and C_GetAttributeValue's (sensitive values never leave).
 *
 * Secret values are not attributes here: a secret key's CKA_VALUE lives in a native key slot,
 * an asymmetric private key in a node:crypto KeyObject (OpenSSL memory); they are read only
 * through readSecret, and only when footnote 7 allows.
 */
import type { KeyObject } from "node:crypto";
import { exportKeyBytes, type KeyHandle } from "../../src/crypto/keys.js";
import { CkrError } from "../errors.js";
import { pkcs11 } from "../pkcs11.js";
import { FALSE, TRUE, readBool, readUlong, ulong } from "./attributes.js";
import { CHANGEABLE_AT_COPY, DEFAULTS, NO_KEY_GEN_MECHANISM, tableFor, type AttributeTable, type Footnote } from "./rules.js";

const P = pkcs11;

export type ObjectMaterial =
  | { kind: "none" }
  | { kind: "secret"; key: KeyHandle }
  | { kind: "private"; key: KeyObject; publicKey: KeyObject }
  | { kind: "public"; key: KeyObject };

/** How an object comes to be, which decides the footnotes that apply (1/2, 3/4, 5/6). */
export type Origin = "create" | "generate" | "unwrap" | "copy" | "derive";

export class P11Object {
  constructor(
    public handle: number,
    readonly attrs: Map<number, Buffer>,
    public material: ObjectMaterial,
    /** Owning session for session objects; undefined for token objects. */
    public session: number | undefined,
  ) {}

  /**
   * CKA_CLASS and CKA_KEY_TYPE cannot change once the object exists (no footnote 8: neither
   * C_SetAttributeValue nor C_CopyObject may set them), so they are decoded once; every
   * C_*Init reads the key's type.
   */
  #objectClass: number | undefined;
  #keyType: number | null | undefined;

  get objectClass(): number {
    return (this.#objectClass ??= readUlong(this.attrs.get(P.CKA_CLASS)!));
  }
  get keyType(): number | undefined {
    if (this.#keyType === undefined) {
      const value = this.attrs.get(P.CKA_KEY_TYPE);
      this.#keyType = value === undefined ? null : readUlong(value);
    }
    return this.#keyType ?? undefined;
  }
  get isToken(): boolean {
    return readBool(this.attrs.get(P.CKA_TOKEN));
  }
  get isPrivate(): boolean {
    return readBool(this.attrs.get(P.CKA_PRIVATE));
  }
  flag(type: number): boolean {
    return readBool(this.attrs.get(type));
  }
  get table(): AttributeTable {
    return tableFor(this.objectClass, this.keyType)!;
  }
  /** The key slot of a secret key; CKR_KEY_TYPE_INCONSISTENT for anything else. */
  secretKey(): KeyHandle {
    if (this.material.kind !== "secret") throw new CkrError(P.CKR_KEY_TYPE_INCONSISTENT, "not a secret key");
    return this.material.key;
  }
  /** Whether footnote-7 values may be revealed: neither sensitive nor unextractable. */
  get revealable(): boolean {
    return !this.flag(P.CKA_SENSITIVE) && this.flag(P.CKA_EXTRACTABLE);
  }
  /**
   * Operations (C_*Init to their end) that hold this object's key. An object destroyed meanwhile
   * (C_DestroyObject, its session closed, a logout) keeps its key until the last of them ends: the
   * operation runs on, as on SoftHSMv2, whose operations hold their own copy of the key. Before,
   * an AES-GCM operation failed with CKR_KEY_HANDLE_INVALID there while CBC and HMAC ones, which
   * keep an OpenSSL context of their own, carried on.
   */
  #users = 0;
  #destroyPending = false;

  /** An operation begins with this key. */
  use(): void {
    this.#users++;
  }

  /** An operation that began with this key has ended. */
  unuse(): void {
    if (--this.#users === 0 && this.#destroyPending) this.#release();
  }

  /** Frees native key material, once no operation holds it. */
  destroy(): void {
    if (this.#users > 0) this.#destroyPending = true;
    else this.#release();
  }

  #release(): void {
    this.#destroyPending = false;
    if (this.material.kind === "secret") this.material.key.destroy();
    this.material = { kind: "none" };
  }
}

/** Object classes this token holds (those with an attribute table in rules.ts). */
const CLASSES: ReadonlySet<number> = new Set([P.CKO_DATA, P.CKO_SECRET_KEY, P.CKO_PUBLIC_KEY, P.CKO_PRIVATE_KEY]);

export interface BuildContext {
  origin: Origin;
  /** The caller is logged in as SO (footnote 10). */
  isSO: boolean;
  /** Attributes the operation itself determines (class, key type, length, local, mechanism…). */
  fixed?: Map<number, Buffer>;
}

function notes(table: AttributeTable, type: number): ReadonlySet<Footnote> {
  return table.get(type) ?? new Set();
}

/**
 * Checks a caller's template against the rules for its object kind and fills in defaults.
 * Returns the full attribute map (without secret values, which the caller stores as material).
 */
export function buildAttributes(template: Map<number, Buffer>, context: BuildContext): Map<number, Buffer> {
  const fixed = context.fixed ?? new Map<number, Buffer>();
  const classValue = fixed.get(P.CKA_CLASS) ?? template.get(P.CKA_CLASS);
  if (classValue === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_CLASS missing");
  const objectClass = readUlong(classValue);
  // §4.1.1 rule 2: a class this token holds no objects of is an invalid CKA_CLASS value, not a
  // template missing the CKA_KEY_TYPE that only key classes have.
  if (!CLASSES.has(objectClass)) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, `object class 0x${objectClass.toString(16)} not supported by this token`);
  const keyTypeValue = fixed.get(P.CKA_KEY_TYPE) ?? template.get(P.CKA_KEY_TYPE);
  if (objectClass !== P.CKO_DATA && keyTypeValue === undefined) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_KEY_TYPE missing");
  const table = tableFor(objectClass, keyTypeValue === undefined ? undefined : readUlong(keyTypeValue));
  if (table === undefined) {
    throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "key type not supported by this token for this class");
  }
  const forbidden: Footnote = context.origin === "create" ? 2 : context.origin === "generate" ? 4 : 6;
  const required: Footnote | undefined = context.origin === "create" ? 1 : context.origin === "generate" ? 3 : context.origin === "unwrap" ? 5 : undefined;

  const attrs = new Map<number, Buffer>();
  for (const [type, value] of template) {
    if (!table.has(type)) throw new CkrError(P.CKR_ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)} not valid for this object`);
    const footnotes = notes(table, type);
    // SoftHSMv2 reports a "MUST NOT be specified" attribute as read-only — also one the operation
    // sets itself (CKA_KEY_GEN_MECHANISM at generation): the caller's value is not silently replaced.
    if ((context.origin === "create" || context.origin === "generate" || context.origin === "unwrap") && footnotes.has(forbidden)) {
      throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, `attribute 0x${type.toString(16)} may not be specified here`);
    }
    if (footnotes.has(10) && readBool(value) && !context.isSO) {
      throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "only the SO may set CKA_TRUSTED");
    }
    attrs.set(type, value);
  }
  for (const [type, value] of fixed) attrs.set(type, value);
  if (required !== undefined) {
    for (const [type, footnotes] of table) {
      if (footnotes.has(required) && !attrs.has(type) && !secretValueTypes(objectClass).has(type)) {
        throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, `attribute 0x${type.toString(16)} is required`);
      }
    }
  }
  for (const type of table.keys()) {
    if (attrs.has(type) || secretValueTypes(objectClass).has(type)) continue;
    const value = DEFAULTS.get(type);
    if (value !== undefined) attrs.set(type, value);
  }
  // Computed attributes (§4.7, §4.9, §4.10).
  const isKey = objectClass !== P.CKO_DATA;
  if (isKey) {
    const local = context.origin === "generate";
    attrs.set(P.CKA_LOCAL, local ? TRUE : FALSE);
    if (!attrs.has(P.CKA_KEY_GEN_MECHANISM)) attrs.set(P.CKA_KEY_GEN_MECHANISM, NO_KEY_GEN_MECHANISM);
    if (table.has(P.CKA_ALWAYS_SENSITIVE)) {
      const sensitive = readBool(attrs.get(P.CKA_SENSITIVE));
      const extractable = readBool(attrs.get(P.CKA_EXTRACTABLE));
      // Generated keys: as they are now. Created or unwrapped: the token cannot vouch for history.
      attrs.set(P.CKA_ALWAYS_SENSITIVE, local && sensitive ? TRUE : FALSE);
      attrs.set(P.CKA_NEVER_EXTRACTABLE, local && !extractable ? TRUE : FALSE);
    }
  }
  return attrs;
}

/** Attribute types whose values are key material, held outside the attribute map. */
export function secretValueTypes(objectClass: number): ReadonlySet<number> {
  if (objectClass === P.CKO_SECRET_KEY) return SECRET_TYPES;
  if (objectClass === P.CKO_PRIVATE_KEY) return PRIVATE_TYPES;
  return NONE;
}
const SECRET_TYPES: ReadonlySet<number> = new Set([P.CKA_VALUE]);
const PRIVATE_TYPES: ReadonlySet<number> = new Set([
  P.CKA_VALUE, P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_PRIME_2, P.CKA_EXPONENT_1, P.CKA_EXPONENT_2, P.CKA_COEFFICIENT,
]);
const NONE: ReadonlySet<number> = new Set();

/**
 * C_SetAttributeValue / C_CopyObject changes: only footnote-8 attributes change (and those of
 * CHANGEABLE_AT_COPY on copy); footnote 11 only to true, 12 only to false; 10 (TRUSTED) by the
 * SO only, in either direction: the attribute has no footnote 8, so the SO's trust in a key is
 * no one else's to withdraw. Returns the new attribute map; the object is untouched if anything
 * is refused.
 */
export function applyChanges(object: P11Object, changes: Map<number, Buffer>, context: { copy: boolean; isSO: boolean }): Map<number, Buffer> {
  const table = object.table;
  const next = new Map(object.attrs);
  for (const [type, value] of changes) {
    if (!table.has(type)) throw new CkrError(P.CKR_ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)} not valid for this object`);
    const footnotes = notes(table, type);
    const current = object.attrs.get(type);
    const same = current !== undefined && current.equals(value);
    const copyOnly = context.copy && CHANGEABLE_AT_COPY.has(type);
    if (footnotes.has(10)) {
      if (!same && !context.isSO) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "only the SO may change CKA_TRUSTED");
    } else if (footnotes.has(11) && footnotes.has(8)) {
      if (readBool(current) && !readBool(value)) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "attribute cannot return to false");
    } else if (footnotes.has(12)) {
      if (!readBool(current) && readBool(value)) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "attribute cannot return to true");
    } else if (footnotes.has(11)) {
      if (readBool(current) && !readBool(value)) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "attribute cannot return to false");
    } else if (!footnotes.has(8) && !copyOnly && !same) {
      throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, `attribute 0x${type.toString(16)} is read-only`);
    }
    if (secretValueTypes(object.objectClass).has(type)) throw new CkrError(P.CKR_ATTRIBUTE_READ_ONLY, "key material is read-only");
    next.set(type, value);
  }
  // Derived flags (§4.9, §4.10): once not sensitive / once extractable, history is lost.
  if (table.has(P.CKA_ALWAYS_SENSITIVE)) {
    if (!readBool(next.get(P.CKA_SENSITIVE))) next.set(P.CKA_ALWAYS_SENSITIVE, FALSE);
    if (readBool(next.get(P.CKA_EXTRACTABLE))) next.set(P.CKA_NEVER_EXTRACTABLE, FALSE);
  }
  return next;
}

/**
 * One attribute's value for C_GetAttributeValue. Throws CKR_ATTRIBUTE_TYPE_INVALID for an
 * attribute this object does not have and CKR_ATTRIBUTE_SENSITIVE for a footnote-7 value of a
 * sensitive or unextractable key.
 */
export function readAttribute(object: P11Object, type: number): Buffer {
  const table = object.table;
  if (!table.has(type)) throw new CkrError(P.CKR_ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)}`);
  if (notes(table, type).has(7) && !object.revealable) throw new CkrError(P.CKR_ATTRIBUTE_SENSITIVE, `attribute 0x${type.toString(16)}`);
  if (secretValueTypes(object.objectClass).has(type)) return readSecret(object, type);
  const value = object.attrs.get(type);
  if (value === undefined) throw new CkrError(P.CKR_ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)} has no value`);
  // A copy, as pkcs11js gives: stored values are shared (between objects too, see interned()),
  // and a caller writing into the one it was handed would change them all.
  return Buffer.from(value);
}

const JWK_FIELDS = new Map<number, string>([
  [P.CKA_PRIVATE_EXPONENT, "d"], [P.CKA_PRIME_1, "p"], [P.CKA_PRIME_2, "q"],
  [P.CKA_EXPONENT_1, "dp"], [P.CKA_EXPONENT_2, "dq"], [P.CKA_COEFFICIENT, "qi"],
]);

function readSecret(object: P11Object, type: number): Buffer {
  const material = object.material;
  if (material.kind === "secret") return exportKeyBytes(material.key);
  if (material.kind === "private") {
    const jwk = material.key.export({ format: "jwk" }) as Record<string, string | undefined>;
    const field = object.keyType === P.CKK_EC ? "d" : JWK_FIELDS.get(type);
    const encoded = field === undefined ? undefined : jwk[field];
    if (encoded !== undefined) return Buffer.from(encoded, "base64url");
  }
  throw new CkrError(P.CKR_ATTRIBUTE_TYPE_INVALID, `attribute 0x${type.toString(16)} has no value`);
}

/** Does `object` match every attribute of `template` byte for byte (C_FindObjects)? */
export function matches(object: P11Object, template: Map<number, Buffer>): boolean {
  for (const [type, value] of template) {
    if (secretValueTypes(object.objectClass).has(type)) {
      // Finding by key value would reveal it; SoftHSMv2 compares only stored attributes too.
      return false;
    }
    const own = object.attrs.get(type);
    if (own === undefined || !own.equals(value)) return false;
  }
  return true;
}

export { ulong };
