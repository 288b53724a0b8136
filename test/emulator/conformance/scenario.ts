/**
 * The conformance suite's shape: scenarios written once against the pkcs11js surface, and the
 * helpers they share. Two drivers run every scenario — emulator.test.ts against a fresh Emulator,
 * softhsm.test.ts against a fresh SoftHSMv2 token — with the same assertions.
 *
 * Where the two tokens legitimately differ, a scenario says so at the assertion, through
 * {@link byTarget}: each side's expected behaviour and why (which one the specification
 * backs, or that it leaves room). Where a token lacks a mechanism (the emulator's families still
 * landing, a SoftHSMv2 build without some), {@link offers} logs a note and the scenario ends
 * there with a pass: a missing mechanism is reported, not failed.
 */
import type { ExecutionContext } from "ava";
import { constantName, pkcs11, type Handle, type PKCS11, type Template } from "../../../emulator/pkcs11.js";

export const P = pkcs11;

export type TargetName = "emulator" | "softhsm";

/** A fresh token: initialized with the SO and user PINs, nobody logged in, no session open. */
export interface TokenUnderTest {
  readonly target: TargetName;
  readonly p11: PKCS11;
  readonly slot: Handle;
  readonly label: string;
  readonly soPin: string;
  readonly userPin: string;
  /** The slot's C_GetMechanismList, read when the token was made. */
  readonly mechanisms: ReadonlySet<number>;
}

export interface Scenario {
  /** Grouping in the test title: "sessions", "login", "objects", … */
  readonly area: string;
  readonly title: string;
  /** Targets the scenario cannot run on at all, with the reason (the driver registers a skipped test saying so). */
  readonly skip?: Partial<Record<TargetName, string>>;
  run(t: ExecutionContext, token: TokenUnderTest): void | Promise<void>;
}

/** CK_SESSION_INFO.state values (pkcs11js exports none). */
export const CKS = { RO_PUBLIC: 0, RO_USER: 1, RW_PUBLIC: 2, RW_USER: 3, RW_SO: 4 } as const;
/** CK_UNAVAILABLE_INFORMATION as a CK_ULONG attribute value (8 bytes LE). */
export const UNAVAILABLE_ULONG = Buffer.alloc(8, 0xff);
/** CKM_AES_KEY_WRAP_KWP (v3.0), which pkcs11js 2.1.7 lacks. */
export const CKM_AES_KEY_WRAP_KWP = 0x210b;
/** CKR_ACTION_PROHIBITED (v2.40), which pkcs11js 2.1.7 lacks. */
export const CKR_ACTION_PROHIBITED = 0x1b;

export function rvName(rv: number): string {
  return rv === CKR_ACTION_PROHIBITED ? "CKR_ACTION_PROHIBITED" : constantName("CKR_", rv);
}

export function mechName(mechanism: number): string {
  return mechanism === CKM_AES_KEY_WRAP_KWP ? "CKM_AES_KEY_WRAP_KWP" : constantName("CKM_", mechanism);
}

/** A handle no token issued: 8 bytes, little-endian 0x7fff_fff0. */
export const BOGUS_HANDLE = (() => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0x7ffffff0);
  return b;
})();

/** The CKR a call fails with (a Pkcs11Error's code), failing the test if it succeeds or throws anything else. */
export function rvOf(t: ExecutionContext, fn: () => unknown, message?: string): number | undefined {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof P.Pkcs11Error)) {
      t.fail(`${message ?? "call"}: threw ${String(error)}, not a Pkcs11Error`);
      return undefined;
    }
    return error.code;
  }
  t.fail(`${message ?? "call"}: succeeded, expected a CKR error`);
  return undefined;
}

/** Asserts the call fails with exactly `expected` (compared by name, so a failure reads "CKR_X" vs "CKR_Y"). */
export function expectRv(t: ExecutionContext, fn: () => unknown, expected: number, message?: string): void {
  const rv = rvOf(t, fn, message);
  if (rv !== undefined) t.is(rvName(rv), rvName(expected), message);
}

export async function expectRvAsync(t: ExecutionContext, fn: () => Promise<unknown>, expected: number, message?: string): Promise<void> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof P.Pkcs11Error)) return t.fail(`${message ?? "call"}: threw ${String(error)}, not a Pkcs11Error`);
    t.is(rvName(error.code), rvName(expected), message);
    return;
  }
  t.fail(`${message ?? "call"}: succeeded, expected ${rvName(expected)}`);
}

/**
 * A documented difference: the value this target is expected to show. `why` says which side
 * the specification backs (or that it leaves room) and is logged whenever the sides differ.
 */
export function byTarget<T>(t: ExecutionContext, token: TokenUnderTest, values: Record<TargetName, T>, why: string): T {
  if (JSON.stringify(values.emulator) !== JSON.stringify(values.softhsm)) {
    const logged = loggedDifferences.get(t) ?? new Set<string>();
    loggedDifferences.set(t, logged);
    if (!logged.has(why)) t.log(`difference (${token.target} side asserted): ${why}`);
    logged.add(why);
  }
  return values[token.target];
}
const loggedDifferences = new WeakMap<ExecutionContext, Set<string>>();

