// The backend's resources under token faults, on the emulator: whatever the token fails, and
// however often, the sessions the backend holds and the objects it leaves in the token come back
// to what it accounts for (the pool's sessions; the root and MAC keys plus the cached versions),
// and every answer it does give is the right one.
import test from "ava";
import fc from "fast-check";
import assert from "node:assert/strict";
import { Emulator, FaultInjector, type FaultPlan } from "../../emulator/index.js";
import type { KmsBackend, VersionRef } from "../../src/kms/backend/backend.js";
import { openBackend } from "../../src/kms/backend/graphene.js";
import { pkcs11 } from "../../src/kms/backend/pkcs11.js";
import { KmsError } from "../../src/kms/errors.js";
import { EMULATOR, FAST_KDF, SO_PIN, TOKEN_LABEL, USER_PIN, type TokenHarness } from "./backend-fixtures.js";
import { throwsKms } from "./backend-scenarios.js";

/** A fault plan that can be switched off, to look at the token afterwards without faults. */
class Switchable extends FaultInjector {
  on = false;

  override decide(method: string) {
    return this.on ? super.decide(method) : { apply() {} };
  }
}

/** An in-memory token (no directory: a shrinking run makes hundreds) with `faults`. */
function token(faults: FaultInjector): Emulator {
  return new Emulator({ kdf: FAST_KDF, faults, slots: [{ token: { label: TOKEN_LABEL, soPin: SO_PIN, userPin: USER_PIN } }] });
}

/** What the token holds, seen through a user session of our own: every object (C_FindObjects, no template), and the application's other sessions. */
function tokenView(p11: Emulator): { objects: number; sessions: number } {
  const slot = p11.C_GetSlotList(true)[0]!;
  const session = p11.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  try {
    try {
      p11.C_Login(session, pkcs11.CKU_USER, USER_PIN);
    } catch (error) {
      if ((error as { code?: number }).code !== pkcs11.CKR_USER_ALREADY_LOGGED_IN) throw error;
    }
    p11.C_FindObjectsInit(session, []);
    const objects = p11.C_FindObjects(session, 10_000).length;
    p11.C_FindObjectsFinal(session);
    return { objects, sessions: p11.C_GetTokenInfo(slot).sessionCount - 1 };
  } finally {
    p11.C_CloseSession(session);
  }
}

/** The token holds what the backend accounts for: its sessions, the two token keys and the cached versions. */
function assertAccounted(p11: Emulator, backend: KmsBackend, when: string): void {
  const info = backend.info();
  const view = tokenView(p11);
  assert.equal(view.objects, 2 + info.cache.size, `${when}: objects in the token`);
  assert.equal(view.sessions, info.sessions.open, `${when}: sessions open`);
}

type Op =
  | { op: "encrypt"; v: number }
  | { op: "decrypt"; v: number }
  | { op: "create" }
  | { op: "mac" }
  | { op: "verify" }
  | { op: "random" }
  | { op: "forget"; v: number };

const VERSIONS = 6;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("encrypt" as const), v: fc.nat(VERSIONS - 1) }),
  fc.record({ op: fc.constant("decrypt" as const), v: fc.nat(VERSIONS - 1) }),
  fc.record({ op: fc.constant("create" as const) }),
  fc.record({ op: fc.constant("mac" as const) }),
  fc.record({ op: fc.constant("verify" as const) }),
  fc.record({ op: fc.constant("random" as const) }),
  fc.record({ op: fc.constant("forget" as const), v: fc.nat(VERSIONS - 1) }),
);

/** Failures a token gives mid-call: passing device trouble, lost sessions and logins, handles gone. */
const FAILURES = [
  "CKR_DEVICE_ERROR", "CKR_SESSION_HANDLE_INVALID", "CKR_DEVICE_MEMORY", "CKR_USER_NOT_LOGGED_IN",
  "CKR_OBJECT_HANDLE_INVALID", "CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED", "CKR_SESSION_CLOSED",
] as const;
/**
 * The failures a C_CloseSession can give for a session that is still open. The injector fails a
 * call before it runs, so a C_CloseSession it fails with CKR_SESSION_HANDLE_INVALID would leave the
 * session open, where a token giving that answer says it is gone.
 */
