// The backend's scenarios (./backend-scenarios.ts) on the emulator with a token directory, plus
// what only the emulator can stage: the token dropping sessions, being pulled out and put back,
// and a device error in the middle of an operation (emulator/faults.ts).
import test, { type ExecutionContext } from "ava";
import { existsSync } from "node:fs";
import { FaultInjector, type FaultPlan } from "../../emulator/index.js";
import { openBackend } from "../../src/kms/backend/graphene.js";
import { EMULATOR, USER_PIN } from "./backend-fixtures.js";
import { registerBackendScenarios, throwsKms } from "./backend-scenarios.js";

registerBackendScenarios(EMULATOR);

function faulty(t: ExecutionContext, plan: FaultPlan = { rules: [] }) {
  const faults = new FaultInjector(plan);
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

test("emulator › a failure that repeats after the retry is reported, and the call after it reconnects", (t) => {
  const { backend, version, iv, sealed } = faulty(t, { rules: [{ calls: "C_EncryptInit", fail: "CKR_SESSION_HANDLE_INVALID", after: 1, times: 2 }] });
  const error = throwsKms(t, () => backend.encrypt(version, iv, Buffer.alloc(0), Buffer.from("y")), "KMS.0101");
  t.regex(error.detail ?? "", /CKR_SESSION_HANDLE_INVALID/u);
  t.is(backend.encrypt(version, backend.random(12), Buffer.alloc(0), Buffer.from("y")).length, 17);
  t.is(backend.decrypt(version, iv, Buffer.alloc(0), sealed).toString(), "still here");
});

test("emulator › a PIN changed while the backend runs is tried once on reconnecting, never again: the token's PIN does not get locked", (t) => {
  const { faults, harness, backend } = faulty(t);
  harness.withSession((session) => session.setPin(USER_PIN, "new-pin-1357"));
  faults.closeSessions();
  // Requests and sweeps keep coming; the token locks the user PIN after 10 wrong tries (emulator/token.ts).
  for (let i = 0; i < 12; i++) {
    const error = throwsKms(t, () => backend.random(8), "KMS.0101");
    t.regex(error.detail ?? "", /CKR_PIN_INCORRECT .*will not be tried again/u);
    t.notRegex(error.detail ?? "", new RegExp(`${USER_PIN}|new-pin-1357`, "u"), "no PIN in the detail");
  }
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

test("a module path that does not exist, or a library that is not PKCS#11, is KMS.0101 naming the cause", (t) => {
  const missing = throwsKms(t, () => openBackend({ module: "/nonexistent/libpkcs11.so", tokenLabel: "x", pin: "1" }), "KMS.0101");
  t.regex(missing.detail ?? "", /loading the PKCS#11 module: .*ENOENT/u);
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
