/**
 * The audit trail of the Kms, one body for both tokens (kms-audit-emulator.test.ts,
 * kms-audit-softhsm.test.ts): every request on a key — allowed or denied, successful or failed — has
 * exactly one record with Huawei's action name, committed before the request is acknowledged; the
 * chain's checkpoints are MACed by the token's key; editing, deleting, inserting or reordering any
 * record is detected by verify(); usage records count successes per key.
 */
import type Database from "better-sqlite3";
import { P, Q, rejects, type KmsHarness, type KmsScenario } from "./kms-fixtures.js";
import { rawDb, withAuditRows } from "./store-helpers.js";
import type { AuditRecord } from "../../src/kms/types.js";

/** Runs `edit` on the database (on audit rows: store-helpers.ts withAuditRows), verifies through the Kms, and restores the log exactly. */
async function tampered(h: KmsHarness, edit: (db: Database.Database) => void): Promise<Awaited<ReturnType<KmsHarness["kms"]["verifyAuditLog"]>>> {
  const db = rawDb(h.dir);
  const blocks = db.prepare("SELECT * FROM audit_blocks").all() as Array<Record<string, unknown>>;
  const terms = db.prepare("SELECT * FROM audit_block_terms").all() as Array<Record<string, unknown>>;
  try {
    db.transaction(() => withAuditRows(db, edit))();
    return await h.store.audit.verify();
  } finally {
    db.transaction(() => {
      db.prepare("DELETE FROM audit_blocks").run();
      db.prepare("DELETE FROM audit_block_terms").run();
      const block = db.prepare(`INSERT INTO audit_blocks (first_seq, last_seq, min_time, time_high, bodies, hashes)
        VALUES (@first_seq, @last_seq, @min_time, @time_high, @bodies, @hashes)`);
      for (const row of blocks) block.run(row);
      const term = db.prepare("INSERT INTO audit_block_terms (project_id, term, first_seq) VALUES (@project_id, @term, @first_seq)");
      for (const row of terms) term.run(row);
    })();
    db.close();
  }
}

