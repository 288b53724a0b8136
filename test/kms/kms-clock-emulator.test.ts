// The Kms on the emulator when its clock steps (NTP step, VM restore, a restart with an earlier
// clock): the sweepers neither repeat nor skip work, and a clock gone past the year 9999 fails
// requests rather than writing records no export could carry.
import { verifyAuditExport } from "../../src/kms/audit/export.js";
import { Kms } from "../../src/kms/kms.js";
import { EMULATOR } from "./backend-fixtures.js";
import { registerKmsScenarios, rejects, type KmsScenario } from "./kms-fixtures.js";

const DAY_MS = 86_400_000;

const SCENARIOS: KmsScenario[] = [
  {
    title: "a clock stepped back after a scheduled rotation neither rotates again nor deletes a key early; the rotation resumes an interval later by that clock",
    async run(t, h) {
      const alice = h.ctx("alice");
      const { keyId } = await h.kms.createKey(alice, { keyAlias: "stepped" });
      await h.kms.enableKeyRotation(alice, { keyId, rotationInterval: 30 });
      const doomed = await h.kms.createKey(alice, { keyAlias: "doomed" });
      await h.kms.scheduleKeyDeletion(alice, { keyId: doomed.keyId, pendingDays: 25 });
      h.clock.advanceDays(30);
      t.deepEqual((await h.kms.rotateDueKeys()).done, [keyId]);
      h.clock.now -= 10 * DAY_MS;
      await h.restart();
      for (let sweep = 0; sweep < 3; sweep++) {
        t.deepEqual((await h.kms.rotateDueKeys()).done, [], `sweep ${sweep} after the step back`);
        t.deepEqual((await h.kms.deleteDueKeys()).done, [], "due on day 25, and the clock reads day 20");
      }
      t.like(await h.kms.getKeyRotationStatus(alice, { keyId }), { numberOfRotations: 1 });
      h.clock.advanceDays(40);
      t.deepEqual((await h.kms.rotateDueKeys()).done, [keyId], "30 days after the rotation, by the clock that made it");
      t.deepEqual((await h.kms.rotateDueKeys()).done, [], "once");
      t.deepEqual((await h.kms.deleteDueKeys()).done, [doomed.keyId]);
    },
  },
  {
    title: "a clock past the year 9999 fails requests (KMS.0101) without a record; the log stays exportable and verifies",
    async run(t, h) {
      const carol = h.ctx("carol");
      const { keyId } = await h.kms.createKey(h.ctx("alice"), { keyAlias: "far" });
      h.clock.now = Date.UTC(10_000, 0, 1);
      const before = (await h.store.audit.head()).seq;
      await rejects(t, h.kms.encryptData(carol, { keyId, plainText: "late" }), "KMS.0101");
      await rejects(t, h.kms.createKey(h.ctx("alice"), { keyAlias: "later" }), "KMS.0101");
      t.is((await h.store.audit.head()).seq, before, "nothing dated past 9999 in the log");
      await h.store.audit.checkpoint();
      const lines: string[] = [];
      await h.store.audit.export((line) => void lines.push(line));
      t.true((await verifyAuditExport(lines, { mac: (d) => h.backend.mac(d), verifyMac: (d, m) => h.backend.verifyMac(d, m) })).ok);
    },
  },
  {
    title: "a wall clock stepped forward does not make keys due for deletion early: the sweeper goes by the earlier of it and the monotonic clock, and warns",
    async run(t, h) {
      let wall = h.clock.now;
      let steady = 0;
      const warnings: string[] = [];
      const kms = new Kms({ backend: h.backend, store: h.store, now: () => wall, monotonicNow: () => steady, warn: (message) => void warnings.push(message) });
      const alice = h.ctx("alice");
      const doomed = await kms.createKey(alice, { keyAlias: "not-yet" });
      await kms.scheduleKeyDeletion(alice, { keyId: doomed.keyId, pendingDays: 30 });
      // The wall clock jumps 40 days ahead while 2 days pass.
      wall += 40 * DAY_MS;
      steady += 2 * DAY_MS;
      t.deepEqual((await kms.deleteDueKeys()).done, [], "due on day 30; two days have passed");
      t.is(warnings.length, 1);
      t.regex(warnings[0]!, /clock is \d+ s ahead.*deletions wait/u);
      await kms.deleteDueKeys();
      t.is(warnings.length, 1, "warned once for one jump");
      t.like(await kms.describeKey(alice, { keyId: doomed.keyId }), { keyState: 4 });
      // Time passes for real: the key is deleted when it is due by the steady clock too.
      steady += 29 * DAY_MS;
      t.deepEqual((await kms.deleteDueKeys()).done, [doomed.keyId]);
      // A clock that steps back never delays past the wall clock itself: the earlier of the two.
      const second = await kms.createKey(alice, { keyAlias: "behind" });
      await kms.scheduleKeyDeletion(alice, { keyId: second.keyId, pendingDays: 7 });
      wall -= 30 * DAY_MS;
      steady += 20 * DAY_MS;
      t.deepEqual((await kms.deleteDueKeys()).done, [], "due by the steady clock, not yet by the wall clock");
    },
  },
];

registerKmsScenarios(EMULATOR, SCENARIOS);
