// Random call sequences with random arguments (fast-check) against a fresh emulator: whatever the
// calls and arguments, (1) nothing crashes and the emulator stays usable, (2) every failure is a
// pkcs11js Pkcs11Error with a CKR code, and (3) no key value that must stay inside ever leaves:
//   - the values of keys made non-extractable never appear in any output (returned Buffers,
//     caller output Buffers, attribute values), however the sequence copies, wraps, digests,
//     encrypts or re-attributes them (a non-extractable key has no way out, §4.10);
//   - no call returns CKA_VALUE or a private-key component of a key that is, at that moment,
//     sensitive or non-extractable.
// (A sensitive but extractable key may legitimately be wrapped and unwrapped into a readable one,
// so its value is checked on direct reads only.)
//
// Runs are bounded (HSMKIT_PROPERTY_RUNS, default 200, of up to 60 steps each) so the suite stays
// fast; a failure prints fast-check's seed and path, and HSMKIT_PROPERTY_SEED replays a seed.
import test from "ava";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { Emulator, type FaultPlan, type FaultRule } from "../../emulator/index.js";
import { pkcs11 as P, type Handle, type Template } from "../../emulator/pkcs11.js";

const SO_PIN = "12345678";
const USER_PIN = "123456";
const RUNS = Number(process.env.HSMKIT_PROPERTY_RUNS ?? 200);
const SEED = process.env.HSMKIT_PROPERTY_SEED === undefined ? undefined : Number(process.env.HSMKIT_PROPERTY_SEED);

/** Attribute types whose values are key material (footnote 7). */
const SECRET_TYPES = new Set([
  P.CKA_VALUE, P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_PRIME_2, P.CKA_EXPONENT_1, P.CKA_EXPONENT_2, P.CKA_COEFFICIENT,
]);

const KNOWN_ATTRIBUTES = [
  P.CKA_CLASS, P.CKA_TOKEN, P.CKA_PRIVATE, P.CKA_LABEL, P.CKA_VALUE, P.CKA_KEY_TYPE, P.CKA_ID, P.CKA_SENSITIVE, P.CKA_ENCRYPT,
  P.CKA_DECRYPT, P.CKA_WRAP, P.CKA_UNWRAP, P.CKA_SIGN, P.CKA_VERIFY, P.CKA_DERIVE, P.CKA_EXTRACTABLE, P.CKA_LOCAL, P.CKA_NEVER_EXTRACTABLE,
  P.CKA_ALWAYS_SENSITIVE, P.CKA_VALUE_LEN, P.CKA_MODIFIABLE, P.CKA_COPYABLE, P.CKA_DESTROYABLE, P.CKA_TRUSTED, P.CKA_WRAP_WITH_TRUSTED,
  P.CKA_WRAP_TEMPLATE, P.CKA_UNWRAP_TEMPLATE, P.CKA_ALLOWED_MECHANISMS, P.CKA_MODULUS, P.CKA_MODULUS_BITS, P.CKA_PUBLIC_EXPONENT,
  P.CKA_PRIVATE_EXPONENT, P.CKA_PRIME_1, P.CKA_COEFFICIENT, P.CKA_EC_PARAMS, P.CKA_EC_POINT, P.CKA_KEY_GEN_MECHANISM, P.CKA_APPLICATION,
  P.CKA_START_DATE, P.CKA_CHECK_VALUE,
];
const MECHANISMS = [
  P.CKM_AES_KEY_GEN, P.CKM_AES_GCM, P.CKM_AES_KEY_WRAP, P.CKM_AES_KEY_WRAP_PAD, 0x210b, P.CKM_AES_CBC, P.CKM_AES_CBC_PAD, P.CKM_AES_ECB,
  P.CKM_AES_CTR, P.CKM_GENERIC_SECRET_KEY_GEN, P.CKM_SHA256, P.CKM_SHA_1, P.CKM_SHA512, P.CKM_SHA256_HMAC, P.CKM_SHA_1_HMAC,
  P.CKM_RSA_PKCS_KEY_PAIR_GEN, P.CKM_RSA_PKCS, P.CKM_RSA_PKCS_OAEP, P.CKM_SHA256_RSA_PKCS, P.CKM_SHA256_RSA_PKCS_PSS,
  P.CKM_EC_KEY_PAIR_GEN, P.CKM_ECDSA, P.CKM_ECDSA_SHA256, P.CKM_ECDH1_DERIVE, P.CKM_SHA256_HMAC_GENERAL, 0x7ffffff0,
];
const P256 = Buffer.from("06082a8648ce3d030107", "hex");

// ---- argument generators ------------------------------------------------------------------

const bytes = (max = 48) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
/** Mostly well-formed, sometimes anything at all. */
const sometimesJunk = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ arbitrary: arb, weight: 9 }, { arbitrary: fc.anything(), weight: 1 });

const attributeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.boolean(),
  fc.nat({ max: 0xffffffff }),
  fc.constantFrom(P.CKO_DATA, P.CKO_SECRET_KEY, P.CKO_PUBLIC_KEY, P.CKO_PRIVATE_KEY, P.CKK_AES, P.CKK_GENERIC_SECRET, P.CKK_RSA, P.CKK_EC, 16, 32),
  fc.string({ maxLength: 12 }),
  bytes(40),
  fc.constant(undefined),
  fc.constant(null),
  fc.constant(P256),
  fc.array(fc.record({ type: fc.constantFrom(...KNOWN_ATTRIBUTES), value: fc.oneof(fc.boolean(), fc.nat(64), bytes(8)) }), { maxLength: 2 }),
);
const attribute = fc.record({ type: fc.oneof({ arbitrary: fc.constantFrom(...KNOWN_ATTRIBUTES), weight: 9 }, { arbitrary: fc.nat(), weight: 1 }), value: attributeValue });
const randomTemplate = fc.array(attribute, { maxLength: 6 });

/** Templates that make real objects often enough for the sequence to do something with them. */
const objectTemplate: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({
    kind: fc.constantFrom("aes", "generic", "data"),
    length: fc.constantFrom(16, 24, 32, 7),
    token: fc.boolean(), private: fc.boolean(), sensitive: fc.boolean(), extractable: fc.boolean(),
  }).map(({ kind, length, token, private: priv, sensitive, extractable }) => kind === "data"
    ? [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: token }, { type: P.CKA_PRIVATE, value: priv }, { type: P.CKA_VALUE, value: randomBytes(length) }]
    : [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: kind === "aes" ? P.CKK_AES : P.CKK_GENERIC_SECRET },
      { type: P.CKA_VALUE, value: randomBytes(length) }, { type: P.CKA_TOKEN, value: token }, { type: P.CKA_PRIVATE, value: priv },
      { type: P.CKA_SENSITIVE, value: sensitive }, { type: P.CKA_EXTRACTABLE, value: extractable },
    ]),
  randomTemplate,
);
const keyTemplate: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ length: fc.constantFrom(16, 32, 5), sensitive: fc.boolean(), extractable: fc.boolean(), token: fc.boolean() }).map(({ length, sensitive, extractable, token }) => [
    { type: P.CKA_VALUE_LEN, value: length }, { type: P.CKA_SENSITIVE, value: sensitive }, { type: P.CKA_EXTRACTABLE, value: extractable }, { type: P.CKA_TOKEN, value: token },
  ]),
  randomTemplate,
);
const unwrapTemplate: fc.Arbitrary<unknown> = fc.oneof(
  fc.record({ type: fc.constantFrom(P.CKK_AES, P.CKK_GENERIC_SECRET), sensitive: fc.boolean(), extractable: fc.boolean() }).map(({ type, sensitive, extractable }) => [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: type }, { type: P.CKA_SENSITIVE, value: sensitive }, { type: P.CKA_EXTRACTABLE, value: extractable },
  ]),
  randomTemplate,
);

const parameter: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  bytes(32),
  fc.constantFrom(Buffer.alloc(16), Buffer.alloc(12)),
  fc.record({ type: fc.constantFrom(P.CK_PARAMS_AES_GCM, P.CK_PARAMS_GCM, 999), iv: bytes(16), aad: fc.option(bytes(16), { nil: undefined }), ivBits: fc.nat(256), tagBits: fc.constantFrom(0, 32, 96, 128, 136) }),
  fc.record({ type: fc.constant(P.CK_PARAMS_RSA_OAEP), hashAlg: fc.constantFrom(P.CKM_SHA_1, P.CKM_SHA256, 7), mgf: fc.constantFrom(P.CKG_MGF1_SHA1, P.CKG_MGF1_SHA256, 0), source: fc.constantFrom(0, 1), sourceData: fc.option(bytes(8), { nil: undefined }) }),
  fc.record({ type: fc.constant(P.CK_PARAMS_RSA_PSS), hashAlg: fc.constantFrom(P.CKM_SHA256, P.CKM_SHA_1), mgf: fc.constantFrom(P.CKG_MGF1_SHA256, P.CKG_MGF1_SHA1), saltLen: fc.nat(64) }),
  fc.record({ type: fc.constant(P.CK_PARAMS_EC_DH), kdf: fc.constant(1), publicData: bytes(65) }),
  fc.nat(64),
);
const anyMechanism = sometimesJunk(fc.record({ mechanism: fc.constantFrom(...MECHANISMS), parameter }).map((m) => (m.parameter === undefined ? { mechanism: m.mechanism } : m)));
/** Mostly a mechanism that fits the call (so sequences get somewhere), sometimes any. */
const fitting = (...good: Array<fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> =>
  fc.oneof({ arbitrary: fc.oneof(...good), weight: 4 }, { arbitrary: anyMechanism, weight: 1 });
const plain = (...mechanisms: number[]) => fc.constantFrom(...mechanisms.map((m) => ({ mechanism: m })));
const gcmMechanism = bytes(16).filter((iv) => iv.length > 0).map((iv) => ({ mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, tagBits: 128 } }));
const ivMechanism = fc.tuple(fc.constantFrom(P.CKM_AES_CBC, P.CKM_AES_CBC_PAD), fc.uint8Array({ minLength: 16, maxLength: 16 })).map(([m, iv]) => ({ mechanism: m, parameter: Buffer.from(iv) }));
const cipherMechanism = fitting(gcmMechanism, ivMechanism, plain(P.CKM_AES_ECB));
const signMechanism = fitting(plain(P.CKM_SHA256_HMAC, P.CKM_SHA_1_HMAC, P.CKM_ECDSA, P.CKM_SHA256_RSA_PKCS));
const digestMechanism = fitting(plain(P.CKM_SHA256, P.CKM_SHA_1, P.CKM_SHA512));
const keyGenMechanism = fitting(plain(P.CKM_AES_KEY_GEN, P.CKM_AES_KEY_GEN, P.CKM_GENERIC_SECRET_KEY_GEN));
const wrapMechanism = fitting(plain(P.CKM_AES_KEY_WRAP, P.CKM_AES_KEY_WRAP_PAD, 0x210b));
const pin = fc.constantFrom<unknown>(USER_PIN, SO_PIN, "0000", "12", "", undefined, 1234, "x".repeat(300));
const out = sometimesJunk(fc.oneof(fc.nat(600), fc.constantFrom(600, 600, 600)).map((n) => Buffer.alloc(n)));
const data = sometimesJunk(bytes(100));
const pick = fc.nat();

