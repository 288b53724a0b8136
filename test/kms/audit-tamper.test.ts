// Tampering with the audit log through raw SQL, the way someone holding the database file but not
// the token's MAC key could: every kind of edit is detected by verify(), which names the first
// record that cannot be trusted; the store refuses to reopen on a log whose end does not verify.
// Also stated by test: what cannot be detected without an anchor kept outside the database.
import test, { type ExecutionContext } from "ava";
import type Database from "better-sqlite3";
import { join } from "node:path";
import { chainHash } from "../../src/kms/audit/chain.js";
import { isStoreError } from "../../src/kms/store/errors.js";
import { auditFromRow, checkpointFromRow, type AuditRow, type CheckpointRow } from "../../src/kms/store/rows.js";
import { DATABASE_FILE, openSqliteStore, verifyAuditDatabase } from "../../src/kms/store/sqlite.js";
import type { AuditAnchor, AuditRecord } from "../../src/kms/types.js";
import type { AuditProblem, AuditVerification } from "../../src/kms/audit/verify.js";
import { event, MAC, newKey, rawDb, tempDir, testMac, withAuditRows } from "./store-helpers.js";

const P = "project-a";
const RECORDS = 50;

interface Log {
  dir: string;
  path: string;
  anchor: AuditAnchor;
}

/** A closed store holding RECORDS audit records, checkpointed every 10 (and on close). */
async function buildLog(t: ExecutionContext): Promise<Log> {
  const dir = tempDir(t);
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", checkpoints: { everyRecords: 10, everyMs: 0 } });
  const key = await store.keys.create(newKey(P), { audit: event("createKey", P, null) });
  const outcomes = ["success", "failure", "denied"] as const;
  for (let i = 1; i < RECORDS; i++) {
    const outcome = outcomes[i % 3]!;
    await store.audit.append({
      ...event(i % 2 === 0 ? "encryptData" : "decryptData", P, key.keyId, { time: 1_700_000_000_000 + i }),
      outcome, errorCode: outcome === "success" ? null : "KMS.0306",
    });
  }
  await store.close();
  const reopened = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" });
  const anchor = (await reopened.audit.anchor())!;
  await reopened.close();
  t.is(anchor.seq, RECORDS);
  t.true((await verifyAuditDatabase(join(dir, DATABASE_FILE), MAC)).ok, "intact before tampering");
  return { dir, path: join(dir, DATABASE_FILE), anchor };
}

function tamper(log: Log, edit: (db: Database.Database) => void): void {
  const db = rawDb(log.dir);
  try {
    db.transaction(() => withAuditRows(db, edit))();
  } finally {
    db.close();
  }
}

// Inside tamper(): the rows as edited so far.
const rows = (db: Database.Database): AuditRecord[] => (db.prepare("SELECT * FROM audit_log ORDER BY seq").all() as AuditRow[]).map(auditFromRow);
const checkpointSeqs = (db: Database.Database): number[] => (db.prepare("SELECT * FROM audit_checkpoints ORDER BY idx").all() as CheckpointRow[]).map((row) => checkpointFromRow(row).seq);

function bad(t: ExecutionContext, verdict: AuditVerification, problem: AuditProblem, firstBadSeq: number | null): void {
  t.false(verdict.ok, "detected");
  if (verdict.ok) return;
  t.is(verdict.problem, problem, verdict.message);
  t.is(verdict.firstBadSeq, firstBadSeq, verdict.message);
  t.log(verdict.message);
}

test("a field edited in place: the record is named", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => db.prepare("UPDATE audit_log SET outcome = 'success', error_code = NULL WHERE seq = 17").run());
  bad(t, await verifyAuditDatabase(log.path, MAC), "record-hash", 17);
});

test("every field is covered: editing any one is detected at that record", async (t) => {
  const log = await buildLog(t);
  const edits: Array<[string, unknown]> = [
    ["time", 1], ["request_id", "forged"], ["project_id", "project-b"], ["project_id", null], ["principal_id", "admin"],
    ["principal_id", null], ["source", "10.0.0.1"], ["action", "createKey"], ["key_id", "other"], ["key_id", null],
    ["outcome", "denied"], ["error_code", "KMS.0101"], ["detail", "note"], ["hash", Buffer.alloc(32)],
  ];
  for (const [column, value] of edits) {
    let before: Record<string, unknown> = {};
    tamper(log, (db) => {
      before = db.prepare("SELECT * FROM audit_log WHERE seq = 22").get() as Record<string, unknown>;
      db.prepare(`UPDATE audit_log SET ${column} = ? WHERE seq = 22`).run(value);
    });
    const verdict = await verifyAuditDatabase(log.path, MAC);
    t.false(verdict.ok, column);
    if (!verdict.ok) t.is(verdict.firstBadSeq, 22, column);
    tamper(log, (db) => db.prepare(`UPDATE audit_log SET ${column} = ? WHERE seq = 22`).run(before[column]));
  }
  t.true((await verifyAuditDatabase(log.path, MAC)).ok, "restored");
});

