// Rotation under concurrency, on the emulator: versions added while other requests run, with the
// interleavings fixed by holding the store's key.addVersion (never by timers), and a token fault
// while a version is made.
import test, { type ExecutionContext } from "ava";
import { FaultInjector } from "../../emulator/index.js";
import { parseBlob } from "../../src/kms/envelope/blob.js";
import type { KmsStore } from "../../src/kms/store/store.js";
import { EMULATOR } from "./backend-fixtures.js";
import { rejects, setupKms, type KmsHarness, type KmsHarnessOptions } from "./kms-fixtures.js";

const DAY = 86_400_000;

type AddVersion = KmsStore["keys"]["addVersion"];
type AddVersionArgs = Parameters<AddVersion>;

/** A deferred promise, to hold one side of an interleaving until the test lets it go. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Wraps the store's addVersion with `around(original, ...args)` for the rest of the test. */
function interceptAddVersion(h: KmsHarness, around: (original: AddVersion, ...args: AddVersionArgs) => ReturnType<AddVersion>): void {
  const keys = h.store.keys;
  const original = keys.addVersion.bind(keys);
  keys.addVersion = (...args) => around(original, ...args);
}

async function harness(t: ExecutionContext, options: KmsHarnessOptions = {}, emulator: { faults?: FaultInjector } = {}): Promise<KmsHarness> {
  return setupKms(t, EMULATOR.setup(t, { emulator }), options);
}

test("many encrypts while rotating on demand: every blob decrypts, and each encrypt after the rotation's answer uses the new version", async (t) => {
  const h = await harness(t);
  const { keyId } = await h.kms.createKey(h.ctx("alice"), { keyAlias: "busy" });
  const encrypt = (i: number): Promise<{ blob: Buffer; text: string }> =>
    h.kms.encryptData(h.ctx("carol"), { keyId, plainText: `m${i}` }).then((r) => ({ blob: r.cipherText, text: `m${i}` }));
  const before = Array.from({ length: 20 }, (_, i) => encrypt(i));
  const rotation = h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId });
  const during = Array.from({ length: 20 }, (_, i) => encrypt(100 + i));
  const rotated = await rotation;
  t.like(rotated, { keyVersion: 2, numberOfRotations: 1 });
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => encrypt(200 + i)));
  t.true(after.every(({ blob }) => parseBlob(blob).version === 2));
  for (const { blob, text } of [...await Promise.all([...before, ...during]), ...after]) {
    t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: blob })).plainText.toString(), text);
  }
});

test("two concurrent rotations on demand: each answers the version it made and the count after it", async (t) => {
  const h = await harness(t);
  const { keyId } = await h.kms.createKey(h.ctx("alice"), { keyAlias: "twice" });
  // The first rotation's commit is answered only after the second's: both versions exist when either returns.
  const second = deferred();
  let calls = 0;
  interceptAddVersion(h, async (original, ...args) => {
    const mine = ++calls;
    const result = await original(...args);
    if (mine === 1) await second.promise;
    else second.resolve();
    return result;
  });
  const [first, next] = await Promise.all([
    h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId }),
    h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId }),
  ]);
  t.deepEqual(first, { keyId, keyVersion: 2, numberOfRotations: 1 });
  t.deepEqual(next, { keyId, keyVersion: 3, numberOfRotations: 2 });
  const status = await h.kms.getKeyRotationStatus(h.ctx("alice"), { keyId });
  t.is(status.numberOfRotations, 2);
  t.deepEqual(status.keyMaterials.map((m) => m.version), [1, 2, 3]);
});

/**
 * Starts a sweep over a due key and holds its addVersion (autoRotateKey) until `meanwhile` is done,
 * as when a request lands between the sweeper's read of the key and its write.
 */
async function sweepAround(h: KmsHarness, meanwhile: () => Promise<unknown>): Promise<Awaited<ReturnType<KmsHarness["kms"]["rotateDueKeys"]>>> {
  const reached = deferred();
  const release = deferred();
  interceptAddVersion(h, async (original, ...args) => {
    if (args[3]?.audit?.action === "autoRotateKey") {
      reached.resolve();
      await release.promise;
    }
    return original(...args);
  });
  const sweep = h.kms.rotateDueKeys();
  await reached.promise;
  await meanwhile();
  release.resolve();
  return sweep;
}

async function dueKey(h: KmsHarness, alias: string): Promise<string> {
  const { keyId } = await h.kms.createKey(h.ctx("alice"), { keyAlias: alias });
  await h.kms.enableKeyRotation(h.ctx("alice"), { keyId, rotationInterval: 30 });
  h.clock.advanceDays(31);
  return keyId;
}

