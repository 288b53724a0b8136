// The backend's scenarios (./backend-scenarios.ts) on SoftHSMv2, loaded by path as a deployment
// would load it: a fresh token per test, serially (one SoftHSMv2 per process). Plus the design's
// claim about worker threads: backends in several threads share the process's one initialization
// of the library (CKF_OS_LOCKING_OK). Skipped, with the reason in each title, when SoftHSMv2 is
// not installed.
import test from "ava";
import { Worker } from "node:worker_threads";
import { acquireModule } from "../../src/kms/backend/module-loader.js";
import { graphene, pkcs11 } from "../../src/kms/backend/pkcs11.js";
import { SOFTHSM_FIXTURE, TOKEN_LABEL, USER_PIN } from "./backend-fixtures.js";
import { registerBackendScenarios } from "./backend-scenarios.js";
import type { WorkerReply, WorkerRequest } from "./backend-worker.js";

registerBackendScenarios(SOFTHSM_FIXTURE);

const WORKERS_TITLE = "softhsm › backends in three worker threads and the main thread use one token concurrently";
if (SOFTHSM_FIXTURE.missing !== undefined) {
  test.skip(`${WORKERS_TITLE} — skipped: ${SOFTHSM_FIXTURE.missing}`, () => {});
} else {
  test.serial(WORKERS_TITLE, async (t) => {
    const harness = SOFTHSM_FIXTURE.setup(t);
    const main = harness.open();
    const wrapped = main.createVersionKey();
    const request = (): WorkerRequest => ({ library: harness.module() as string, label: TOKEN_LABEL, pin: USER_PIN, wrapped, rounds: 2000 });
    const replies = Promise.all([0, 1, 2].map(() => new Promise<WorkerReply>((resolve, reject) => {
      const worker = new Worker(new URL("./backend-worker.js", import.meta.url), { workerData: request() });
      worker.once("message", resolve);
      worker.once("error", reject);
    })));
    // The main thread keeps working while the workers run.
    const version = { id: "shared:1", wrapped };
    for (let i = 0; i < 200; i++) {
      const iv = main.random(12);
      t.is(main.decrypt(version, iv, Buffer.alloc(0), main.encrypt(version, iv, Buffer.alloc(0), Buffer.from([i]))).readUInt8(0), i);
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const reply of await replies) {
      t.deepEqual(reply, { ok: 2000, rootCreated: false, rootId: main.info().rootKey.id, recoveries: 0 });
    }
    t.is(main.info().recoveries, 0);
  });
}

// SoftHSMv2 2.6.1 numbers sessions and objects from one counter that only grows until C_Finalize
// (measured: a closed session's objects' numbers are not given out again), so a cached version
// whose session the application lost names nothing, never another key.
const STALE_TITLE = "softhsm › after the application's sessions are closed under the backend and new keys made, no cached handle serves another key";
if (SOFTHSM_FIXTURE.missing !== undefined) {
  test.skip(`${STALE_TITLE} — skipped: ${SOFTHSM_FIXTURE.missing}`, () => {});
} else {
  test.serial(STALE_TITLE, (t) => {
    const harness = SOFTHSM_FIXTURE.setup(t);
    const backend = harness.open({ cacheSize: 4 });
    const versions = Array.from({ length: 4 }, (_, i) => ({ id: `key-${i}:1`, wrapped: backend.createVersionKey() }));
    const iv = backend.random(12);
    const sealed = versions.map((v) => backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x")));
    const lease = acquireModule(harness.module());
    t.teardown(() => lease.release());
    const slot = lease.module.getSlots(true).items(0);
    // Another part of the process closes every session of the application (C_CloseAllSessions), then makes keys of its own.
    slot.closeAll();
    const other = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    t.teardown(() => other.close());
    other.login(USER_PIN);
    for (let i = 0; i < 16; i++) {
      other.generateKey({ name: pkcs11.CKM_AES_KEY_GEN, params: null }, { token: false, valueLen: 32, encrypt: true, decrypt: true });
    }
    for (const [i, v] of versions.entries()) t.deepEqual(backend.encrypt(v, iv, Buffer.alloc(0), Buffer.from("x")), sealed[i], v.id);
    t.is(backend.info().recoveries, 1);
  });
}