test("a record deleted: the gap is named", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => db.prepare("DELETE FROM audit_log WHERE seq = 17").run());
  bad(t, await verifyAuditDatabase(log.path, MAC), "sequence-gap", 17);
});

test("a record inserted (later ones renumbered): the first position that does not chain is named", async (t) => {
  const log = await buildLog(t);
  // Naive: a forged record whose hash is another record's.
  tamper(log, (db) => {
    db.prepare("UPDATE audit_log SET seq = -seq WHERE seq >= 18").run();
    db.prepare("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0").run();
    db.prepare(`INSERT INTO audit_log SELECT 18, time, 'forged', project_id, principal_id, source, action, key_id, 'success', NULL, NULL, hash
      FROM audit_log WHERE seq = 17`).run();
  });
  bad(t, await verifyAuditDatabase(log.path, MAC), "record-hash", 18);
});

test("a record inserted with a correctly chained hash: the next record no longer chains and is named", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => {
    const seventeen = rows(db)[16]!;
    db.prepare("UPDATE audit_log SET seq = -seq WHERE seq >= 18").run();
    db.prepare("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0").run();
    const forged = { ...seventeen, seq: 18, requestId: "forged", outcome: "success" as const, errorCode: null };
    const hash = chainHash(seventeen.hash, forged);
    db.prepare(`INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      18, forged.time, forged.requestId, forged.projectId, forged.principalId, forged.source, forged.action, forged.keyId, forged.outcome, null, null, hash);
  });
  // Record 18 chains (anyone can compute a chain value); the old 18, now 19, carries its old seq's hash.
  bad(t, await verifyAuditDatabase(log.path, MAC), "record-hash", 19);
});

test("two records swapped: the first of them is named", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => {
    db.prepare("UPDATE audit_log SET seq = -1 WHERE seq = 17").run();
    db.prepare("UPDATE audit_log SET seq = 17 WHERE seq = 18").run();
    db.prepare("UPDATE audit_log SET seq = 18 WHERE seq = -1").run();
  });
  bad(t, await verifyAuditDatabase(log.path, MAC), "record-hash", 17);
});

test("an edit with every later hash recomputed: the checkpoint after it disagrees; the records since the previous checkpoint are suspect", async (t) => {
  const log = await buildLog(t);
  let expectedFrom = 0;
  tamper(log, (db) => {
    const all = rows(db);
    const seqs = checkpointSeqs(db);
    expectedFrom = Math.max(0, ...seqs.filter((seq) => seq < 17)) + 1;
    const update = db.prepare("UPDATE audit_log SET outcome = ?, error_code = ?, hash = ? WHERE seq = ?");
    let previous = all[15]!.hash;
    for (const record of all.slice(16)) {
      const edited = record.seq === 17 ? { ...record, outcome: "success" as const, errorCode: null } : record;
      previous = chainHash(previous, edited);
      update.run(edited.outcome, edited.errorCode, previous, record.seq);
    }
  });
  t.true(expectedFrom > 1 && expectedFrom <= 17);
  bad(t, await verifyAuditDatabase(log.path, MAC), "checkpoint-mismatch", expectedFrom);
  const error = await t.throwsAsync(openSqliteStore({ directory: log.dir, mac: MAC, writer: "inline" }));
  t.true(isStoreError(error, "ERR_KMS_AUDIT_TAMPERED"), "the store will not append to a log whose newest checkpoint disagrees");
});

test("records cut from the end that a checkpoint covers: truncation is named, and the store refuses to open", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => db.prepare("DELETE FROM audit_log WHERE seq > 40").run());
  bad(t, await verifyAuditDatabase(log.path, MAC), "truncated", 41);
  const error = await t.throwsAsync(openSqliteStore({ directory: log.dir, mac: MAC, writer: "inline" }));
  t.true(isStoreError(error, "ERR_KMS_AUDIT_TAMPERED"));
  t.is((error as { verification?: { problem: string } }).verification?.problem, "truncated");
});

test("records and the checkpoints covering them cut from the end: undetectable inside the database, caught by an anchor", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => {
    db.prepare("DELETE FROM audit_log WHERE seq > 40").run();
    db.prepare("DELETE FROM audit_checkpoints WHERE seq > 40").run();
  });
  const alone = await verifyAuditDatabase(log.path, MAC);
  t.true(alone.ok, "a shorter log with its own checkpoints looks intact: this is what an anchor is for");
  if (alone.ok) t.is(alone.headSeq, 40);
  bad(t, await verifyAuditDatabase(log.path, MAC, { anchor: log.anchor }), "truncated", 41);
});

test("only the newest checkpoint deleted: the records after the one before are reported as unanchored", async (t) => {
  const log = await buildLog(t);
  let previous = 0;
  tamper(log, (db) => {
    db.prepare("DELETE FROM audit_checkpoints WHERE idx = (SELECT max(idx) FROM audit_checkpoints)").run();
    previous = Math.max(...checkpointSeqs(db));
  });
  const verdict = await verifyAuditDatabase(log.path, MAC);
  t.true(verdict.ok);
  if (verdict.ok) t.is(verdict.unanchored, RECORDS - previous);
  bad(t, await verifyAuditDatabase(log.path, MAC, { anchor: log.anchor }), "truncated", null);
});

test("a checkpoint edited, forged or removed from the middle is detected", async (t) => {
  const log = await buildLog(t);
  const db = rawDb(log.dir);
  const original = db.prepare("SELECT * FROM audit_checkpoints WHERE idx = 2").get() as CheckpointRow;
  db.close();
  const cases: Array<[string, (db: Database.Database) => void, AuditProblem]> = [
    ["mac", (d) => d.prepare("UPDATE audit_checkpoints SET mac = zeroblob(32) WHERE idx = 2").run(), "checkpoint-mac"],
    ["hash", (d) => d.prepare("UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 3) WHERE idx = 2").run(), "checkpoint-mac"],
    ["seq", (d) => d.prepare("UPDATE audit_checkpoints SET seq = seq - 1 WHERE idx = 2").run(), "checkpoint-mac"],
    ["reason", (d) => d.prepare("UPDATE audit_checkpoints SET reason = 'manual' WHERE idx = 2").run(), "checkpoint-mac"],
    ["removed", (d) => d.prepare("DELETE FROM audit_checkpoints WHERE idx = 2").run(), "checkpoint-gap"],
  ];
  for (const [name, edit, problem] of cases) {
    tamper(log, edit);
    const verdict = await verifyAuditDatabase(log.path, MAC);
    t.false(verdict.ok, name);
    if (!verdict.ok) {
      t.is(verdict.problem, problem, `${name}: ${verdict.message}`);
      t.is(verdict.checkpointIndex, 2, name);
    }
    tamper(log, (d) => {
      d.prepare("DELETE FROM audit_checkpoints WHERE idx = 2").run();
      d.prepare("INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?)").run(original.idx, original.seq, original.hash, original.time, original.reason, original.mac);
    });
  }
  t.true((await verifyAuditDatabase(log.path, MAC)).ok, "restored");
  tamper(log, (d) => d.prepare("UPDATE audit_checkpoints SET mac = zeroblob(32) WHERE idx = (SELECT max(idx) FROM audit_checkpoints)").run());
  t.true(isStoreError(await t.throwsAsync(openSqliteStore({ directory: log.dir, mac: MAC, writer: "inline" })), "ERR_KMS_AUDIT_TAMPERED"));
});

test("another MAC key does not verify the checkpoints; an anchor of another log is refused", async (t) => {
  const log = await buildLog(t);
  bad(t, await verifyAuditDatabase(log.path, testMac(Buffer.alloc(32, 1))), "checkpoint-mac", null);
  const other = await buildLog(t);
  bad(t, await verifyAuditDatabase(log.path, MAC, { anchor: other.anchor }), "anchor-mismatch", null);
  bad(t, await verifyAuditDatabase(log.path, MAC, { anchor: { ...log.anchor, hash: other.anchor.hash } }), "anchor-mismatch", null);
  t.true((await verifyAuditDatabase(log.path, MAC, { anchor: log.anchor })).ok);
});

test("an edit deep in the log passes the cheap open-time check but not a full one", async (t) => {
  const log = await buildLog(t);
  tamper(log, (db) => db.prepare("UPDATE audit_log SET principal_id = 'someone-else' WHERE seq = 5").run());
  const store = await openSqliteStore({ directory: log.dir, mac: MAC, writer: "inline" });
  bad(t, await store.audit.verify(), "record-hash", 5);
  await store.close();
  const error = await t.throwsAsync(openSqliteStore({ directory: log.dir, mac: MAC, writer: "inline", verifyOnOpen: "full" }));
  t.true(isStoreError(error, "ERR_KMS_AUDIT_TAMPERED"));
});

test("a block's columns edited: verify() names its first record (malformed) rather than passing or reporting its records deleted", async (t) => {
  // first_seq, last_seq, min_time and time_high are how queries find a block (audit-reads.ts), and
  // the chain does not cover them: edited, they hid records from queries while verify() passed.
  const log = await buildLog(t);
  tamper(log, () => undefined); // blocks of 8 records: 1..8, 9..16, 17..24, …
  const db = rawDb(log.dir);
  const original = db.prepare("SELECT * FROM audit_blocks WHERE first_seq = 17").get() as Record<string, unknown>;
  db.close();
  const cases: Array<[string, string]> = [
    ["first_seq moved into the block", "UPDATE audit_blocks SET first_seq = 18 WHERE first_seq = 17"],
    ["last_seq raised", "UPDATE audit_blocks SET last_seq = 30 WHERE first_seq = 17"],
    ["last_seq lowered", "UPDATE audit_blocks SET last_seq = 20 WHERE first_seq = 17"],
    ["min_time after its records", "UPDATE audit_blocks SET min_time = min_time + 1000 WHERE first_seq = 17"],
    ["min_time past every time", "UPDATE audit_blocks SET min_time = 9007199254740993 WHERE first_seq = 17"],
    ["time_high before its records", "UPDATE audit_blocks SET time_high = 0 WHERE first_seq = 17"],
    ["time_high before every time", "UPDATE audit_blocks SET time_high = -9007199254740993 WHERE first_seq = 17"],
  ];
  for (const [name, sql] of cases) {
    const edit = rawDb(log.dir);
    edit.exec(sql);
    edit.close();
    bad(t, await verifyAuditDatabase(log.path, MAC), "malformed", 17);
    const restore = rawDb(log.dir);
    restore.prepare("DELETE FROM audit_blocks WHERE first_seq IN (17, 18)").run();
    restore.prepare("INSERT INTO audit_blocks VALUES (@first_seq, @last_seq, @min_time, @time_high, @bodies, @hashes)").run(original);
    restore.close();
  }
  t.true((await verifyAuditDatabase(log.path, MAC)).ok, "restored");
});

test("the newest block unreadable, or its columns claiming records it does not hold: the store refuses to open (ERR_KMS_AUDIT_TAMPERED) and appends nothing", async (t) => {
  // The writer takes the head from the newest block's last_seq and last chain value. Opened on
  // such a block, the store wrote a gap (or a chain restarted at the genesis) into the log itself
  // and MACed a checkpoint over it; on bytes that are no records, open failed with an error that
  // was no StoreError at all.
  const cases: Array<[string, string, number]> = [
    ["last_seq raised", "UPDATE audit_blocks SET last_seq = last_seq + 10 WHERE first_seq = (SELECT max(first_seq) FROM audit_blocks)", RECORDS],
    ["an empty block after the last", "INSERT INTO audit_blocks SELECT max(last_seq) + 1, max(last_seq) + 1, 0, max(time_high), x'', x'' FROM audit_blocks", RECORDS + 1],
    ["bodies cut short", "UPDATE audit_blocks SET bodies = substr(bodies, 1, length(bodies) - 3) WHERE first_seq = (SELECT max(first_seq) FROM audit_blocks)", RECORDS],
  ];
  for (const [name, sql, firstBadSeq] of cases) {
    const log = await buildLog(t);
    const db = rawDb(log.dir);
    db.exec(sql);
    db.close();
    const before = await verifyAuditDatabase(log.path, MAC);
    bad(t, before, "malformed", firstBadSeq);
    const error = await t.throwsAsync(openSqliteStore({ directory: log.dir, mac: MAC, writer: "inline" }), undefined, name);
    t.true(isStoreError(error, "ERR_KMS_AUDIT_TAMPERED"), `${name}: ${String(error)}`);
    const verification = (error as { verification?: { problem: string; firstBadSeq: number | null } }).verification;
    t.is(verification?.problem, "malformed", name);
    t.is(verification?.firstBadSeq, firstBadSeq, name);
    t.deepEqual(await verifyAuditDatabase(log.path, MAC), before, `${name}: nothing was appended`);
  }
});