/** One call. Handles are picks into pools the run builds up (plus a handle nobody issued). */
type Action =
  | { call: "open"; flags: unknown }
  | { call: "close" | "logout" | "info" | "findFinal" | "encryptFinal" | "decryptFinal" | "digestFinal" | "signFinal"; s: number; o: unknown }
  | { call: "closeAll" | "tokenInfo" | "slotInfo" | "mechanisms" | "wait" | "initToken"; junk: boolean; pin: unknown }
  | { call: "login"; s: number; user: unknown; pin: unknown }
  | { call: "initPin" | "setPin"; s: number; pin: unknown; other: unknown }
  | { call: "create" | "findInit"; s: number; template: unknown }
  | { call: "copy" | "set"; s: number; h: number; template: unknown }
  | { call: "destroy" | "size" | "digestKey"; s: number; h: number }
  | { call: "get"; s: number; h: number; types: number[] }
  | { call: "find"; s: number; max: unknown }
  | { call: "encryptInit" | "decryptInit" | "signInit" | "verifyInit"; s: number; m: unknown; h: number }
  | { call: "digestInit"; s: number; m: unknown }
  | { call: "encrypt" | "decrypt" | "digest" | "sign" | "encryptUpdate" | "decryptUpdate"; s: number; d: unknown; o: unknown; async: boolean }
  | { call: "verify"; s: number; d: unknown; sig: unknown }
  | { call: "digestUpdate" | "signUpdate" | "verifyUpdate" | "seed"; s: number; d: unknown }
  | { call: "generate"; s: number; m: unknown; template: unknown; async: boolean }
  | { call: "generatePair"; s: number; kind: "rsa" | "ec" | "junk"; pub: unknown; priv: unknown }
  | { call: "wrap"; s: number; m: unknown; w: number; h: number; o: unknown }
  | { call: "unwrap"; s: number; m: unknown; w: number; blob: number; replay: boolean; template: unknown }
  | { call: "cipherFlow" | "signFlow"; s: number; m: unknown; h: number; d: unknown; multi: boolean; decrypt: boolean }
  | { call: "derive"; s: number; m: unknown; h: number; template: unknown }
  | { call: "random"; s: number; o: unknown }
  | { call: "finalize" | "initialize" | "reinitialize" };

