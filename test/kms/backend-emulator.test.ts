// The backend's scenarios (./backend-scenarios.ts) on the emulator with a token directory, plus
// what only the emulator can stage: the token dropping sessions, being pulled out and put back,
// and a device error in the middle of an operation (emulator/faults.ts).
import test, { type ExecutionContext } from "ava";
import { existsSync } from "node:fs";
import { CkrError } from "../../emulator/errors.js";
import { fromHandle } from "../../emulator/handles.js";
import { Emulator, FaultInjector, type FaultPlan } from "../../emulator/index.js";
import { MAX_PIN_FAILURES } from "../../emulator/token.js";
import type { ModuleState } from "../../emulator/state.js";
import type { KmsBackend, VersionRef } from "../../src/kms/backend/backend.js";
import { openBackend } from "../../src/kms/backend/graphene.js";
import { pkcs11 } from "../../src/kms/backend/pkcs11.js";
import { KMS_ERRORS, type KmsErrorCode } from "../../src/kms/errors.js";
import { EMULATOR, FAST_KDF, SO_PIN, TOKEN_LABEL, USER_PIN, type TokenHarness } from "./backend-fixtures.js";
import { registerBackendScenarios, throwsKms } from "./backend-scenarios.js";

registerBackendScenarios(EMULATOR);

function faulty(t: ExecutionContext, plan: FaultPlan | FaultInjector = { rules: [] }) {
  const faults = plan instanceof FaultInjector ? plan : new FaultInjector(plan);
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const backend = harness.open();
  const version = { id: "k:1", wrapped: backend.createVersionKey() };
  const iv = backend.random(12);
  const sealed = backend.encrypt(version, iv, Buffer.alloc(0), Buffer.from("still here"));
  return { faults, harness, backend, version, iv, sealed };
}

test("emulator › when the token drops every session, the backend reconnects, logs in, unwraps again and retries once", (t) => {
  const { faults, harness, backend, version, iv, sealed } = faulty(t);
  faults.closeSessions();
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here");
  const info = backend.info();
  t.is(info.recoveries, 1);
  t.is(info.cache.unwraps, 2, "the unwrapped key died with its session and was unwrapped again");
  t.is(harness.sessionKeys().length, 1);
  t.true(backend.verifyMac(Buffer.from("x"), backend.mac(Buffer.from("x"))));
});

test("emulator › a removed token is KMS.0104 (503); once it is back, the next call reconnects", (t) => {
  const { faults, backend, version, iv, sealed } = faulty(t);
  faults.removeToken();
  const error = throwsKms(t, () => backend.decrypt(version, iv, Buffer.alloc(0), sealed), "KMS.0104");
  t.is(error.status, 503);
  throwsKms(t, () => backend.random(8), "KMS.0104");
  t.is(backend.unserviceable(), undefined, "a passing failure: every call tries the token again");
  faults.insertToken();
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here");
  t.is(backend.random(8).length, 8);
});

test("emulator › a device error inside an operation closes that worker session only; unwrapped keys survive", (t) => {
  const { backend, version, iv, sealed } = faulty(t, { rules: [{ calls: "C_Decrypt", fail: "CKR_DEVICE_ERROR", times: 1 }] });
  const error = throwsKms(t, () => backend.decrypt(version, iv, Buffer.alloc(0), sealed), "KMS.0104");
  t.regex(error.detail ?? "", /decrypting: CKR_DEVICE_ERROR .* in C_Decrypt/u);
  const before = backend.info();
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here");
  const after = backend.info();
  t.is(after.cache.unwraps, before.cache.unwraps, "served from the cache: the owner session was untouched");
  t.is(after.recoveries, 0);
});

/**
 * The plan's faults, with a C_Decrypt it fails ending the session's decryption as a token's own
 * failure would (v2.40 §5.9: every C_Decrypt but CKR_BUFFER_TOO_SMALL and a length query ends the
 * operation); the plain injector fails the call before it runs, leaving the operation active.
 */
