/**
 * Rotation through the Kms, one body for both tokens (kms-rotation-emulator.test.ts,
 * kms-rotation-softhsm.test.ts): on demand, on schedule, at the seal limit (random-IV bound); after
 * N rotations blobs of every version decrypt (also after a restart) and new blobs use the newest.
 */
import { parseBlob } from "../../src/kms/envelope/blob.js";
import { rejects, type KmsScenario } from "./kms-fixtures.js";

const DAY = 86_400_000;

export const ROTATION_SCENARIOS: KmsScenario[] = [
  {
    title: "rotate-on-demand N times: blobs of every version decrypt (also after a restart), new blobs use the newest, status counts",
    async run(t, h) {
      const alice = h.ctx("alice");
      const carol = h.ctx("carol");
      const key = await h.kms.createKey(alice, { keyAlias: "rotating" });
      const keyId = key.keyId;
      const N = 6;
      const blobs: Array<{ version: number; blob: Buffer; text: string; dek?: { blob: Buffer; plain: Buffer } }> = [];
      for (let version = 1; version <= N + 1; version++) {
        for (let i = 0; i < 2; i++) {
          const text = `v${version}-${i}`;
          const blob = (await h.kms.encryptData(carol, { keyId, plainText: text, encryptionContext: { i: String(i) } })).cipherText;
          t.is(parseBlob(blob).version, version, "new blobs use the newest version");
          const dataKey = await h.kms.createDataKey(carol, { keyId, keySpec: "AES_128" });
          t.is(parseBlob(dataKey.cipherText).version, version);
          blobs.push({ version, blob, text, dek: { blob: dataKey.cipherText, plain: dataKey.plainText } });
        }
        if (version <= N) {
          h.clock.now += 1000;
          const rotated = await h.kms.rotateKeyOnDemand(alice, { keyId });
          t.deepEqual(rotated, { keyId, keyVersion: version + 1, numberOfRotations: version });
        }
      }
      const status = await h.kms.getKeyRotationStatus(h.ctx("dave"), { keyId });
      t.like(status, { keyRotationEnabled: false, rotationInterval: 365, lastRotationTime: h.clock.now, numberOfRotations: N });
      t.deepEqual(status.keyMaterials.map((m) => [m.version, m.current]), Array.from({ length: N + 1 }, (_, i) => [i + 1, i === N]));
      const check = async (label: string): Promise<void> => {
        for (const { blob, text, dek } of blobs) {
          const i = text.endsWith("-0") ? "0" : "1";
          t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: blob, encryptionContext: { i } })).plainText.toString(), text, `${label}: ${text}`);
          t.true((await h.kms.decryptDataKey(h.ctx("carol"), { keyId, cipherText: dek!.blob, datakeyCipherLength: 16 })).dataKey.equals(dek!.plain));
        }
      };
      await check("before restart");
      await h.restart();
      await check("after restart");
      t.is(parseBlob((await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "after" })).cipherText).version, N + 1);
      // A version the key never had is the opaque error.
      const future = Buffer.from(blobs[0]!.blob);
      future.writeUInt32BE(N + 2, 19);
      await rejects(t, h.kms.decryptData(h.ctx("carol"), { cipherText: future, encryptionContext: { i: "0" } }), "KMS.2201");
      const records = (await h.store.audit.query({ keyId, action: "rotateKeyOnDemand" })).records;
      t.is(records.length, N);
      t.true(records.every((record) => record.outcome === "success" && record.principalId === "alice"));
    },
  },
  {
    title: "scheduled rotation: enable with an interval of 30..365 days; rotateDueKeys rotates keys whose interval has passed, and only those",
    async run(t, h) {
      const alice = h.ctx("alice");
      const monthly = await h.kms.createKey(alice, { keyAlias: "monthly" });
      const yearly = await h.kms.createKey(alice, { keyAlias: "yearly" });
      const off = await h.kms.createKey(alice, { keyAlias: "off" });
      const disabled = await h.kms.createKey(alice, { keyAlias: "disabled" });
      for (const bad of [29, 366, 0, "x", 30.5]) {
        await rejects(t, h.kms.enableKeyRotation(alice, { keyId: monthly.keyId, rotationInterval: bad }), "KMS.3001", String(bad));
      }
      await rejects(t, h.kms.updateKeyRotationInterval(alice, { keyId: monthly.keyId, rotationInterval: 60 }), "KMS.0313");
      t.like(await h.kms.enableKeyRotation(alice, { keyId: monthly.keyId, rotationInterval: "30" }), { keyRotationEnabled: true, rotationInterval: 30 });
      t.like(await h.kms.enableKeyRotation(alice, { keyId: monthly.keyId }), { keyRotationEnabled: true, rotationInterval: 30 }, "idempotent; keeps the interval");
      await h.kms.enableKeyRotation(alice, { keyId: yearly.keyId });
      await h.kms.enableKeyRotation(alice, { keyId: disabled.keyId, rotationInterval: 30 });
      await h.kms.disableKey(alice, { keyId: disabled.keyId });
      t.true((await h.kms.describeKey(alice, { keyId: monthly.keyId })).keyRotationEnabled);
      const blob = (await h.kms.encryptData(h.ctx("carol"), { keyId: monthly.keyId, plainText: "v1" })).cipherText;

      h.clock.now += 29 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done, []);
      h.clock.now += 1 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done, [monthly.keyId], "due at 30 days; disabled and non-rotating keys are left");
      t.deepEqual((await h.kms.rotateDueKeys()).done, [], "not again until the next interval");
      const status = await h.kms.getKeyRotationStatus(alice, { keyId: monthly.keyId });
      t.like(status, { numberOfRotations: 1, lastRotationTime: h.clock.now });
      t.is(parseBlob((await h.kms.encryptData(h.ctx("carol"), { keyId: monthly.keyId, plainText: "v2" })).cipherText).version, 2);
      t.is((await h.kms.decryptData(h.ctx("carol"), { cipherText: blob })).plainText.toString(), "v1");

      await h.kms.updateKeyRotationInterval(alice, { keyId: monthly.keyId, rotationInterval: 60 });
      h.clock.now += 59 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done, []);
      h.clock.now += 1 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done, [monthly.keyId]);
      await h.kms.disableKeyRotation(alice, { keyId: monthly.keyId });
      h.clock.now += 300 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done, [yearly.keyId], "365 days after creation; the monthly key's rotation is off");
      t.is((await h.kms.getKeyRotationStatus(alice, { keyId: off.keyId })).numberOfRotations, 0);
      t.is((await h.kms.getKeyRotationStatus(alice, { keyId: disabled.keyId })).numberOfRotations, 0);
      const auto = (await h.store.audit.query({ action: "autoRotateKey" })).records;
      t.is(auto.length, 3);
      t.true(auto.every((record) => record.detail === "reason=schedule" && record.principalId === "system"));
    },
  },
  {
    title: "the first scheduled rotation comes one interval after rotation is turned on (or the last rotation, whichever is later), also after a restart",
    async run(t, h) {
      const alice = h.ctx("alice");
      const old = await h.kms.createKey(alice, { keyAlias: "old" });
      const rotated = await h.kms.createKey(alice, { keyAlias: "rotated" });
      const again = await h.kms.createKey(alice, { keyAlias: "again" });
      await h.kms.enableKeyRotation(alice, { keyId: again.keyId, rotationInterval: 30 });
      h.clock.advanceDays(100);
      t.deepEqual((await h.kms.rotateDueKeys()).done, [again.keyId]);
      await h.kms.disableKeyRotation(alice, { keyId: again.keyId });
      await h.kms.rotateKeyOnDemand(alice, { keyId: rotated.keyId });
      h.clock.advanceDays(300);

      // 400 days old, never rotated: turning rotation on makes it due in 30 days, not at once.
      const enabledAt = h.clock.now;
      await h.kms.enableKeyRotation(alice, { keyId: old.keyId, rotationInterval: 30 });
      // Rotated by hand 300 days ago: counted from the enable, not from that rotation.
      await h.kms.enableKeyRotation(alice, { keyId: rotated.keyId, rotationInterval: 60 });
      // Turned off 300 days ago after a rotation, on again now: counted from now.
      await h.kms.enableKeyRotation(alice, { keyId: again.keyId, rotationInterval: 30 });
      t.deepEqual((await h.kms.rotateDueKeys()).done, [], "nothing is due the moment rotation is turned on");
      h.clock.advanceDays(20);
      // Enabling again while on changes nothing (it does not postpone the date).
      await h.kms.enableKeyRotation(alice, { keyId: old.keyId });
      // A new interval counts from the enable: 45 days after it, not 45 days after the key's creation.
      await h.kms.updateKeyRotationInterval(alice, { keyId: rotated.keyId, rotationInterval: 45 });
      await h.restart();
      t.deepEqual((await h.kms.rotateDueKeys()).done, [], "a restart keeps the dates");
      h.clock.now = enabledAt + 30 * DAY - 1;
      t.deepEqual((await h.kms.rotateDueKeys()).done, []);
      h.clock.now = enabledAt + 30 * DAY;
      t.deepEqual(new Set((await h.kms.rotateDueKeys()).done), new Set([old.keyId, again.keyId]));
      t.like(await h.kms.getKeyRotationStatus(h.ctx("alice"), { keyId: old.keyId }), { numberOfRotations: 1, lastRotationTime: h.clock.now });
      h.clock.now = enabledAt + 45 * DAY - 1;
      t.deepEqual((await h.kms.rotateDueKeys()).done, []);
      h.clock.now = enabledAt + 45 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done, [rotated.keyId]);
      // From then on, one interval after the last rotation.
      h.clock.now = enabledAt + 60 * DAY;
      t.deepEqual((await h.kms.rotateDueKeys()).done.sort(), [old.keyId, again.keyId].sort());
      t.deepEqual((await h.kms.rotateDueKeys()).done, []);
    },
  },
  {
    title: "a disabled or pending-deletion key is not rotated, keeps its rotation settings, and is rotated by the next sweep once enabled again after its interval has passed",
    async run(t, h) {
      const alice = h.ctx("alice");
      const disabled = await h.kms.createKey(alice, { keyAlias: "paused" });
      const pending = await h.kms.createKey(alice, { keyAlias: "reprieved" });
      const fresh = await h.kms.createKey(alice, { keyAlias: "fresh" });
      for (const { keyId } of [disabled, pending]) await h.kms.enableKeyRotation(alice, { keyId, rotationInterval: 30 });
      await h.kms.disableKey(alice, { keyId: disabled.keyId });
      await h.kms.scheduleKeyDeletion(alice, { keyId: pending.keyId, pendingDays: 60 });
      h.clock.advanceDays(20);
      // Rotation on for 21 days only when it is enabled again: not due yet.
      await h.kms.enableKeyRotation(alice, { keyId: fresh.keyId, rotationInterval: 30 });
      await h.kms.disableKey(alice, { keyId: fresh.keyId });
      h.clock.advanceDays(21);
      t.deepEqual((await h.kms.rotateDueKeys()).done, [], "neither a disabled nor a pending-deletion key is rotated");
      t.like(await h.kms.getKeyRotationStatus(alice, { keyId: disabled.keyId }), { keyRotationEnabled: true, rotationInterval: 30, numberOfRotations: 0 });
      t.true((await h.kms.describeKey(alice, { keyId: disabled.keyId })).keyRotationEnabled, "a disabled key resumes rotating once enabled");
      // OTC umn "Key Rotation Overview", AWS GetKeyRotationStatus: not rotated while pending deletion,
      // so not reported as rotating; the setting itself is kept for a cancellation to restore.
      t.like(await h.kms.getKeyRotationStatus(alice, { keyId: pending.keyId }), { keyRotationEnabled: false, rotationInterval: 30, numberOfRotations: 0 });
      t.false((await h.kms.describeKey(alice, { keyId: pending.keyId })).keyRotationEnabled, "describe-key says what the rotation status says");
      // OTC umn "About Key Rotation": once enabled again (for a pending deletion: cancelled, then
      // enabled), a key whose interval has passed is rotated at once, the others keep their plan.
      await h.kms.cancelKeyDeletion(alice, { keyId: pending.keyId });
      t.like(await h.kms.getKeyRotationStatus(alice, { keyId: pending.keyId }), { keyRotationEnabled: true, rotationInterval: 30 }, "cancelling restores the rotation status");
      for (const { keyId } of [disabled, pending, fresh]) await h.kms.enableKey(alice, { keyId });
      t.deepEqual(new Set((await h.kms.rotateDueKeys()).done), new Set([disabled.keyId, pending.keyId]));
      t.deepEqual((await h.kms.rotateDueKeys()).done, []);
    },
  },
  {
    title: "the seal limit: a version that has made sealsPerVersion seals is succeeded by a new one before the next seal — default keys too — and the count survives a restart",
    options: { tunables: { sealsPerVersion: 5 } },
    async run(t, h) {
      const carol = (): ReturnType<typeof h.ctx> => h.ctx("carol");
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "busy" });
      const keyId = key.keyId;
      const versions: number[] = [];
      const blobs: Buffer[] = [];
      for (let i = 0; i < 12; i++) {
        // Every sealing operation counts: encrypt-data, data keys, encrypt-datakey.
        const blob = i % 3 === 2
          ? (await h.kms.createDataKeyWithoutPlaintext(carol(), { keyId })).cipherText
          : (await h.kms.encryptData(carol(), { keyId, plainText: `m${i}` })).cipherText;
        versions.push(parseBlob(blob).version);
        blobs.push(blob);
      }
      t.deepEqual(versions, [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3]);
      // Concurrent seals at the limit add one version, not one each.
      const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => h.kms.encryptData(carol(), { keyId, plainText: `b${i}` })));
      const burstVersions = burst.map((r) => parseBlob(r.cipherText).version);
      t.deepEqual([...burstVersions].sort(), [3, 3, 3, 4, 4, 4, 4, 4], "3 fit in version 3, the rest go to one version 4");
      const rotations = (await h.store.audit.query({ keyId, action: "autoRotateKey" })).records;
      t.is(rotations.length, 3);
      t.true(rotations.every((record) => record.detail === "reason=seal-limit" && record.principalId === "carol"));
      for (const [i, blob] of blobs.entries()) {
        if (i % 3 === 2) continue;
        t.is((await h.kms.decryptData(carol(), { cipherText: blob })).plainText.toString(), `m${i}`);
      }

      // After a restart the count comes back from the usage records: a fresh version and a few seals on it.
      const fresh = await h.kms.rotateKeyOnDemand(h.ctx("alice"), { keyId });
      await h.kms.encryptData(carol(), { keyId, plainText: "1" });
      await h.kms.encryptData(carol(), { keyId, plainText: "2" });
      await h.restart();
      const after: number[] = [];
      for (let i = 0; i < 4; i++) after.push(parseBlob((await h.kms.encryptData(carol(), { keyId, plainText: `r${i}` })).cipherText).version);
      t.deepEqual(after, [fresh.keyVersion, fresh.keyVersion, fresh.keyVersion, fresh.keyVersion + 1], "3 more seals fit, the 4th needs a new version");

      // Default keys cannot be rotated by request, but do roll over at the limit.
      const versionsOfDefault: number[] = [];
      for (let i = 0; i < 7; i++) versionsOfDefault.push(parseBlob((await h.kms.encryptData(carol(), { keyId: "ims/default", plainText: "img" })).cipherText).version);
      t.deepEqual(versionsOfDefault, [1, 1, 1, 1, 1, 2, 2]);
      const defaultKey = await h.kms.describeKey(h.ctx("alice"), { keyId: "ims/default" });
      t.false(defaultKey.keyRotationEnabled, "its rotation stays disabled");
    },
  },
];