const action: fc.Arbitrary<Action> = fc.oneof(
  { arbitrary: fc.record({ call: fc.constant("open" as const), flags: sometimesJunk(fc.constantFrom(P.CKF_SERIAL_SESSION, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION, 0)) }), weight: 4 },
  { arbitrary: fc.record({ call: fc.constantFrom("close" as const, "logout" as const, "info" as const, "findFinal" as const, "encryptFinal" as const, "decryptFinal" as const, "digestFinal" as const, "signFinal" as const), s: pick, o: out }), weight: 4 },
  { arbitrary: fc.record({ call: fc.constantFrom("closeAll" as const, "tokenInfo" as const, "slotInfo" as const, "mechanisms" as const, "wait" as const, "initToken" as const), junk: fc.boolean(), pin }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constant("login" as const), s: pick, user: fc.constantFrom<unknown>(P.CKU_USER, P.CKU_USER, P.CKU_SO, P.CKU_CONTEXT_SPECIFIC, 9, "user"), pin }), weight: 5 },
  { arbitrary: fc.record({ call: fc.constantFrom("initPin" as const, "setPin" as const), s: pick, pin, other: pin }), weight: 1 },
  { arbitrary: fc.record({ call: fc.constantFrom("create" as const, "findInit" as const), s: pick, template: sometimesJunk(objectTemplate) }), weight: 6 },
  { arbitrary: fc.record({ call: fc.constantFrom("copy" as const, "set" as const), s: pick, h: pick, template: sometimesJunk(randomTemplate) }), weight: 5 },
  { arbitrary: fc.record({ call: fc.constantFrom("destroy" as const, "size" as const, "digestKey" as const), s: pick, h: pick }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constant("get" as const), s: pick, h: pick, types: fc.array(fc.oneof(fc.constantFrom(...KNOWN_ATTRIBUTES), fc.constantFrom(...SECRET_TYPES)), { minLength: 1, maxLength: 4 }) }), weight: 8 },
  { arbitrary: fc.record({ call: fc.constant("find" as const), s: pick, max: fc.oneof(fc.constant(undefined), fc.nat(5), fc.anything()) }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constantFrom("encryptInit" as const, "decryptInit" as const), s: pick, m: cipherMechanism, h: pick }), weight: 6 },
  { arbitrary: fc.record({ call: fc.constantFrom("signInit" as const, "verifyInit" as const), s: pick, m: signMechanism, h: pick }), weight: 3 },
  { arbitrary: fc.record({ call: fc.constant("digestInit" as const), s: pick, m: digestMechanism }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constantFrom("encrypt" as const, "decrypt" as const, "digest" as const, "sign" as const, "encryptUpdate" as const, "decryptUpdate" as const), s: pick, d: data, o: out, async: fc.boolean() }), weight: 8 },
  { arbitrary: fc.record({ call: fc.constant("verify" as const), s: pick, d: data, sig: data }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constantFrom("digestUpdate" as const, "signUpdate" as const, "verifyUpdate" as const, "seed" as const), s: pick, d: data }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constant("generate" as const), s: pick, m: keyGenMechanism, template: sometimesJunk(keyTemplate), async: fc.boolean() }), weight: 5 },
  { arbitrary: fc.record({ call: fc.constant("generatePair" as const), s: pick, kind: fc.constantFrom("rsa" as const, "ec" as const, "ec" as const, "ec" as const, "junk" as const), pub: randomTemplate, priv: randomTemplate }), weight: 1 },
  { arbitrary: fc.record({ call: fc.constant("wrap" as const), s: pick, m: wrapMechanism, w: pick, h: pick, o: out }), weight: 6 },
  { arbitrary: fc.record({ call: fc.constant("unwrap" as const), s: pick, m: wrapMechanism, w: pick, blob: pick, replay: fc.boolean(), template: sometimesJunk(unwrapTemplate) }), weight: 5 },
  { arbitrary: fc.record({ call: fc.constant("cipherFlow" as const), s: pick, m: cipherMechanism, h: pick, d: data, multi: fc.boolean(), decrypt: fc.boolean() }), weight: 6 },
  { arbitrary: fc.record({ call: fc.constant("signFlow" as const), s: pick, m: signMechanism, h: pick, d: data, multi: fc.boolean(), decrypt: fc.constant(false) }), weight: 3 },
  { arbitrary: fc.record({ call: fc.constant("derive" as const), s: pick, m: anyMechanism, h: pick, template: sometimesJunk(randomTemplate) }), weight: 1 },
  { arbitrary: fc.record({ call: fc.constant("random" as const), s: pick, o: out }), weight: 2 },
  { arbitrary: fc.record({ call: fc.constantFrom("reinitialize" as const, "reinitialize" as const, "reinitialize" as const, "finalize" as const, "initialize" as const) }), weight: 1 },
);

/** A random fault plan over the calls the sequences make, or none. */
const faultPlan: fc.Arbitrary<FaultPlan | undefined> = fc.option(
  fc.record({
    seed: fc.nat(),
    rules: fc.array(fc.record({
      calls: fc.constantFrom("*", "C_Encrypt", "C_GenerateKey", "C_WrapKey", "C_Login", "C_GetAttributeValue", "C_OpenSession", "C_FindObjectsInit"),
      fail: fc.constantFrom("CKR_DEVICE_ERROR", "CKR_DEVICE_MEMORY", "CKR_SESSION_CLOSED", "CKR_FUNCTION_FAILED"),
      probability: fc.constantFrom(0.05, 0.2, 1),
      effect: fc.option(fc.constantFrom("closeSessions" as const, "removeToken" as const, "insertToken" as const), { nil: undefined }),
    }).map((r): FaultRule => (r.effect === undefined ? { calls: r.calls, fail: r.fail, probability: r.probability } : { ...r, effect: r.effect })), { maxLength: 3 }),
  }),
  { nil: undefined, freq: 2 },
);

// ---- the run --------------------------------------------------------------------------------

interface Run {
  p11: Emulator;
  slot: Handle;
  /** Every session handle the run was given (closed ones stay: they make good stale arguments). */
  sessions: Handle[];
  /** The sessions believed open (a fault plan may still have closed them). */
  live: Handle[];
  objects: Handle[];
  /** Successful wraps, for unwrap to replay with the same mechanism and key. */
  wrapped: Array<{ blob: Buffer; mechanism: unknown; key: Handle }>;
  /** Values of keys made non-extractable: they must never appear in any output. */
  hidden: Buffer[];
  violations: string[];
}