class DecryptFaults extends FaultInjector {
  private token: ModuleState | undefined;

  override attach(state: ModuleState, methods: ReadonlySet<string>): void {
    super.attach(state, methods);
    this.token = state;
  }

  override decide(method: string) {
    const decision = super.decide(method);
    if (method !== "C_Decrypt") return decision;
    return {
      apply: () => {
        try {
          decision.apply();
        } catch (error) {
          for (const session of this.token!.sessions.values()) session.end("decrypt");
          throw error;
        }
      },
    };
  }
}

test("emulator › a token fault in C_Decrypt is the token's error (KMS.0101, or 0104 when passing), never the opaque KMS.2201 of a bad ciphertext", (t) => {
  // [CKR, times it fires, code]: twice for a session lost again after the reconnect, and for a
  // CKR_GENERAL_ERROR that is the token's own (the probe after it fails too; see the next test).
  const faults: ReadonlyArray<[string, number, KmsErrorCode]> = [
    ["CKR_GENERAL_ERROR", 2, "KMS.0101"],
    ["CKR_FUNCTION_FAILED", 1, "KMS.0101"],
    ["CKR_DEVICE_ERROR", 1, "KMS.0104"],
    ["CKR_DEVICE_MEMORY", 1, "KMS.0104"],
    ["CKR_HOST_MEMORY", 1, "KMS.0104"],
    ["CKR_SESSION_HANDLE_INVALID", 2, "KMS.0101"],
  ];
  for (const [fail, times, code] of faults) {
    const { backend, version, iv, sealed } = faulty(t, new DecryptFaults({ rules: [{ calls: "C_Decrypt", fail, times }] }));
    const error = throwsKms(t, () => backend.decrypt(version, iv, Buffer.alloc(0), sealed), code);
    t.is(error.status, KMS_ERRORS[code].status, fail);
    t.regex(error.detail ?? "", new RegExp(`decrypting: ${fail} .* in C_Decrypt`, "u"));
    t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here", `${fail}: the next call is served`);
    const flipped = Buffer.from(sealed);
    flipped[0]! ^= 1;
    throwsKms(t, () => backend.decrypt(version, iv, Buffer.alloc(0), flipped), "KMS.2201");
  }
});

test("emulator › a CKR_GENERAL_ERROR from C_Decrypt after which the token seals and opens soundly is a refused ciphertext (SoftHSMv2's answer to a bad tag): KMS.2201", (t) => {
  const { faults, backend, version, iv, sealed } = faulty(t, new DecryptFaults({ rules: [{ calls: "C_Decrypt", fail: "CKR_GENERAL_ERROR", times: 1 }] }));
  const error = throwsKms(t, () => backend.decrypt(version, iv, Buffer.alloc(0), sealed), "KMS.2201");
  t.is(error.message, KMS_ERRORS["KMS.2201"].message);
  t.is(faults.events.length, 1);
  t.is(backend.info().recoveries, 0);
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here");
});

test("emulator › a failure that repeats after the retry is reported, and the call after it reconnects", (t) => {
  const { backend, version, iv, sealed } = faulty(t, { rules: [{ calls: "C_EncryptInit", fail: "CKR_SESSION_HANDLE_INVALID", after: 1, times: 2 }] });
  const error = throwsKms(t, () => backend.encrypt(version, iv, Buffer.alloc(0), Buffer.from("y")), "KMS.0101");
  t.regex(error.detail ?? "", /CKR_SESSION_HANDLE_INVALID/u);
  t.is(backend.encrypt(version, backend.random(12), Buffer.alloc(0), Buffer.from("y")).length, 17);
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here");
});

