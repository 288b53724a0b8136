/**
 * Fixtures for the mechanism and vector tests: a fresh in-memory token per test (ava runs tests
 * concurrently), logged in as the user in a read/write session, and the PKCS#11 calls these tests
 * repeat — all through the emulator's pkcs11js-shaped surface.
 */
import type { ExecutionContext } from "ava";
import { Emulator } from "../../emulator/emulator.js";
import { pkcs11, type Handle, type Mechanism, type Template } from "../../emulator/pkcs11.js";

export const P = pkcs11;
/** scrypt N=16, r=1, p=1: the PIN is not what these tests exercise. */
export const FAST_KDF = { N: 16, r: 1, p: 1 };

export interface Token {
  p11: Emulator;
  slot: Handle;
  session: Handle;
}

export function openToken(t: ExecutionContext): Token {
  const p11 = new Emulator({ kdf: FAST_KDF, slots: [{ token: { label: "mechanisms", soPin: "12345678", userPin: "1234" } }] });
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true)[0]!;
  const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  p11.C_Login(session, P.CKU_USER, "1234");
  t.teardown(() => p11.close());
  return { p11, slot, session };
}

/** The CKR code a call fails with (the test fails if it succeeds or throws something else). */
export function ckr(t: ExecutionContext, body: () => unknown): number {
  const error = t.throws(body);
  if (!(error instanceof P.Pkcs11Error)) {
    t.fail(`expected a Pkcs11Error, got ${String(error)}`);
    return -1;
  }
  return error.code;
}

/** Asserts the call fails with `rv` (by code and name). */
export function throwsCkr(t: ExecutionContext, body: () => unknown, rv: number, message?: string): void {
  const error = t.throws(body, undefined, message);
  t.true(error instanceof P.Pkcs11Error, message);
  t.is((error as { code?: number } | undefined)?.code, rv, message);
}

export function attr(token: Token, object: Handle, type: number): Buffer {
  return token.p11.C_GetAttributeValue(token.session, object, [{ type }])[0]!.value;
}

export function ulongAttr(token: Token, object: Handle, type: number): number {
  return Number(attr(token, object, type).readBigUInt64LE());
}

export function boolAttr(token: Token, object: Handle, type: number): boolean {
  return attr(token, object, type)[0] === 1;
}

/** A session secret key made with C_CreateObject; usable for everything, extractable and not sensitive unless `extra` says so. */
export function secretKey(token: Token, value: Buffer, keyType: number = P.CKK_GENERIC_SECRET, extra: Template = []): Handle {
  const given = new Set(extra.map((a) => a.type));
  const defaults: Template = [
    { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true }, { type: P.CKA_SIGN, value: true },
    { type: P.CKA_VERIFY, value: true }, { type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true },
    { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
  ].filter((a) => !given.has(a.type));
  return token.p11.C_CreateObject(token.session, [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: keyType }, { type: P.CKA_VALUE, value }, ...defaults, ...extra,
  ]);
}

export function encrypt(token: Token, mechanism: Mechanism, key: Handle, data: Buffer): Buffer {
  token.p11.C_EncryptInit(token.session, mechanism, key);
  return Buffer.from(token.p11.C_Encrypt(token.session, data, Buffer.alloc(data.length + 1024)));
}

export function decrypt(token: Token, mechanism: Mechanism, key: Handle, data: Buffer): Buffer {
  token.p11.C_DecryptInit(token.session, mechanism, key);
  return Buffer.from(token.p11.C_Decrypt(token.session, data, Buffer.alloc(data.length + 1024)));
}

/** Multi-part: the input in `chunks`-sized updates, then final. */
export function encryptParts(token: Token, mechanism: Mechanism, key: Handle, data: Buffer, chunks: number[]): Buffer {
  token.p11.C_EncryptInit(token.session, mechanism, key);
  return Buffer.concat([...split(data, chunks).map((part) => Buffer.from(token.p11.C_EncryptUpdate(token.session, part, Buffer.alloc(part.length + 64)))),
    Buffer.from(token.p11.C_EncryptFinal(token.session, Buffer.alloc(64)))]);
}