/** Calls made and calls that succeeded, by function, over all runs (logged, to show the sequences do reach the token). */
const tally = new Map<string, { made: number; ok: number }>();
function count(where: string, ok: boolean): void {
  const entry = tally.get(where) ?? { made: 0, ok: 0 };
  entry.made++;
  if (ok) entry.ok++;
  tally.set(where, entry);
}

const BOGUS = (() => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(0x7ffffff0);
  return b;
})();

/**
 * A pick from a pool, and now and then `extra` (a handle nobody issued). fast-check favours small
 * picks, so `newest` decides which end of the pool they favour: the newest sessions (the ones
 * still open), the oldest objects (the known keys set up first).
 */
function choose<T>(pool: readonly T[], index: number, extra: T, newest = false): T {
  if (pool.length === 0 || index % 8 === 7) return extra;
  return pool[newest ? pool.length - 1 - (index % pool.length) : index % pool.length]!;
}

/** Every Buffer inside a result (handles, attribute values, info fields). */
function* buffersIn(value: unknown, depth = 0): Generator<Buffer> {
  if (depth > 4 || value === null || value === undefined) return;
  if (Buffer.isBuffer(value)) yield value;
  else if (Array.isArray(value)) for (const item of value) yield* buffersIn(item, depth + 1);
  else if (typeof value === "object") for (const item of Object.values(value)) yield* buffersIn(item, depth + 1);
}

function checkOutputs(run: Run, where: string, ...values: unknown[]): void {
  for (const value of values) {
    for (const buffer of buffersIn(value)) {
      for (const secret of run.hidden) {
        if (buffer.includes(secret)) run.violations.push(`${where}: output contains the value of a non-extractable key`);
      }
    }
  }
}

/** What attempt() returns for a call that failed (a successful call may return undefined). */
const FAILED = Symbol("failed");

/** Runs one call: it must return or throw a Pkcs11Error; its outputs must not carry hidden values. */
async function attempt(run: Run, where: string, body: () => unknown, outputs: unknown[] = []): Promise<unknown> {
  let result: unknown;
  try {
    result = await body();
  } catch (error) {
    if (!(error instanceof P.Pkcs11Error) || typeof (error as { code?: unknown }).code !== "number" || (error as { code: number }).code <= 0) {
      run.violations.push(`${where}: threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}, not a Pkcs11Error with a CKR code`);
    }
    checkOutputs(run, `${where} (failed)`, ...outputs);
    count(where, false);
    return FAILED;
  }
  count(where, true);
  checkOutputs(run, where, result, ...outputs);
  return result;
}

function remember(pool: Handle[], value: unknown): void {
  if (Buffer.isBuffer(value)) pool.push(value);
}

/** After a successful read of key material: the object must be neither sensitive nor unextractable now. */
function checkRevealable(run: Run, session: Handle, object: Handle, types: number[]): void {
  if (!types.some((type) => SECRET_TYPES.has(type))) return;
  let flags;
  try {
    flags = run.p11.C_GetAttributeValue(session, object, [{ type: P.CKA_CLASS }, { type: P.CKA_SENSITIVE }, { type: P.CKA_EXTRACTABLE }]);
  } catch {
    return; // a data object (no CKA_SENSITIVE): its CKA_VALUE is not key material
  }
  const sensitive = flags[1]!.value[0] === 1;
  const extractable = flags[2]!.value[0] === 1;
  if (sensitive || !extractable) run.violations.push(`C_GetAttributeValue returned key material of a ${sensitive ? "sensitive" : "non-extractable"} key`);
}

/** After a successful wrap: the wrapped key must be extractable (§4.10: else CKR_KEY_UNEXTRACTABLE). */
function checkWrappable(run: Run, session: Handle, object: Handle): void {
  let extractable;
  try {
    [extractable] = run.p11.C_GetAttributeValue(session, object, [{ type: P.CKA_EXTRACTABLE }]);
  } catch (error) {
    if (error instanceof P.Pkcs11Error) return; // e.g. a fault plan failing this very check
    throw error;
  }
  if (extractable?.value[0] !== 1) run.violations.push("C_WrapKey wrapped a non-extractable key");
}

/** With no session believed open, the run opens one and logs the user in, so sequences do not stall. */
async function ensureSession(run: Run): Promise<void> {
  if (run.live.length > 0) return;
  const session = await attempt(run, "C_OpenSession", () => run.p11.C_OpenSession(run.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION));
  if (!Buffer.isBuffer(session)) return;
  run.sessions.push(session);
  run.live.push(session);
  await attempt(run, "C_Login", () => run.p11.C_Login(session, P.CKU_USER, USER_PIN));
}