test("emulator › a token one wrong try from locking its user PIN, or locked, is not logged in to: the KMS never spends its last try", (t) => {
  const harness = EMULATOR.setup(t);
  const p11 = harness.module() as Emulator;
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(true)[0]!;
  const session = p11.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  // Wrong tries from elsewhere, up to the last one the token allows (emulator/token.ts MAX_PIN_FAILURES).
  for (let i = 0; i < MAX_PIN_FAILURES - 1; i++) t.throws(() => p11.C_Login(session, pkcs11.CKU_USER, "wrong-pin"));
  const finalTry = throwsKms(t, () => harness.open(), "KMS.0101");
  t.regex(finalTry.detail ?? "", /CKF_USER_PIN_FINAL_TRY.*log in once by hand/u);
  t.true((p11.C_GetTokenInfo(slot).flags & pkcs11.CKF_USER_PIN_FINAL_TRY) !== 0, "the last try is still there");
  // A person logs in with the right PIN: the count is reset, and the KMS starts.
  p11.C_Login(session, pkcs11.CKU_USER, USER_PIN);
  p11.C_Logout(session);
  const backend = harness.open();
  t.is(backend.random(8).length, 8);
  backend.close();
  // Logged in is per application while any of its sessions is open: out, before trying wrong PINs.
  try {
    p11.C_Logout(session);
  } catch {
    // already logged out with the backend's last session
  }

  for (let i = 0; i < MAX_PIN_FAILURES; i++) t.throws(() => p11.C_Login(session, pkcs11.CKU_USER, "wrong-pin"));
  const locked = throwsKms(t, () => harness.open(), "KMS.0101");
  t.regex(locked.detail ?? "", /CKF_USER_PIN_LOCKED.*security officer/u);
  p11.C_CloseSession(session);
  p11.C_Finalize();
});

test("emulator › a PIN changed while the backend runs is tried once on reconnecting, never again: the token's PIN does not get locked", (t) => {
  const { faults, harness, backend } = faulty(t);
  harness.withSession((session) => session.setPin(USER_PIN, "new-pin-1357"));
  faults.closeSessions();
  // Requests and sweeps keep coming; the token locks the user PIN after 10 wrong tries (emulator/token.ts).
  t.is(backend.unserviceable(), undefined, "not yet: the token has not been asked");
  for (let i = 0; i < 12; i++) {
    const error = throwsKms(t, () => backend.random(8), "KMS.0101");
    t.regex(error.detail ?? "", /CKR_PIN_INCORRECT .*will not be tried again/u);
    t.notRegex(error.detail ?? "", new RegExp(`${USER_PIN}|new-pin-1357`, "u"), "no PIN in the detail");
  }
  const reason = backend.unserviceable() ?? "";
  t.regex(reason, /CKR_PIN_INCORRECT .*configure the token's current PIN and restart/u, "what health reports");
  t.notRegex(reason, new RegExp(`${USER_PIN}|new-pin-1357`, "u"), "no PIN in the reason");
  const withNewPin = harness.open({ pin: "new-pin-1357" });
  t.is(withNewPin.random(8).length, 8, "the token's PIN still works for whoever has it");
});

test("emulator › when destroying an evicted version fails, the token's unwrapped objects stay within the cache's bound", (t) => {
  // Every C_DestroyObject after the eight that creating the versions makes fails, as on a device in trouble.
  const faults = new FaultInjector({ rules: [{ calls: "C_DestroyObject", fail: "CKR_DEVICE_ERROR", after: 8 }] });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const backend = harness.open({ cacheSize: 2 });
  const versions = Array.from({ length: 8 }, (_, i) => ({ id: `key-${i}:1`, wrapped: backend.createVersionKey() }));
  const iv = backend.random(12);
  const sealed = versions.map((v, i) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from(`message ${i}`)));
  for (const round of [0, 1]) {
    for (const [i, v] of versions.entries()) {
      t.is(backend.decrypt(v, iv, Buffer.alloc(0), sealed[i]!).toString(), `message ${i}`);
      const objects = harness.sessionKeys().length;
      t.true(objects <= 3, `round ${round}, version ${i}: ${objects} unwrapped objects in the token for a cache of 2`);
    }
  }
  t.true(faults.events.length > 0, "the destroys did fail");
});