const CLOSE_FAILURES = ["CKR_DEVICE_ERROR", "CKR_GENERAL_ERROR", "CKR_FUNCTION_FAILED"] as const;
/** The C_ calls the backend makes, but C_CloseSession. */
const CALLS = [
  "C_GetSlotList", "C_GetSlotInfo", "C_GetTokenInfo", "C_GetMechanismList", "C_GetMechanismInfo", "C_OpenSession", "C_GetSessionInfo",
  "C_Login", "C_FindObjectsInit", "C_FindObjects", "C_FindObjectsFinal", "C_GetAttributeValue", "C_GenerateKey", "C_WrapKey",
  "C_UnwrapKey", "C_DestroyObject", "C_EncryptInit", "C_Encrypt", "C_DecryptInit", "C_Decrypt", "C_SignInit", "C_Sign",
  "C_VerifyInit", "C_Verify", "C_GenerateRandom",
];

function plan(seed: number, probability: number): FaultPlan {
  return {
    seed,
    rules: [
      { calls: "*", effect: "closeSessions", probability: probability / 8 },
      { calls: "*", effect: "removeToken", probability: probability / 8 },
      { calls: "*", effect: "insertToken", probability: 0.3 },
      ...FAILURES.map((fail) => ({ calls: CALLS, fail, probability: probability / FAILURES.length })),
      ...CLOSE_FAILURES.map((fail) => ({ calls: "C_CloseSession", fail, probability: probability / CLOSE_FAILURES.length })),
    ],
  };
}

test("emulator › under random token faults, the token's objects and sessions return to what the backend accounts for, and every answer is right", (t) => {
  fc.assert(fc.property(
    fc.nat(1_000_000), fc.constantFrom(0.02, 0.08, 0.2), fc.integer({ min: 1, max: 4 }), fc.array(opArb, { minLength: 1, maxLength: 60 }),
    (seed, probability, cacheSize, ops) => {
      const faults = new Switchable(plan(seed, probability));
      const p11 = token(faults);
      const backend = openBackend({ module: p11, tokenLabel: TOKEN_LABEL, pin: USER_PIN, cacheSize, sessions: 2, warn: () => {} });
      try {
        const versions: VersionRef[] = Array.from({ length: VERSIONS }, (_, i) => ({ id: `key-${i}:1`, wrapped: backend.createVersionKey() }));
        const iv = backend.random(12);
        const sealed = versions.map((v, i) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from(`message ${i}`)));
        const mac = backend.mac(Buffer.from("x"));
        faults.on = true;
        for (const step of ops) {
          try {
            if (step.op === "encrypt") {
              // The same IV and plaintext give the same ciphertext under the same key: a wrong key shows.
              assert.deepEqual(backend.encrypt(versions[step.v]!, iv, Buffer.alloc(0), Buffer.from(`message ${step.v}`)), sealed[step.v]);
            } else if (step.op === "decrypt") {
              assert.equal(backend.decrypt(versions[step.v]!, iv, Buffer.alloc(0), sealed[step.v]!).toString(), `message ${step.v}`);
            } else if (step.op === "create") {
              backend.createVersionKey();
            } else if (step.op === "mac") {
              assert.deepEqual(backend.mac(Buffer.from("x")), mac);
            } else if (step.op === "verify") {
              // A MAC computed on a faulty token that verifies must be the right one: the one computed before.
              assert.equal(backend.verifyMac(Buffer.from("x"), mac), true);
            } else if (step.op === "random") {
              backend.random(8);
            } else {
              backend.destroyVersion(versions[step.v]!.id);
            }
          } catch (error) {
            // Refusing is allowed (a KmsError, the API's 5xx); anything else escaping the backend is not.
            if (!(error instanceof KmsError)) throw error;
          }
        }
        faults.on = false;
        faults.insertToken();
        // Without faults, calls that touch every session and object the backend keeps: it notices what the
        // token dropped, and settles what it deferred (a failed destroy or close is done again).
        assert.equal(backend.verifyMac(Buffer.from("x"), backend.mac(Buffer.from("x"))), true);
        for (const [i, v] of versions.entries()) assert.equal(backend.decrypt(v, iv, Buffer.alloc(0), sealed[i]!).toString(), `message ${i}`);
        assertAccounted(p11, backend, `seed ${seed}, p ${probability}, cache ${cacheSize}`);
      } finally {
        backend.close();
        p11.close();
      }
    },
  ), { numRuns: 300, seed: 20240611 });
  t.pass();
});