async function step(run: Run, a: Action): Promise<void> {
  const { p11 } = run;
  if ("s" in a) await ensureSession(run);
  // Mostly an open session (newest first), sometimes any session handle ever seen or one never issued.
  const s = "s" in a ? (a.s % 4 === 3 ? choose(run.sessions, a.s >> 2, BOGUS, true) : choose(run.live, a.s, BOGUS, true)) : BOGUS;
  const h = "h" in a ? choose(run.objects, a.h, BOGUS) : BOGUS;
  switch (a.call) {
    case "open": {
      const session = await attempt(run, "C_OpenSession", () => p11.C_OpenSession(run.slot, a.flags as number));
      remember(run.sessions, session);
      remember(run.live, session);
      break;
    }
    case "close":
      if ((await attempt(run, "C_CloseSession", () => p11.C_CloseSession(s))) !== FAILED) run.live = run.live.filter((x) => !x.equals(s));
      break;
    case "logout": await attempt(run, "C_Logout", () => p11.C_Logout(s)); break;
    case "info": await attempt(run, "C_GetSessionInfo", () => p11.C_GetSessionInfo(s)); break;
    case "findFinal": await attempt(run, "C_FindObjectsFinal", () => p11.C_FindObjectsFinal(s)); break;
    case "encryptFinal": await attempt(run, "C_EncryptFinal", () => p11.C_EncryptFinal(s, a.o as Buffer), [a.o]); break;
    case "decryptFinal": await attempt(run, "C_DecryptFinal", () => p11.C_DecryptFinal(s, a.o as Buffer), [a.o]); break;
    case "digestFinal": await attempt(run, "C_DigestFinal", () => p11.C_DigestFinal(s, a.o as Buffer), [a.o]); break;
    case "signFinal": await attempt(run, "C_SignFinal", () => p11.C_SignFinal(s, a.o as Buffer), [a.o]); break;
    case "closeAll":
      if ((await attempt(run, "C_CloseAllSessions", () => p11.C_CloseAllSessions(a.junk ? BOGUS : run.slot))) !== FAILED) run.live = [];
      break;
    case "tokenInfo": await attempt(run, "C_GetTokenInfo", () => p11.C_GetTokenInfo(a.junk ? BOGUS : run.slot)); break;
    case "slotInfo": await attempt(run, "C_GetSlotInfo", () => p11.C_GetSlotInfo(a.junk ? BOGUS : run.slot)); break;
    case "mechanisms": await attempt(run, "C_GetMechanismList", () => p11.C_GetMechanismList(a.junk ? BOGUS : run.slot)); break;
    case "wait": await attempt(run, "C_WaitForSlotEvent", () => p11.C_WaitForSlotEvent(a.junk ? 0 : P.CKF_DONT_BLOCK)); break;
    case "initToken": await attempt(run, "C_InitToken", () => p11.C_InitToken(run.slot, a.pin as string, "relabelled")); break;
    case "login": await attempt(run, "C_Login", () => p11.C_Login(s, a.user as number, a.pin as string)); break;
    case "initPin": await attempt(run, "C_InitPIN", () => p11.C_InitPIN(s, a.pin as string)); break;
    case "setPin": await attempt(run, "C_SetPIN", () => p11.C_SetPIN(s, a.pin as string, a.other as string)); break;
    case "create": remember(run.objects, await attempt(run, "C_CreateObject", () => p11.C_CreateObject(s, a.template as Template))); break;
    case "findInit": await attempt(run, "C_FindObjectsInit", () => p11.C_FindObjectsInit(s, a.template as Template)); break;
    case "copy": remember(run.objects, await attempt(run, "C_CopyObject", () => p11.C_CopyObject(s, h, a.template as Template))); break;
    case "set": await attempt(run, "C_SetAttributeValue", () => p11.C_SetAttributeValue(s, h, a.template as Template)); break;
    case "destroy": await attempt(run, "C_DestroyObject", () => p11.C_DestroyObject(s, h)); break;
    case "size": await attempt(run, "C_GetObjectSize", () => p11.C_GetObjectSize(s, h)); break;
    case "digestKey": await attempt(run, "C_DigestKey", () => p11.C_DigestKey(s, h)); break;
    case "get": {
      const result = await attempt(run, "C_GetAttributeValue", () => p11.C_GetAttributeValue(s, h, a.types.map((type) => ({ type }))));
      if (result !== FAILED) checkRevealable(run, s, h, a.types);
      break;
    }
    case "find": {
      const found = await attempt(run, "C_FindObjects", () => (a.max === undefined ? p11.C_FindObjects(s) : p11.C_FindObjects(s, a.max as number)));
      for (const handle of buffersIn(found)) remember(run.objects, handle);
      break;
    }
    case "encryptInit": await attempt(run, "C_EncryptInit", () => p11.C_EncryptInit(s, a.m as never, h)); break;
    case "decryptInit": await attempt(run, "C_DecryptInit", () => p11.C_DecryptInit(s, a.m as never, h)); break;
    case "signInit": await attempt(run, "C_SignInit", () => p11.C_SignInit(s, a.m as never, h)); break;
    case "verifyInit": await attempt(run, "C_VerifyInit", () => p11.C_VerifyInit(s, a.m as never, h)); break;
    case "digestInit": await attempt(run, "C_DigestInit", () => p11.C_DigestInit(s, a.m as never)); break;
    case "encrypt": await attempt(run, "C_Encrypt", () => (a.async ? p11.C_EncryptAsync(s, a.d as Buffer, a.o as Buffer) : p11.C_Encrypt(s, a.d as Buffer, a.o as Buffer)), [a.o]); break;
    case "decrypt": await attempt(run, "C_Decrypt", () => (a.async ? p11.C_DecryptAsync(s, a.d as Buffer, a.o as Buffer) : p11.C_Decrypt(s, a.d as Buffer, a.o as Buffer)), [a.o]); break;
    case "digest": await attempt(run, "C_Digest", () => (a.async ? p11.C_DigestAsync(s, a.d as Buffer, a.o as Buffer) : p11.C_Digest(s, a.d as Buffer, a.o as Buffer)), [a.o]); break;
    case "sign": await attempt(run, "C_Sign", () => (a.async ? p11.C_SignAsync(s, a.d as Buffer, a.o as Buffer) : p11.C_Sign(s, a.d as Buffer, a.o as Buffer)), [a.o]); break;
    case "encryptUpdate": await attempt(run, "C_EncryptUpdate", () => p11.C_EncryptUpdate(s, a.d as Buffer, a.o as Buffer), [a.o]); break;
    case "decryptUpdate": await attempt(run, "C_DecryptUpdate", () => p11.C_DecryptUpdate(s, a.d as Buffer, a.o as Buffer), [a.o]); break;
    case "verify": await attempt(run, "C_Verify", () => p11.C_Verify(s, a.d as Buffer, a.sig as Buffer)); break;
    case "digestUpdate": await attempt(run, "C_DigestUpdate", () => p11.C_DigestUpdate(s, a.d as Buffer)); break;
    case "signUpdate": await attempt(run, "C_SignUpdate", () => p11.C_SignUpdate(s, a.d as Buffer)); break;
    case "verifyUpdate": await attempt(run, "C_VerifyUpdate", () => p11.C_VerifyUpdate(s, a.d as Buffer)); break;
    case "seed": await attempt(run, "C_SeedRandom", () => p11.C_SeedRandom(s, a.d as Buffer)); break;
    case "random": await attempt(run, "C_GenerateRandom", () => p11.C_GenerateRandom(s, a.o as Buffer), [a.o]); break;
    case "generate": remember(run.objects, await attempt(run, "C_GenerateKey", () => (a.async ? p11.C_GenerateKeyAsync(s, a.m as never, a.template as Template) : p11.C_GenerateKey(s, a.m as never, a.template as Template)))); break;
    case "generatePair": {
      const mech = a.kind === "rsa" ? { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN } : a.kind === "ec" ? { mechanism: P.CKM_EC_KEY_PAIR_GEN } : { mechanism: P.CKM_AES_KEY_GEN };
      const pub = a.kind === "rsa" ? [{ type: P.CKA_MODULUS_BITS, value: 2048 }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }] : a.kind === "ec" ? [{ type: P.CKA_EC_PARAMS, value: P256 }] : [];
      const pair = await attempt(run, "C_GenerateKeyPair", () => p11.C_GenerateKeyPair(s, mech, [...pub, ...(a.pub as Template)], a.priv as Template));
      for (const handle of buffersIn(pair)) remember(run.objects, handle);
      break;
    }
    case "wrap": {
      const wrapping = choose(run.objects, a.w, BOGUS);
      const blob = await attempt(run, "C_WrapKey", () => p11.C_WrapKey(s, a.m as never, wrapping, h, a.o as Buffer), [a.o]);
      if (Buffer.isBuffer(blob)) {
        run.wrapped.push({ blob: Buffer.from(blob), mechanism: a.m, key: wrapping });
        checkWrappable(run, s, h);
      }
      break;
    }
    case "unwrap": {
      const entry = choose(run.wrapped, a.blob, { blob: randomBytes(24), mechanism: a.m, key: BOGUS }, true);
      const mechanism = a.replay ? entry.mechanism : a.m;
      const unwrapping = a.replay ? entry.key : choose(run.objects, a.w, BOGUS);
      remember(run.objects, await attempt(run, "C_UnwrapKey", () => p11.C_UnwrapKey(s, mechanism as never, unwrapping, entry.blob, a.template as Template)));
      break;
    }
    case "cipherFlow": {
      // Half the time one of the keys set up first, which fit these mechanisms.
      const key = a.h % 2 === 0 ? choose(run.objects.slice(0, 5), a.h >> 1, BOGUS) : h;
      const init = a.decrypt ? "C_DecryptInit" : "C_EncryptInit";
      if ((await attempt(run, init, () => (a.decrypt ? p11.C_DecryptInit(s, a.m as never, key) : p11.C_EncryptInit(s, a.m as never, key)))) === FAILED && !a.multi) break;
      const outBuffer = Buffer.alloc(700);
      if (!a.multi) {
        await attempt(run, a.decrypt ? "C_Decrypt" : "C_Encrypt", () => (a.decrypt ? p11.C_Decrypt(s, a.d as Buffer, outBuffer) : p11.C_Encrypt(s, a.d as Buffer, outBuffer)), [outBuffer]);
      } else {
        await attempt(run, a.decrypt ? "C_DecryptUpdate" : "C_EncryptUpdate", () => (a.decrypt ? p11.C_DecryptUpdate(s, a.d as Buffer, outBuffer) : p11.C_EncryptUpdate(s, a.d as Buffer, outBuffer)), [outBuffer]);
        await attempt(run, a.decrypt ? "C_DecryptFinal" : "C_EncryptFinal", () => (a.decrypt ? p11.C_DecryptFinal(s, outBuffer) : p11.C_EncryptFinal(s, outBuffer)), [outBuffer]);
      }
      break;
    }
    case "signFlow": {
      await attempt(run, "C_SignInit", () => p11.C_SignInit(s, a.m as never, h));
      const outBuffer = Buffer.alloc(600);
      if (!a.multi) await attempt(run, "C_Sign", () => p11.C_Sign(s, a.d as Buffer, outBuffer), [outBuffer]);
      else {
        await attempt(run, "C_SignUpdate", () => p11.C_SignUpdate(s, a.d as Buffer));
        await attempt(run, "C_SignFinal", () => p11.C_SignFinal(s, outBuffer), [outBuffer]);
      }
      break;
    }
    case "derive": remember(run.objects, await attempt(run, "C_DeriveKey", () => p11.C_DeriveKey(s, a.m as never, h, a.template as Template))); break;
    case "finalize":
      if ((await attempt(run, "C_Finalize", () => p11.C_Finalize())) !== FAILED) run.live = [];
      break;
    case "initialize": await attempt(run, "C_Initialize", () => p11.C_Initialize()); break;
    case "reinitialize":
      if ((await attempt(run, "C_Finalize", () => p11.C_Finalize())) !== FAILED) run.live = [];
      await attempt(run, "C_Initialize", () => p11.C_Initialize());
      break;
  }
}