/**
 * Our token in slot 0 and another in slot 1 that C_GetTokenInfo cannot read, as a library answers
 * for a card it does not recognize in a reader (CKR_TOKEN_NOT_RECOGNIZED, v2.40 §5.5): the slot
 * still has a token present, so C_GetSlotList(CK_TRUE) lists it.
 */
function unrecognizedNeighbour(t: ExecutionContext, faults: FaultInjector): { p11: Emulator; module: Emulator } {
  const p11 = new Emulator({
    kdf: FAST_KDF, faults,
    slots: [{ token: { label: TOKEN_LABEL, soPin: SO_PIN, userPin: USER_PIN } }, { token: { label: "neighbour", soPin: SO_PIN, userPin: USER_PIN } }],
  });
  t.teardown(() => p11.close());
  const module = new Proxy(p11, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (name !== "C_GetTokenInfo" || typeof value !== "function") return value;
      return (slot: Buffer) => {
        if (fromHandle(slot, pkcs11.CKR_SLOT_ID_INVALID) === 1) {
          throw new pkcs11.Pkcs11Error(`CKR_TOKEN_NOT_RECOGNIZED:${pkcs11.CKR_TOKEN_NOT_RECOGNIZED}`, 0, "C_GetTokenInfo");
        }
        return (value as (s: Buffer) => unknown).call(target, slot);
      };
    },
  });
  return { p11, module };
}

test("emulator › a token in another slot that cannot be read (not recognized, or unplugged during the scan) does not keep the backend from its own", (t) => {
  const faults = new FaultInjector({ rules: [] });
  const { module } = unrecognizedNeighbour(t, faults);
  const backend = openBackend({ module, tokenLabel: TOKEN_LABEL, pin: USER_PIN });
  t.teardown(() => backend.close());
  const version = { id: "k:1", wrapped: backend.createVersionKey() };
  const iv = backend.random(12);
  const sealed = backend.encrypt(version, iv, Buffer.alloc(0), Buffer.from("served"));
  // Reconnecting scans the slots again.
  faults.closeSessions();
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "served");
  t.is(backend.info().recoveries, 1);
  // When our token is not among the readable ones, the unreadable slot's failure is what is reported: it may have been ours.
  const missing = throwsKms(t, () => openBackend({ module, tokenLabel: "elsewhere", pin: USER_PIN }), "KMS.0104");
  t.regex(missing.detail ?? "", /CKR_TOKEN_NOT_RECOGNIZED .*in C_GetTokenInfo/u);

  // The other token pulled out between C_GetSlotList and its C_GetTokenInfo (CKR_TOKEN_NOT_PRESENT).
  const unplug = new FaultInjector({ rules: [{ calls: "C_GetTokenInfo", effect: "removeToken", slots: [1], times: 1 }] });
  const p11 = new Emulator({
    kdf: FAST_KDF, faults: unplug,
    slots: [{ token: { label: TOKEN_LABEL, soPin: SO_PIN, userPin: USER_PIN } }, { token: { label: "neighbour", soPin: SO_PIN, userPin: USER_PIN } }],
  });
  t.teardown(() => p11.close());
  const other = openBackend({ module: p11, tokenLabel: TOKEN_LABEL, pin: USER_PIN });
  t.teardown(() => other.close());
  t.is(unplug.events.length, 1, "the neighbour was unplugged during the scan");
  t.is(other.random(8).length, 8);
});