/** Sessions the application has open on the token, less the one this look is made through. */
function sessionsOpen(harness: TokenHarness): number {
  return harness.withSession((session) => session.slot.getToken().sessionCount - 1);
}

test("emulator › a C_GetSessionInfo failing after C_OpenSession leaves no session open (graphene's Slot.open lost its handle)", (t) => {
  const faults = new Switchable({ rules: [{ calls: "C_GetSessionInfo", fail: "CKR_DEVICE_ERROR", times: 3 }] });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const backend = harness.open();
  faults.on = true;
  // The backend opens its worker sessions when first needed: each of these opens one.
  for (let i = 0; i < 3; i++) throwsKms(t, () => backend.random(8), "KMS.0104");
  t.is(faults.events.length, 3);
  t.is(sessionsOpen(harness), backend.info().sessions.open);
  t.is(backend.random(8).length, 8);
  t.is(sessionsOpen(harness), backend.info().sessions.open);
});

test("emulator › a session whose C_CloseSession failed is closed on a later call: a worker's session, and the owner's with its unwrapped versions", (t) => {
  const faults = new Switchable({
    rules: [
      // The first call: its worker session breaks, and closing it fails.
      { calls: "C_Encrypt", fail: "CKR_DEVICE_ERROR", times: 1 },
      { calls: "C_CloseSession", fail: "CKR_DEVICE_ERROR", times: 1 },
      // The third: a stale key handle drops the connection, and closing the owner session fails (the worker's close before it does not).
      { calls: "C_EncryptInit", fail: "CKR_KEY_HANDLE_INVALID", after: 2, times: 1 },
      { calls: "C_CloseSession", fail: "CKR_DEVICE_ERROR", after: 2, times: 1 },
    ],
  });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const backend = harness.open({ cacheSize: 4 });
  const versions: VersionRef[] = Array.from({ length: 4 }, (_, i) => ({ id: `key-${i}:1`, wrapped: backend.createVersionKey() }));
  const iv = backend.random(12);
  const sealed = versions.map((v) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x")));
  // Looks from the side are made with the faults off, so that their own C_CloseSession neither fails nor counts.
  const look = <T>(view: () => T): T => {
    faults.on = false;
    try {
      return view();
    } finally {
      faults.on = true;
    }
  };
  faults.on = true;
  throwsKms(t, () => backend.encrypt(versions[0]!, iv, Buffer.alloc(0), Buffer.from("x")), "KMS.0104");
  t.deepEqual(faults.events.map((e) => e.method), ["C_Encrypt", "C_CloseSession"]);
  t.deepEqual(backend.encrypt(versions[1]!, iv, Buffer.alloc(0), Buffer.from("x")), sealed[1]);
  t.is(look(() => sessionsOpen(harness)), backend.info().sessions.open, "the worker's session was closed on the next call");
  // The connection is dropped; closing the owner session (holding four unwrapped versions) fails; the retry reconnects.
  t.deepEqual(backend.encrypt(versions[2]!, iv, Buffer.alloc(0), Buffer.from("x")), sealed[2]);
  t.is(backend.info().recoveries, 1);
  t.deepEqual(faults.events.map((e) => [e.method, e.rule]), [["C_Encrypt", 0], ["C_CloseSession", 1], ["C_EncryptInit", 2], ["C_CloseSession", 3]]);
  t.deepEqual(backend.encrypt(versions[3]!, iv, Buffer.alloc(0), Buffer.from("x")), sealed[3]);
  faults.on = false;
  t.is(harness.sessionKeys().length, backend.info().cache.size, "the old owner's versions went with it once it was closed");
  t.is(sessionsOpen(harness), backend.info().sessions.open);
});

test("emulator › a failure of the attribute read graphene made after C_GenerateKey leaves no version key behind in the worker session", (t) => {
  // CKR_HOST_MEMORY: the backend makes room and generates again, so the request succeeds, and the worker session stays.
  const faults = new Switchable({ rules: [{ calls: "C_GetAttributeValue", fail: "CKR_HOST_MEMORY", times: 1 }] });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const backend = harness.open({ cacheSize: 4, warn: () => {} });
  const v = { id: "key-0:1", wrapped: backend.createVersionKey() };
  const iv = backend.random(12);
  backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x"));
  faults.on = true;
  t.is(backend.createVersionKey().length, 40);
  for (let i = 0; i < 3; i++) backend.createVersionKey();
  faults.on = false;
  t.is(harness.sessionKeys().length, backend.info().cache.size);
});