/** A fresh emulator with a few keys of known value, some of which must never leave. */
function setUp(plan: FaultPlan | undefined): Run {
  const p11 = new Emulator({ slots: [{ token: { label: "property", soPin: SO_PIN, userPin: USER_PIN } }], kdf: { N: 16, r: 1, p: 1 }, ...(plan ? { faults: plan } : {}) });
  const run: Run = { p11, slot: BOGUS, sessions: [], live: [], objects: [], wrapped: [], hidden: [], violations: [] };
  try {
    p11.C_Initialize();
    run.slot = p11.C_GetSlotList(false)[0]!;
    const session = p11.C_OpenSession(run.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    run.sessions.push(session);
    run.live.push(session);
    p11.C_Login(session, P.CKU_USER, USER_PIN);
    const key = (value: Buffer, keyType: number, attributes: Template, hidden: boolean): void => {
      run.objects.push(p11.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: keyType }, { type: P.CKA_VALUE, value }, ...attributes,
      ]));
      if (hidden) run.hidden.push(value);
    };
    key(randomBytes(32), P.CKK_AES, [{ type: P.CKA_EXTRACTABLE, value: false }], true);
    key(randomBytes(32), P.CKK_GENERIC_SECRET, [{ type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_DERIVE, value: true }], true);
    key(randomBytes(16), P.CKK_AES, [{ type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false }], true);
    key(randomBytes(32), P.CKK_AES, [{ type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: true }], false);
    key(randomBytes(32), P.CKK_AES, [{ type: P.CKA_EXTRACTABLE, value: true }], false);
  } catch (error) {
    // A fault plan may fail the setting-up calls themselves; the run goes on with what exists.
    if (!(error instanceof P.Pkcs11Error)) throw error;
  }
  return run;
}