test("a module path that does not exist, or a library that is not PKCS#11, is KMS.0101 naming the cause", (t) => {
  const missing = throwsKms(t, () => openBackend({ module: "/nonexistent/libpkcs11.so", tokenLabel: "x", pin: "1" }), "KMS.0101");
  t.regex(missing.detail ?? "", /loading the PKCS#11 module \/nonexistent\/libpkcs11\.so: .*ENOENT/u);
  const notPkcs11 = process.platform === "linux" ? ["/lib/x86_64-linux-gnu/libm.so.6", "/lib/aarch64-linux-gnu/libm.so.6"].find((p) => existsSync(p)) : undefined;
  if (notPkcs11 !== undefined) {
    t.regex(throwsKms(t, () => openBackend({ module: notPkcs11, tokenLabel: "x", pin: "1" }), "KMS.0101").detail ?? "", /loading the PKCS#11 module/u);
  }
  throwsKms(t, () => openBackend({ module: "/nonexistent", tokenLabel: "", pin: "1" }), "KMS.0308");
  throwsKms(t, () => openBackend({ module: "/nonexistent", tokenLabel: "x".repeat(33), pin: "1" }), "KMS.0308");
  throwsKms(t, () => openBackend({ module: "/nonexistent", tokenLabel: "x", pin: "" }), "KMS.0308");
  throwsKms(t, () => openBackend({ module: "/nonexistent", tokenLabel: "x", pin: "1", cacheSize: 0 }), "KMS.0308");
  throwsKms(t, () => openBackend({ module: "/nonexistent", tokenLabel: "x", pin: "1", sessions: 65 }), "KMS.0308");
});

/** The C_ functions that make an object. */
const CREATING = new Set(["C_CreateObject", "C_CopyObject", "C_GenerateKey", "C_GenerateKeyPair", "C_UnwrapKey", "C_DeriveKey"]);

/**
 * A token with room for `limit` session objects, as a real HSM has a fixed number of object slots:
 * a call that would make one more fails with `rv` (CKR_DEVICE_MEMORY by default), through the
 * emulator's fault hook. Objects that go (destroyed, or with their session) free their room.
 */
class ObjectLimit extends FaultInjector {
  refusals = 0;
  private token: ModuleState | undefined;

  constructor(private readonly limit: number, private readonly rv: number = pkcs11.CKR_DEVICE_MEMORY) {
    super({ rules: [] });
  }

  override attach(state: ModuleState, methods: ReadonlySet<string>): void {
    super.attach(state, methods);
    this.token = state;
  }

  override decide(method: string) {
    if (CREATING.has(method) && this.token!.sessionObjects.size >= this.limit) {
      this.refusals++;
      const rv = this.rv;
      return { apply: () => { throw new CkrError(rv, "no room for another object"); } };
    }
    return super.decide(method);
  }
}

function versions(backend: KmsBackend, count: number): VersionRef[] {
  return Array.from({ length: count }, (_, i) => ({ id: `key-${i}:1`, wrapped: backend.createVersionKey() }));
}

/** Every session object in the token is one the cache knows of: nothing leaked. */
function noLeak(t: ExecutionContext, harness: TokenHarness, backend: KmsBackend, when: string): void {
  t.is(harness.sessionKeys().length, backend.info().cache.size, `${when}: the token holds exactly the cached versions`);
}

function noKeyMaterial(t: ExecutionContext, text: string, wrapped: readonly VersionRef[]): void {
  for (const v of wrapped) {
    t.false(text.includes(Buffer.from(v.wrapped).toString("hex")), "no wrapped key in the text");
    t.false(text.includes(Buffer.from(v.wrapped).toString("base64")), "no wrapped key in the text");
  }
}

test("emulator › the token refusing the Nth object (CKR_DEVICE_MEMORY): cached versions are evicted, the request succeeds, the bound shrinks and is reported", (t) => {
  // Five unwraps go through, the sixth is refused once.
  const faults = new FaultInjector({ rules: [{ calls: "C_UnwrapKey", fail: "CKR_DEVICE_MEMORY", after: 5, times: 1 }] });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const warnings: string[] = [];
  const backend = harness.open({ cacheSize: 16, warn: (message) => warnings.push(message) });
  const all = versions(backend, 8);
  const iv = backend.random(12);
  const sealed = all.map((v, i) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from(`message ${i}`)));
  t.is(faults.events.length, 1, "the sixth unwrap was refused");
  const info = backend.info().cache;
  // Five held at the refusal: the bound drops to five less an eighth (one), the retry made the fourth.
  t.like(info, { capacity: 4, configured: 16, memoryShrinks: 1, size: 4, unwraps: 8 });
  noLeak(t, harness, backend, "after the refusal");
  for (const [i, v] of all.entries()) {
    t.is(backend.decrypt(v, iv, Buffer.alloc(0), sealed[i]!).toString(), `message ${i}`);
    // Every decrypt here misses (eight versions round a smaller cache): the bound grows back one per turn of it.
    t.true(harness.sessionKeys().length <= backend.info().cache.capacity);
  }
  noLeak(t, harness, backend, "after a round of decrypts");
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /CKR_DEVICE_MEMORY in C_UnwrapKey holding 5 unwrapped CMK versions/u);
  t.regex(warnings[0]!, /at most 4 \(token\.cacheSize is 16\)/u);
  noKeyMaterial(t, warnings[0]!, all);
});