export const AUDIT_SCENARIOS: KmsScenario[] = [
  {
    title: "every request on a key leaves exactly one record — success, failure or denied — with Huawei's action, the request's id, principal, source and outcome",
    async run(t, h) {
      const alice = h.ctx("alice");
      const created = await h.kms.createKey(alice, { keyAlias: "audited" });
      const keyId = created.keyId;
      const steps: Array<[string, string, string | null, () => Promise<unknown>, string]> = [];
      const step = (action: string, outcome: string, code: string | null, call: (ctx: ReturnType<KmsHarness["ctx"]>) => Promise<unknown>, who = "carol"): void => {
        steps.push([action, outcome, code, () => call(h.ctx(who)), who]);
      };
      let blob: Buffer = Buffer.alloc(0);
      step("encryptData", "success", null, async (ctx) => {
        blob = (await h.kms.encryptData(ctx, { keyId, plainText: "x" })).cipherText;
      });
      step("decryptData", "success", null, (ctx) => h.kms.decryptData(ctx, { cipherText: blob }));
      step("decryptData", "failure", "KMS.2201", (ctx) => h.kms.decryptData(ctx, { cipherText: blob, additionalAuthenticatedData: "wrong" }));
      step("encryptData", "denied", "KMS.0306", (ctx) => h.kms.encryptData(ctx, { keyId, plainText: "x" }), "alice");
      step("encryptData", "denied", "KMS.0306", (ctx) => h.kms.encryptData(ctx, { keyId, plainText: "x" }), "erin");
      step("disableKey", "success", null, (ctx) => h.kms.disableKey(ctx, { keyId }), "alice");
      step("disableKey", "failure", "KMS.1301", (ctx) => h.kms.disableKey(ctx, { keyId }), "alice");
      step("encryptData", "failure", "KMS.0209", (ctx) => h.kms.encryptData(ctx, { keyId, plainText: "x" }));
      step("enableKey", "success", null, (ctx) => h.kms.enableKey(ctx, { keyId }), "alice");
      step("createDataKey", "success", null, (ctx) => h.kms.createDataKey(ctx, { keyId }));
      step("createDataKeyWithoutPlaintext", "failure", "KMS.1903", (ctx) => h.kms.createDataKeyWithoutPlaintext(ctx, { keyId, datakeyLength: 9 }));
      step("describeKey", "success", null, (ctx) => h.kms.describeKey(ctx, { keyId }), "dave");
      step("updateKeyAlias", "failure", "KMS.1101", (ctx) => h.kms.updateKeyAlias(ctx, { keyId, keyAlias: "a/default" }), "alice");
      step("updateKeyDescription", "success", null, (ctx) => h.kms.updateKeyDescription(ctx, { keyId, keyDescription: "d" }), "alice");
      step("createGrant", "success", null, (ctx) => h.kms.createGrant(ctx, { keyId, granteePrincipal: "frank", operations: ["describe-key"] }), "alice");
      step("scheduleKeyDeletion", "failure", "KMS.1401", (ctx) => h.kms.scheduleKeyDeletion(ctx, { keyId, pendingDays: 3 }), "alice");
      step("scheduleKeyDeletion", "success", null, (ctx) => h.kms.scheduleKeyDeletion(ctx, { keyId, pendingDays: 30 }), "alice");
      step("cancelKeyDeletion", "success", null, (ctx) => h.kms.cancelKeyDeletion(ctx, { keyId }), "alice");
      step("describeKey", "success", null, (ctx) => h.kms.describeKey(ctx, { keyId }), "frank");
      step("encryptData", "denied", "KMS.0306", (ctx) => h.kms.encryptData(ctx, { keyId, plainText: "x" }), "frank");

      const before = (await h.store.audit.head()).seq;
      for (const [, , , call] of steps) {
        try {
          await call();
        } catch {
          // The outcome is what the audit log says.
        }
      }
      const records = (await h.kms.queryAuditLog(h.ctx("dave"), { afterSeq: before })).records.filter((r) => r.action !== "queryAuditLog");
      t.deepEqual(records.map((r) => [r.action, r.outcome, r.errorCode]), steps.map(([action, outcome, code]) => [action, outcome, code]), "one record per request, in order");
      for (const record of records) {
        t.is(record.keyId, keyId);
        t.is(record.projectId, P);
        t.is(record.source, "test");
        t.regex(record.requestId, /^req-\d+$/u);
        t.is(record.time, h.clock.now);
      }
      t.deepEqual(records.map((r) => r.principalId), steps.map((s) => s[4]));
      // A denied request of another project is recorded in the project it named, with the key it named.
      await rejects(t, h.kms.describeKey(h.ctx("bob", P), { keyId }), "KMS.0306");
      const last = (await h.store.audit.query({ afterSeq: (await h.store.audit.head()).seq - 1 })).records[0]!;
      t.like(last, { action: "describeKey", outcome: "denied", errorCode: "KMS.0306", principalId: "bob", projectId: P, keyId });
      // Requests on no key: gen-random, list-keys.
      await h.kms.genRandom(h.ctx("carol"), { randomDataLength: 64 });
      await h.kms.listKeys(h.ctx("bob", Q));
      const tail = (await h.store.audit.query({ afterSeq: (await h.store.audit.head()).seq - 2 })).records;
      t.deepEqual(tail.map((r) => [r.action, r.keyId, r.projectId]), [["genRandom", null, P], ["listKeys", null, Q]]);
    },
  },
  {
    title: "a create-key that fails names no key in its record: the id it would have had was never anyone's",
    async run(t, h) {
      const alice = h.ctx("alice");
      const made = await h.kms.createKey(alice, { keyAlias: "taken" });
      await rejects(t, h.kms.createKey(alice, { keyAlias: "taken" }), "KMS.1104");
      const records = (await h.kms.queryAuditLog(h.ctx("dave"), { action: "createKey", limit: 1000 })).records;
      t.like(records.at(-2), { outcome: "success", keyId: made.keyId, detail: "alias=taken" });
      t.like(records.at(-1), { outcome: "failure", errorCode: "KMS.1104", keyId: null, detail: "alias=taken" });
    },
  },
  {
    title: "paging through the log a record at a time ends: the pages read as far as the log reached at the first page, though each query is audited",
    async run(t, h) {
      const alice = h.ctx("alice");
      const { keyId } = await h.kms.createKey(alice, { keyAlias: "paged" });
      for (let i = 0; i < 4; i++) await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" });
      const head = (await h.store.audit.head()).seq;
      const seen: AuditRecord[] = [];
      let page = await h.kms.queryAuditLog(h.ctx("dave"), { limit: 1 });
      t.is(page.throughSeq, head);
      seen.push(...page.records);
      for (let pages = 1; page.nextSeq !== null; pages++) {
        if (pages > 2 * head) return t.fail(`still paging after ${pages} pages of a log of ${head} records`);
        page = await h.kms.queryAuditLog(h.ctx("dave"), { limit: 1, afterSeq: page.nextSeq, throughSeq: page.throughSeq });
        t.is(page.throughSeq, head);
        seen.push(...page.records);
      }
      const project = (await h.store.audit.query({ projectId: P, throughSeq: head, limit: 1000 })).records;
      t.true(project.length >= 6);
      t.deepEqual(seen.map((r) => r.seq), project.map((r) => r.seq), "every record of the project once, up to the first page's end of the log");
      // The queries are in the log all the same, and a new paging reads them.
      const queries = (await h.kms.queryAuditLog(h.ctx("dave"), { action: "queryAuditLog", limit: 1000 })).records;
      t.is(queries.length, project.length);
      await rejects(t, h.kms.queryAuditLog(h.ctx("dave"), { throughSeq: -1 }), "KMS.1602");
    },
  },
  {
    title: "a write the store fails inside its transaction (not a KmsError) leaves one failure record, not two",
    async run(t, h) {
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "faulty" });
      const db = rawDb(h.dir);
      db.exec("CREATE TRIGGER fault BEFORE UPDATE ON keys BEGIN SELECT RAISE(ABORT, 'injected fault'); END");
      db.close();
      const before = (await h.store.audit.head()).seq;
      const ctx = h.ctx("alice");
      await rejects(t, h.kms.disableKey(ctx, { keyId: key.keyId }), "KMS.0101");
      const records = (await h.store.audit.query({ afterSeq: before })).records;
      t.deepEqual(records.map((r) => [r.action, r.requestId, r.keyId, r.outcome, r.errorCode]), [["disableKey", ctx.requestId, key.keyId, "failure", "KMS.0101"]]);
    },
  },
  {
    title: "concurrent first uses of a project record its creation once, and no failure for the request that lost the race",
    async run(t, h) {
      await h.kms.admin.addRole("alice", "projectr", "key_admin");
      const before = (await h.store.audit.head()).seq;
      await Promise.all(["r1", "r2", "r3"].map((keyAlias) => h.kms.createKey(h.ctx("alice", "projectr"), { keyAlias })));
      const records = (await h.store.audit.query({ afterSeq: before })).records;
      t.deepEqual(records.map((r) => [r.action, r.outcome]).sort(), [["createKey", "success"], ["createKey", "success"], ["createKey", "success"], ["createProject", "success"]]);
    },
  },
  {
    title: "usage records count each key's successful operations and their last time",
    async run(t, h) {
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "used" });
      const keyId = key.keyId;
      const blobs = [];
      for (let i = 0; i < 3; i++) blobs.push((await h.kms.encryptData(h.ctx("carol"), { keyId, plainText: "x" })).cipherText);
      h.clock.now += 5000;
      for (const blob of blobs.slice(0, 2)) await h.kms.decryptData(h.ctx("carol"), { cipherText: blob });
      await rejects(t, h.kms.decryptData(h.ctx("carol"), { cipherText: blobs[0]!, additionalAuthenticatedData: "no" }), "KMS.2201");
      await rejects(t, h.kms.encryptData(h.ctx("alice"), { keyId, plainText: "x" }), "KMS.0306");
      const usage = await h.kms.getKeyUsage(h.ctx("dave"), { keyId });
      const byAction = Object.fromEntries(usage.map((u) => [u.action, [u.count, u.lastUsedAt]]));
      t.deepEqual(byAction.encryptData, [3, h.clock.now - 5000]);
      t.deepEqual(byAction.decryptData, [2, h.clock.now]);
      t.deepEqual(byAction.createKey, [1, h.clock.now - 5000]);
      await rejects(t, h.kms.getKeyUsage(h.ctx("carol"), { keyId }), "KMS.0306");
      await rejects(t, h.kms.getKeyUsage(h.ctx("bob", Q), { keyId }), "KMS.0207");
      // Counts survive a restart (derived from the committed log).
      await h.restart();
      const again = Object.fromEntries((await h.kms.getKeyUsage(h.ctx("dave"), { keyId })).map((u) => [u.action, u.count]));
      t.is(again.encryptData, 3);
      t.is(again.decryptData, 2);
    },
  },
  {
    title: "verify(): the log is intact with checkpoints MACed by the token's key; editing, deleting, inserting or reordering any record is detected",
    options: { store: { checkpoints: { everyRecords: 8, everyMs: 0 } } },
    async run(t, h) {
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "evidence" });
      for (let i = 0; i < 20; i++) {
        const ctx = h.ctx(i % 4 === 0 ? "alice" : "carol");
        await h.kms.encryptData(ctx, { keyId: key.keyId, plainText: `m${i}` }).catch(() => undefined);
      }
      const ok = await h.kms.verifyAuditLog(h.ctx("dave"));
      t.true(ok.ok, JSON.stringify(ok));
      if (!ok.ok) return;
      t.true(ok.checkpoints >= 2, "MACed checkpoints, verified in the token");
      await rejects(t, h.kms.verifyAuditLog(h.ctx("carol")), "KMS.0306");

      const denied = (await h.store.audit.query({ outcome: "denied" })).records[0]!;
      const n = denied.seq;
      const edit = await tampered(h, (db) => db.prepare("UPDATE audit_log SET outcome = 'success', error_code = NULL WHERE seq = ?").run(n));
      t.like(edit, { ok: false, problem: "record-hash", firstBadSeq: n }, "a denial rewritten as a success");
      const removed = await tampered(h, (db) => db.prepare("DELETE FROM audit_log WHERE seq = ?").run(n));
      t.like(removed, { ok: false, problem: "sequence-gap", firstBadSeq: n }, "a record deleted");
      const inserted = await tampered(h, (db) => {
        db.prepare("UPDATE audit_log SET seq = -seq - 1 WHERE seq >= ?").run(n);
        db.prepare("UPDATE audit_log SET seq = -seq WHERE seq < 0").run();
        db.prepare(`INSERT INTO audit_log (seq, time, request_id, project_id, principal_id, source, action, key_id, outcome, error_code, detail, hash)
          SELECT ?, time, 'forged', project_id, principal_id, source, action, key_id, 'success', NULL, detail, hash FROM audit_log WHERE seq = ?`).run(n, n + 1);
      });
      t.like(inserted, { ok: false, firstBadSeq: n }, "a record inserted");
      const swapped = await tampered(h, (db) => {
        const a = db.prepare("SELECT * FROM audit_log WHERE seq = ?").get(n) as AuditRecord & Record<string, unknown>;
        const b = db.prepare("SELECT * FROM audit_log WHERE seq = ?").get(n + 1) as AuditRecord & Record<string, unknown>;
        const put = db.prepare(`UPDATE audit_log SET time = @time, request_id = @request_id, project_id = @project_id, principal_id = @principal_id,
          source = @source, action = @action, key_id = @key_id, outcome = @outcome, error_code = @error_code, detail = @detail, hash = @hash WHERE seq = @target`);
        put.run({ ...b, target: n });
        put.run({ ...a, target: n + 1 });
      });
      t.like(swapped, { ok: false, firstBadSeq: n }, "two records reordered");
      t.true((await h.kms.verifyAuditLog(h.ctx("dave"))).ok, "restored");
    },
  },
  {
    title: "export: an auditor exports the project's records as JSON lines; another project's auditor sees none of them",
    async run(t, h) {
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "exported" });
      await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText: "x" });
      await h.kms.createKey(h.ctx("bob", Q), { keyAlias: "q-key" });
      const lines: string[] = [];
      const count = await h.kms.exportAuditLog(h.ctx("dave"), (line) => {
        lines.push(line);
      }, { keyId: key.keyId });
      t.is(count, 2);
      const records = lines.map((line) => JSON.parse(line) as { type: string; action?: string; projectId?: string });
      t.is(records[0]!.type, "header");
      t.deepEqual(records.slice(1).map((r) => r.action), ["createKey", "encryptData"]);
      const qLines: string[] = [];
      await h.kms.exportAuditLog(h.ctx("bob", Q), (line) => {
        qLines.push(line);
      });
      t.false(qLines.some((line) => line.includes(key.keyId)));
      t.true(qLines.slice(1).every((line) => (JSON.parse(line) as { projectId: string }).projectId === Q));
    },
  },
];