export function decryptParts(token: Token, mechanism: Mechanism, key: Handle, data: Buffer, chunks: number[]): Buffer {
  token.p11.C_DecryptInit(token.session, mechanism, key);
  return Buffer.concat([...split(data, chunks).map((part) => Buffer.from(token.p11.C_DecryptUpdate(token.session, part, Buffer.alloc(part.length + 64)))),
    Buffer.from(token.p11.C_DecryptFinal(token.session, Buffer.alloc(64)))]);
}

/** `data` cut into pieces of the given sizes, cycling, until it is used up. */
export function split(data: Buffer, chunks: number[]): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const size = chunks[i % chunks.length]!;
    parts.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return parts;
}

export function sign(token: Token, mechanism: Mechanism, key: Handle, data: Buffer): Buffer {
  token.p11.C_SignInit(token.session, mechanism, key);
  return Buffer.from(token.p11.C_Sign(token.session, data, Buffer.alloc(1024)));
}

export function signParts(token: Token, mechanism: Mechanism, key: Handle, data: Buffer, chunks: number[]): Buffer {
  token.p11.C_SignInit(token.session, mechanism, key);
  for (const part of split(data, chunks)) token.p11.C_SignUpdate(token.session, part);
  return Buffer.from(token.p11.C_SignFinal(token.session, Buffer.alloc(1024)));
}

/** C_Verify: true, or the CKR code it failed with. */
export function verify(token: Token, mechanism: Mechanism, key: Handle, data: Buffer, signature: Buffer): true | number {
  token.p11.C_VerifyInit(token.session, mechanism, key);
  try {
    return token.p11.C_Verify(token.session, data, signature) as true;
  } catch (error) {
    if (error instanceof P.Pkcs11Error) return error.code;
    throw error;
  }
}

export function verifyParts(token: Token, mechanism: Mechanism, key: Handle, data: Buffer, signature: Buffer, chunks: number[]): true | number {
  token.p11.C_VerifyInit(token.session, mechanism, key);
  try {
    for (const part of split(data, chunks)) token.p11.C_VerifyUpdate(token.session, part);
    return token.p11.C_VerifyFinal(token.session, signature) as true;
  } catch (error) {
    if (error instanceof P.Pkcs11Error) return error.code;
    throw error;
  }
}

export interface KeyPairHandles {
  publicKey: Handle;
  privateKey: Handle;
}

/** An RSA key pair (session objects), private key extractable and not sensitive unless `privateExtra` says so. */
export function rsaPair(token: Token, bits = 2048, publicExtra: Template = [], privateExtra: Template = []): KeyPairHandles {
  return token.p11.C_GenerateKeyPair(token.session, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN }, [
    { type: P.CKA_MODULUS_BITS, value: bits },
    ...withDefaults(publicExtra, [{ type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_VERIFY, value: true }, { type: P.CKA_WRAP, value: true }]),
  ], withDefaults(privateExtra, [
    { type: P.CKA_DECRYPT, value: true }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_UNWRAP, value: true },
    { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
  ]));
}

/** An EC key pair on the curve whose DER OID is `params`. */
export function ecPair(token: Token, params: Buffer, publicExtra: Template = [], privateExtra: Template = []): KeyPairHandles {
  return token.p11.C_GenerateKeyPair(token.session, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, [
    { type: P.CKA_EC_PARAMS, value: params }, ...withDefaults(publicExtra, [{ type: P.CKA_VERIFY, value: true }]),
  ], withDefaults(privateExtra, [
    { type: P.CKA_SIGN, value: true }, { type: P.CKA_DERIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: false },
  ]));
}

function withDefaults(extra: Template, defaults: Template): Template {
  const given = new Set(extra.map((a) => a.type));
  return [...defaults.filter((a) => !given.has(a.type)), ...extra];
}

/** DER OIDs of the named curves (CKA_EC_PARAMS). */
export const P256 = Buffer.from("06082a8648ce3d030107", "hex");
export const P384 = Buffer.from("06052b81040022", "hex");
export const P521 = Buffer.from("06052b81040023", "hex");
/** secp256k1: a well-formed OID of a curve this token does not offer. */
export const SECP256K1 = Buffer.from("06052b8104000a", "hex");