test("emulator › a token with room for six objects: every request succeeds, the cache settles below the token's size, nothing leaks", (t) => {
  const faults = new ObjectLimit(6);
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const warnings: string[] = [];
  const backend = harness.open({ cacheSize: 32, warn: (message) => warnings.push(message) });
  const all = versions(backend, 12);
  const iv = backend.random(12);
  const sealed = all.map((v, i) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from(`message ${i}`)));
  t.true(faults.refusals >= 1, "the token ran out of room");
  for (const round of [0, 1, 2]) {
    for (const [i, v] of all.entries()) {
      t.is(backend.decrypt(v, iv, Buffer.alloc(0), sealed[i]!).toString(), `message ${i}`, `round ${round}`);
      noLeak(t, harness, backend, `round ${round}, version ${i}`);
    }
  }
  const info = backend.info().cache;
  t.true(info.capacity <= 6, `bound ${info.capacity}`);
  t.is(info.configured, 32);
  t.true(info.memoryShrinks >= 1);
  t.is(warnings.length, info.memoryShrinks, "each shrink is reported once");
  // Creating a version needs one object more than the cache holds: made room for the same way.
  t.is(backend.createVersionKey().length, 40);
  t.is(backend.info().recoveries, 0, "no session was dropped to make room");
});

test("emulator › creating a version with the cache filling the token (CKR_HOST_MEMORY): room is made, the version is created", (t) => {
  const faults = new ObjectLimit(4, pkcs11.CKR_HOST_MEMORY);
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const warnings: string[] = [];
  const backend = harness.open({ cacheSize: 4, warn: (message) => warnings.push(message) });
  const all = versions(backend, 4);
  const iv = backend.random(12);
  for (const v of all) backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x"));
  t.is(harness.sessionKeys().length, 4, "the cache fills the token");
  t.is(faults.refusals, 0);
  const created = backend.createVersionKey();
  t.is(faults.refusals, 1, "the token refused the new version's key once");
  t.like(backend.info().cache, { capacity: 3, size: 2, memoryShrinks: 1 });
  noLeak(t, harness, backend, "after creating");
  t.regex(warnings[0] ?? "", /creating a version key: the token answered CKR_HOST_MEMORY in C_GenerateKey holding 4/u);
  const v = { id: "new:1", wrapped: created };
  t.is(backend.decrypt(v, iv, Buffer.alloc(0), backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("new"))).toString(), "new");
});