/**
 * Whether the token offers every mechanism given. If not, logs a note naming the missing ones
 * and passes the test: a mechanism a token lacks is reported, not failed.
 */
export function offers(t: ExecutionContext, token: TokenUnderTest, ...mechanisms: number[]): boolean {
  const missing = mechanisms.filter((m) => !token.mechanisms.has(m));
  if (missing.length === 0) return true;
  t.log(`note: ${token.target} does not offer ${missing.map(mechName).join(", ")}; this scenario did not run there`);
  t.pass();
  return false;
}

export function openSession(token: TokenUnderTest, rw = true): Handle {
  return token.p11.C_OpenSession(token.slot, P.CKF_SERIAL_SESSION | (rw ? P.CKF_RW_SESSION : 0));
}

/** Opens a R/W session and logs the user in. */
export function userSession(token: TokenUnderTest): Handle {
  const session = openSession(token);
  token.p11.C_Login(session, P.CKU_USER, token.userPin);
  return session;
}

export function attribute(token: TokenUnderTest, session: Handle, object: Handle, type: number): Buffer {
  const [result] = token.p11.C_GetAttributeValue(session, object, [{ type }]);
  if (result === undefined || !Buffer.isBuffer(result.value)) throw new Error(`no value for attribute 0x${type.toString(16)}`);
  return result.value;
}

export function boolAttribute(token: TokenUnderTest, session: Handle, object: Handle, type: number): boolean {
  const value = attribute(token, session, object, type);
  return value.length === 1 && value[0] !== 0;
}

export function ulongAttribute(token: TokenUnderTest, session: Handle, object: Handle, type: number): number {
  return Number(attribute(token, session, object, type).readBigUInt64LE());
}

export function ulongBuffer(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

/** The CK_MECHANISM_TYPE array encoding of CKA_ALLOWED_MECHANISMS (CK_ULONGs, little-endian). */
export function mechanismList(...mechanisms: number[]): Buffer {
  return Buffer.concat(mechanisms.map(ulongBuffer));
}

export function text(value: string): string {
  return value.replace(/[\0 ]+$/u, "");
}

/** `base` with the attributes of `overrides` replacing those of the same type (a template must not name one twice). */
export function merge(base: Template, overrides: Template): Template {
  const types = new Set(overrides.map((a) => a.type));
  return [...base.filter((a) => !types.has(a.type)), ...overrides];
}

/** Generates an AES key (CKM_AES_KEY_GEN) of `bytes` bytes: a session object unless the template says otherwise. */
export function generateAes(token: TokenUnderTest, session: Handle, bytes: number, template: Template = []): Handle {
  return token.p11.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, merge([{ type: P.CKA_VALUE_LEN, value: bytes }], template));
}

/** Creates a secret key with a known value (C_CreateObject). */
export function importSecret(token: TokenUnderTest, session: Handle, value: Buffer, template: Template = [], keyType: number = P.CKK_AES): Handle {
  return token.p11.C_CreateObject(session, merge([
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: keyType },
    { type: P.CKA_VALUE, value },
  ], template));
}

/** Creates a data object (session object, public, unless the template says otherwise). */
export function createData(token: TokenUnderTest, session: Handle, label: string, template: Template = []): Handle {
  return token.p11.C_CreateObject(session, merge([
    { type: P.CKA_CLASS, value: P.CKO_DATA },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_PRIVATE, value: false },
    { type: P.CKA_LABEL, value: label },
    { type: P.CKA_VALUE, value: Buffer.from(`value of ${label}`) },
  ], template));
}

/** Every handle matching the template, searched to the end. */
export function findAll(token: TokenUnderTest, session: Handle, template: Template): Handle[] {
  token.p11.C_FindObjectsInit(session, template);
  try {
    const found: Handle[] = [];
    for (;;) {
      const batch = token.p11.C_FindObjects(session, 16);
      if (batch.length === 0) return found;
      found.push(...batch);
    }
  } finally {
    token.p11.C_FindObjectsFinal(session);
  }
}

export function sameHandles(a: readonly Handle[], b: readonly Handle[]): boolean {
  const key = (list: readonly Handle[]): string => list.map((h) => h.toString("hex")).sort().join(",");
  return key(a) === key(b);
}

export function gcm(iv: Buffer, aad?: Buffer, tagBits = 128): { mechanism: number; parameter: { type: number; iv: Buffer; aad?: Buffer; ivBits: number; tagBits: number } } {
  const parameter: { type: number; iv: Buffer; aad?: Buffer; ivBits: number; tagBits: number } = { type: P.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, tagBits };
  if (aad !== undefined) parameter.aad = aad;
  return { mechanism: P.CKM_AES_GCM, parameter };
}