test("the sweeper does not rotate a key again that a rotation on demand rotated after the sweeper read it", async (t) => {
  const h = await harness(t);
  const keyId = await dueKey(h, "raced");
  const report = await sweepAround(h, () => h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId }));
  t.deepEqual(report.done, [], "not due any more once rotated on demand");
  const status = await h.kms.getKeyRotationStatus(h.ctx("alice"), { keyId });
  t.is(status.numberOfRotations, 1);
  t.deepEqual(status.keyMaterials.map((m) => m.version), [1, 2]);
  t.is((await h.store.audit.query({ keyId, action: "autoRotateKey" })).records.length, 0, "no record of a rotation not made");
  // Still scheduled: one interval after the rotation on demand.
  h.clock.advanceDays(31);
  t.deepEqual((await h.kms.rotateDueKeys()).done, [keyId]);
});

test("the sweeper does not rotate a key whose rotation was disabled (acknowledged) after the sweeper read it", async (t) => {
  const h = await harness(t);
  const keyId = await dueKey(h, "switched-off");
  const report = await sweepAround(h, () => h.kms.disableKeyRotation(h.ctx("alice"), { keyId }));
  t.deepEqual(report.done, []);
  const status = await h.kms.getKeyRotationStatus(h.ctx("alice"), { keyId });
  t.like(status, { keyRotationEnabled: false, numberOfRotations: 0 });
  t.is(status.keyMaterials.length, 1);
});

test("a stale entry at the seal limit adds no second version once another request has added one", async (t) => {
  const h = await harness(t, { tunables: { sealsPerVersion: 2 } });
  const { keyId } = await h.kms.createKey(h.ctx("alice"), { keyAlias: "limited" });
  await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "1" });
  await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "2" });
  // Version 1 is full. A seal-limit rollover is held in the store while a description change drops
  // the cached entry; a second request at the limit then holds the new entry, not the first's.
  const reached = deferred();
  const release = deferred();
  let held = false;
  interceptAddVersion(h, async (original, ...args) => {
    if (!held) {
      held = true;
      reached.resolve();
      await release.promise;
    }
    return original(...args);
  });
  const first = h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "3" });
  await reached.promise;
  await h.kms.updateKeyDescription(h.ctx("alice"), { keyId, keyDescription: "changed" });
  const second = h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "4" });
  // The second request's own rollover, made on the entry loaded after the description change, reaches the store first.
  await new Promise<void>((resolve) => setImmediate(resolve));
  release.resolve();
  const blobs = await Promise.all([first, second]);
  const status = await h.kms.getKeyRotationStatus(h.ctx("alice"), { keyId });
  t.deepEqual(status.keyMaterials.map((m) => m.version), [1, 2], "one version for one full version");
  t.deepEqual(blobs.map((b) => parseBlob(b.cipherText).version), [2, 2]);
  const rotations = (await h.store.audit.query({ keyId, action: "autoRotateKey" })).records;
  t.deepEqual(rotations.map((r) => r.outcome), ["success"], "the refused stale rollover leaves no record");
});

test("a token fault while making a version (C_WrapKey): no version, a failure audit record, the key keeps working and rotates next time", async (t) => {
  // Creating the key wraps once; the rotation's wrap is the second.
  const faults = new FaultInjector({ rules: [{ calls: "C_WrapKey", fail: "CKR_DEVICE_ERROR", after: 1, times: 1 }] });
  const h = await harness(t, {}, { faults });
  const { keyId } = await h.kms.createKey(h.ctx("alice"), { keyAlias: "faulty" });
  const blob = (await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "v1" })).cipherText;
  // A device error is the token being unavailable (backend.ts): 503 KMS.0104.
  await rejects(t, h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId }), "KMS.0104");
  const status = await h.kms.getKeyRotationStatus(h.ctx("alice"), { keyId });
  t.like(status, { numberOfRotations: 0, lastRotationTime: null });
  t.deepEqual(status.keyMaterials.map((m) => m.version), [1]);
  const records = (await h.store.audit.query({ keyId, action: "rotateKeyOnDemand" })).records;
  t.deepEqual(records.map((r) => r.outcome), ["failure"]);
  t.is(parseBlob((await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "still v1" })).cipherText).version, 1);
  t.like(await h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId }), { keyVersion: 2, numberOfRotations: 1 });
  t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: blob })).plainText.toString(), "v1");
});