test("emulator › out of memory with nothing to evict, or again after evicting, is KMS.0104 (503) with no internals in the message", (t) => {
  for (const fail of ["CKR_DEVICE_MEMORY", "CKR_HOST_MEMORY"] as const) {
    const faults = new FaultInjector({ rules: [{ calls: ["C_UnwrapKey", "C_GenerateKey"], fail, after: 2 }] });
    const harness = EMULATOR.setup(t, { emulator: { faults } });
    const warnings: string[] = [];
    // The root and MAC keys take the two C_GenerateKey calls let through; the cache is empty.
    const backend = harness.open({ warn: (message) => warnings.push(message) });
    const error = throwsKms(t, () => backend.createVersionKey(), "KMS.0104");
    t.is(error.status, 503);
    t.is(error.message, KMS_ERRORS["KMS.0104"].message);
    t.regex(error.detail ?? "", new RegExp(`creating a version key: ${fail} .* in C_GenerateKey`, "u"));
    t.is(harness.sessionKeys().length, 0);
    t.is(warnings.length, 0, "nothing was evicted, nothing learned");
    t.is(backend.info().cache.capacity, 1024);
  }

  // Three unwraps go through; from the fourth on the token refuses every one.
  const faults = new FaultInjector({ rules: [{ calls: "C_UnwrapKey", fail: "CKR_DEVICE_MEMORY", after: 3 }] });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const warnings: string[] = [];
  const backend = harness.open({ cacheSize: 8, warn: (message) => warnings.push(message) });
  const all = versions(backend, 4);
  const iv = backend.random(12);
  const sealed = all.slice(0, 3).map((v) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("kept")));
  const error = throwsKms(t, () => backend.encrypt(all[3]!, iv, Buffer.alloc(0), Buffer.from("x")), "KMS.0104");
  t.is(error.message, KMS_ERRORS["KMS.0104"].message);
  t.regex(error.detail ?? "", /unwrapping version key-3:1: CKR_DEVICE_MEMORY .* in C_UnwrapKey/u);
  noKeyMaterial(t, `${error.message} ${error.detail ?? ""}`, all);
  t.is(faults.events.length, 2, "refused, room made, refused again: no third try");
  t.like(backend.info().cache, { capacity: 2, size: 1, memoryShrinks: 1 });
  noLeak(t, harness, backend, "after the refused retry");
  t.is(warnings.length, 1);
  // The hand took the oldest two: the last one unwrapped is still cached and serves as before.
  t.is(backend.decrypt(all[2]!, iv, Buffer.alloc(0), sealed[2]!).toString(), "kept");
  t.is(backend.info().cache.unwraps, 3);
});

test("emulator › after a passing shortage the bound grows back, one entry per turn of the cache, up to token.cacheSize", (t) => {
  const faults = new FaultInjector({ rules: [{ calls: "C_UnwrapKey", fail: "CKR_DEVICE_MEMORY", after: 3, times: 1 }] });
  const harness = EMULATOR.setup(t, { emulator: { faults } });
  const warnings: string[] = [];
  const backend = harness.open({ cacheSize: 4, warn: (message) => warnings.push(message) });
  const all = versions(backend, 6);
  const iv = backend.random(12);
  const sealed = all.map((v) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x")));
  // Refused holding three: the bound went to two; the two unwraps after it into the full cache made it three.
  t.is(backend.info().cache.capacity, 3);
  const bounds: number[] = [];
  for (let round = 0; round < 4; round++) {
    for (const [i, v] of all.entries()) {
      backend.decrypt(v, iv, Buffer.alloc(0), sealed[i]!);
      bounds.push(backend.info().cache.capacity);
      t.true(harness.sessionKeys().length <= backend.info().cache.capacity);
    }
  }
  t.deepEqual([...new Set(bounds)], [3, 4], "three unwraps at three, then four, and no further");
  t.like(backend.info().cache, { capacity: 4, configured: 4, memoryShrinks: 1 });
  t.is(warnings.length, 1);
  noLeak(t, harness, backend, "at the end");
});