test("random call sequences: only Pkcs11Errors, no crash, no key value that must stay inside ever leaves", async (t) => {
  const parameters: fc.Parameters<[FaultPlan | undefined, Action[]]> = { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };
  let calls = 0;
  const details = await fc.check(
    fc.asyncProperty(faultPlan, fc.array(action, { minLength: 1, maxLength: 60, size: "max" }), async (plan, actions) => {
      const run = setUp(plan);
      for (const a of actions) {
        await step(run, a);
        calls++;
      }
      // Still usable: finalize (unless the sequence did), initialize, list the slot. (Under a
      // fault plan these calls may be faulted themselves; they must still fail cleanly.)
      await attempt(run, "C_Finalize (end)", () => run.p11.C_Finalize());
      if (plan === undefined) {
        run.p11.C_Initialize();
        if (run.p11.C_GetSlotList(false).length !== 1) run.violations.push("the slot is gone after re-initializing");
        run.p11.C_Finalize();
      }
      if (run.violations.length > 0) throw new Error(run.violations.join("\n"));
    }),
    parameters,
  );
  if (details.failed) {
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    return t.fail(`${fc.defaultReportMessage(details) ?? "property failed"}\nViolations:\n${cause}`);
  }
  const succeeded = [...tally.values()].reduce((n, e) => n + e.ok, 0);
  const key = (name: string): string => `${name} ${tally.get(name)?.ok ?? 0}/${tally.get(name)?.made ?? 0}`;
  t.log(`${RUNS} sequences, ${calls} steps, ${succeeded} calls succeeded; e.g. ${["C_GetAttributeValue", "C_WrapKey", "C_UnwrapKey", "C_CreateObject", "C_GenerateKey", "C_Encrypt", "C_Decrypt", "C_Sign", "C_Login"].map(key).join(", ")}`);
  t.pass();
});

