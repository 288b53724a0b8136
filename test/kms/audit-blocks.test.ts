// The audit log in blocks (audit/blocks.ts, store/audit-reads.ts, migration 3): queries give
// exactly what filtering every record would give, page by page, whatever the filter; a store of
// schema version 2 (a row per record) is upgraded with its records, chain values and doctoring
// intact; and bytes that are no records make verify() fail, never crash.
import test from "ava";
import Database from "better-sqlite3";
import fc from "fast-check";
import { join } from "node:path";
import { TERM_REACH_BLOCKS } from "../../src/kms/audit/blocks.js";
import { chainHash, genesisHash } from "../../src/kms/audit/chain.js";
import { isStoreError } from "../../src/kms/store/errors.js";
import { migrate, MIGRATIONS } from "../../src/kms/store/migrations.js";
import { DATABASE_FILE, openSqliteStore, verifyAuditDatabase } from "../../src/kms/store/sqlite.js";
import type { AuditQuery } from "../../src/kms/store/store.js";
import type { AuditOutcome, AuditRecord } from "../../src/kms/types.js";
import { auditRecords, MAC, openStore, rawDb, tempDir, WRITERS } from "./store-helpers.js";

const PROJECTS = ["p-1", "p-2", "p-3"];
const KEYS = ["k-1", "k-2", "k-3", "k-4"];
const ACTIONS = ["encryptData", "decryptData", "createKey", "genRandom"];
const OUTCOMES: AuditOutcome[] = ["success", "failure", "denied"];
const T0 = 1_700_000_000_000;

/** What a query must return: every record passing every filter, after afterSeq, in seq order. */
function expected(all: readonly AuditRecord[], filter: AuditQuery): AuditRecord[] {
  return all.filter((r) => r.seq > (filter.afterSeq ?? 0)
    && (filter.projectId === undefined || r.projectId === filter.projectId)
    && (filter.keyId === undefined || r.keyId === filter.keyId)
    && (filter.action === undefined || r.action === filter.action)
    && (filter.outcome === undefined || r.outcome === filter.outcome)
    && (filter.from === undefined || r.time >= filter.from)
    && (filter.to === undefined || r.time < filter.to));
}

for (const writer of WRITERS) {
  test(`queries over blocks equal filtering every record, page by page [${writer}]`, async (t) => {
    const store = await openStore(t, { writer, checkpoints: { everyRecords: 50, everyMs: 0 } });
    // Records in batches of every size (one group commit each), times not in seq order.
    const rng = fc.sample(fc.tuple(fc.nat(2), fc.nat(4), fc.nat(3), fc.nat(2), fc.integer({ min: -500, max: 500 })), { numRuns: 900, seed: 7 });
    let at = 0;
    while (at < rng.length) {
      const size = 1 + (at % 97);
      await Promise.all(rng.slice(at, at + size).map(([p, k, a, o, jitter], i) => store.audit.append({
        requestId: `r-${at + i}`, projectId: p === 2 && k === 4 ? null : PROJECTS[p]!, principalId: "u", source: "s",
        action: ACTIONS[a]!, keyId: k === 4 ? null : KEYS[k]!, outcome: OUTCOMES[o]!, errorCode: o === 0 ? null : "KMS.0306",
        time: T0 + (at + i) * 10 + jitter,
      })));
      at += size;
    }
    const all = (await collect(store, {})).map(({ hash: _hash, ...fields }) => fields);
    t.is(all.length, rng.length);
    t.deepEqual(all.map((r) => r.seq), all.map((_, i) => all[0]!.seq + i), "every record, in seq order");
    const withHashes = await collect(store, {});
    const filters = fc.sample(fc.record({
      projectId: fc.option(fc.constantFrom(...PROJECTS), { nil: undefined }),
      keyId: fc.option(fc.constantFrom(...KEYS), { nil: undefined }),
      action: fc.option(fc.constantFrom(...ACTIONS), { nil: undefined }),
      outcome: fc.option(fc.constantFrom(...OUTCOMES), { nil: undefined }),
      from: fc.option(fc.integer({ min: T0 - 1000, max: T0 + 10_000 }), { nil: undefined }),
      to: fc.option(fc.integer({ min: T0, max: T0 + 11_000 }), { nil: undefined }),
      limit: fc.integer({ min: 1, max: 300 }),
    }, { requiredKeys: ["limit"] }), { numRuns: 120, seed: 11 });
    for (const filter of filters) {
      const { limit, ...rest } = filter;
      const got = await collect(store, rest, limit);
      t.deepEqual(got.map((r) => r.seq), expected(withHashes, rest).map((r) => r.seq), JSON.stringify(filter));
    }
    t.true((await store.audit.verify()).ok);
  });
}

for (const writer of WRITERS) {
  test(`search terms across anchor reaches: a key in every block, keys in a few, a writer restarted between [${writer}]`, async (t) => {
    const dir = tempDir(t);
    const blocks = 5 * TERM_REACH_BLOCKS + 7;
    // Block b (one append each, so one block each) holds the key "hot", and "rare" where listed:
    // at reach boundaries, far apart, and after the restart (a writer that remembers no anchor).
    const rare = new Set([0, 1, TERM_REACH_BLOCKS - 1, TERM_REACH_BLOCKS, 3 * TERM_REACH_BLOCKS + 5, blocks - 2]);
    const restartAt = 2 * TERM_REACH_BLOCKS + 10;
    let store = await openSqliteStore({ directory: dir, mac: MAC, writer, checkpoints: { everyRecords: 1_000_000, everyMs: 0 } });
    try {
      for (let b = 0; b < blocks; b++) {
        if (b === restartAt) {
          await store.close();
          store = await openSqliteStore({ directory: dir, mac: MAC, writer, checkpoints: { everyRecords: 1_000_000, everyMs: 0 } });
        }
        const keyId = rare.has(b) ? "rare" : b % 3 === 0 ? null : "hot";
        await store.audit.append({ requestId: `r-${b}`, projectId: b % 11 === 5 ? "p-2" : "p-1", principalId: "u", source: "s",
          action: b === 150 ? "scheduleKeyDeletion" : "encryptData", keyId, outcome: "success", time: T0 + b });
      }
      const all = await collect(store, {});
      t.is(all.length, blocks);
      const db = rawDb(dir);
      try {
        t.is(db.prepare("SELECT count(*) FROM audit_blocks").pluck().get(), blocks, "a block per append");
        const anchors = db.prepare("SELECT count(*) FROM audit_block_terms WHERE project_id = 'p-1' AND term = 'k:hot'").pluck().get() as number;
        t.true(anchors <= Math.ceil(blocks / TERM_REACH_BLOCKS) + 2, `${anchors} anchors for the key in most blocks`);
        t.is(db.prepare("SELECT count(*) FROM audit_terms_by_block WHERE project_id = 'p-1' AND term = 'k:hot'").pluck().get(),
          all.filter((r) => r.projectId === "p-1" && r.keyId === "hot").length, "listed in every block holding it");
      } finally {
        db.close();
      }
      const filters: Array<Omit<AuditQuery, "limit">> = [];
      for (const projectId of ["p-1", "p-2", "p-3"]) {
        for (const term of [{}, { keyId: "hot" }, { keyId: "rare" }, { keyId: "none" }, { action: "scheduleKeyDeletion" }, { action: "encryptData" }]) {
          filters.push({ projectId, ...term });
          for (const afterSeq of [1, TERM_REACH_BLOCKS - 1, TERM_REACH_BLOCKS, 2 * TERM_REACH_BLOCKS + 3, restartAt + 1, blocks - 3]) filters.push({ projectId, ...term, afterSeq });
          filters.push({ projectId, ...term, from: T0 + TERM_REACH_BLOCKS + 1, to: T0 + 4 * TERM_REACH_BLOCKS });
        }
      }
      for (const filter of filters) {
        for (const limit of [1, 7, 1000]) {
          t.deepEqual((await collect(store, filter, limit)).map((r) => r.seq), expected(all, filter).map((r) => r.seq), `${JSON.stringify(filter)} limit ${limit}`);
        }
      }
      t.true((await store.audit.verify()).ok);
      // A block cut out of the log (verify() reports it; queries still answer from what is left):
      // its anchor reaches from the next block, so no later record is lost to it.
      const cut = rawDb(dir);
      let gone: number;
      try {
        gone = cut.prepare("SELECT min(first_seq) FROM audit_block_terms WHERE project_id = 'p-1' AND term = 'k:hot' AND first_seq > ?").pluck().get(TERM_REACH_BLOCKS) as number;
        cut.prepare("DELETE FROM audit_blocks WHERE first_seq = ?").run(gone);
      } finally {
        cut.close();
      }
      for (const filter of [{ projectId: "p-1", keyId: "hot" }, { projectId: "p-1", keyId: "hot", afterSeq: gone - 2 }]) {
        t.deepEqual((await collect(store, filter, 5)).map((r) => r.seq), expected(all, filter).map((r) => r.seq).filter((seq) => seq !== gone), `${JSON.stringify(filter)} without block ${gone}`);
      }
      t.false((await store.audit.verify()).ok);
    } finally {
      await store.close();
    }
  });
}

test("queries over many small blocks equal filtering every record, for keys of every frequency (fast-check)", async (t) => {
  const store = await openStore(t, { writer: "inline", checkpoints: { everyRecords: 1_000_000, everyMs: 0 } });
  // 4 reaches' worth of blocks of 1-3 records; key k-i turns up in a block with probability 2^-i,
  // so some keys are in nearly every block and some in a handful, far apart.
  const blocks = fc.sample(fc.array(fc.tuple(fc.nat(1000), fc.nat(2), fc.nat(3)), { minLength: 1, maxLength: 3 }), { numRuns: 4 * TERM_REACH_BLOCKS + 11, seed: 23 });
  let n = 0;
  for (const block of blocks) {
    await Promise.all(block.map(([draw, p, a]) => {
      const level = draw === 0 ? 9 : Math.min(9, Math.floor(Math.log2(1000 / draw)));
      return store.audit.append({ requestId: `r-${n}`, projectId: PROJECTS[p]!, principalId: "u", source: "s", action: ACTIONS[a]!,
        keyId: `k-${level}`, outcome: "success", time: T0 + n++ });
    }));
  }
  const all = await collect(store, {});
  t.is(all.length, n);
  const filters = fc.sample(fc.record({
    projectId: fc.constantFrom(...PROJECTS),
    keyId: fc.option(fc.constantFrom(...Array.from({ length: 10 }, (_, i) => `k-${i}`)), { nil: undefined }),
    action: fc.option(fc.constantFrom(...ACTIONS), { nil: undefined }),
    afterSeq: fc.option(fc.integer({ min: 0, max: n }), { nil: undefined }),
    from: fc.option(fc.integer({ min: T0, max: T0 + n }), { nil: undefined }),
    limit: fc.integer({ min: 1, max: 50 }),
  }, { requiredKeys: ["projectId", "limit"] }), { numRuns: 150, seed: 29 });
  for (const { limit, ...filter } of filters) {
    t.deepEqual((await collect(store, filter, limit)).map((r) => r.seq), expected(all, filter).map((r) => r.seq), JSON.stringify(filter));
  }
});

async function collect(store: Awaited<ReturnType<typeof openStore>>, filter: Omit<AuditQuery, "limit">, limit = 1000): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let afterSeq: number | undefined;
  for (;;) {
    const page = await store.audit.query({ ...filter, limit, ...(afterSeq === undefined ? {} : { afterSeq }) });
    out.push(...page.records);
    if (page.nextSeq === null) return out;
    if (page.records.length !== limit) throw new Error("a page with a next page must be full");
    afterSeq = page.nextSeq;
  }
}

/** A store database at schema version 2 holding `count` chained records in the per-record table. */
function versionTwoLog(dir: string, count: number, doctor?: (seq: number, row: unknown[]) => void): AuditRecord[] {
  const db = new Database(join(dir, DATABASE_FILE));
  try {
    db.pragma("journal_mode = WAL");
    migrate(db, MIGRATIONS.slice(0, 2));
    const logId = db.prepare("SELECT value FROM meta WHERE name = 'log_id'").pluck().get() as Buffer;
    const insert = db.prepare("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    const records: AuditRecord[] = [];
    let previous = genesisHash(logId);
    db.transaction(() => {
      for (let seq = 1; seq <= count; seq++) {
        const fields = {
          seq, time: T0 + seq, requestId: `old-${seq}`, projectId: PROJECTS[seq % 3]!, principalId: "u", source: "s",
          action: ACTIONS[seq % 4]!, keyId: seq % 5 === 0 ? null : KEYS[seq % 4]!, outcome: OUTCOMES[seq % 3]!,
          errorCode: seq % 3 === 0 ? null : "KMS.0306", detail: seq % 7 === 0 ? `détail ${seq}` : null,
        };
        previous = chainHash(previous, fields);
        records.push({ ...fields, hash: previous });
        const row = [seq, fields.time, fields.requestId, fields.projectId, fields.principalId, fields.source, fields.action, fields.keyId,
          fields.outcome, fields.errorCode, fields.detail, previous];
        doctor?.(seq, row);
        insert.run(...row);
      }
    })();
    return records;
  } finally {
    db.close();
  }
}

test("a store of schema version 2 is upgraded: every record, its chain value and the chain carry over; queries find them", async (t) => {
  const dir = tempDir(t);
  const records = versionTwoLog(dir, 2500);
  const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline" });
  try {
    t.deepEqual(store.migration.applied.map((m) => m.version), [3, 4, 5]);
    const db = rawDb(dir);
    t.deepEqual(auditRecords(db).slice(0, records.length), records);
    t.is(db.prepare("SELECT count(*) FROM audit_blocks").pluck().get(), 3, "1024 records per block");
    t.is(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'audit_log'").pluck().get(), 0);
    db.close();
    const verdict = await store.audit.verify();
    t.true(verdict.ok);
    if (verdict.ok) t.is(verdict.headSeq, 2500);
    const page = await store.audit.query({ projectId: "p-1", keyId: "k-2", limit: 1000 });
    t.deepEqual(page.records.map((r) => r.seq), expected(records, { projectId: "p-1", keyId: "k-2" }).map((r) => r.seq));
    const next = await store.audit.append({ requestId: "new", projectId: "p-1", principalId: "u", source: "s", action: "genRandom", keyId: null, outcome: "success" });
    t.is(next.seq, 2501, "appends continue the chain");
  } finally {
    await store.close();
  }
  t.true((await verifyAuditDatabase(join(dir, DATABASE_FILE), MAC)).ok);
});

test("a record doctored before the upgrade is carried over as it is, and found", async (t) => {
  const dir = tempDir(t);
  versionTwoLog(dir, 1500, (seq, row) => {
    if (seq === 700) row[8] = "success";
  });
  const error = await t.throwsAsync(openSqliteStore({ directory: dir, mac: MAC, writer: "inline" }));
  t.true(isStoreError(error, "ERR_KMS_AUDIT_TAMPERED"), `the log's end (no checkpoint yet) is verified on open: ${String(error)}`);
  const verdict = await verifyAuditDatabase(join(dir, DATABASE_FILE), MAC);
  t.false(verdict.ok);
  if (!verdict.ok) {
    t.is(verdict.problem, "record-hash");
    t.is(verdict.firstBadSeq, 700);
  }
});

test("a block whose bytes are no records: verify() names the first record it cannot read, queries fail cleanly", async (t) => {
  const dir = tempDir(t);
  const store = await openStore(t, { directory: dir, writer: "inline", checkpoints: { everyRecords: 1_000_000, everyMs: 0 } });
  for (let i = 0; i < 3; i++) {
    await Promise.all(Array.from({ length: 10 }, (_, j) => store.audit.append({
      requestId: `r-${i}-${j}`, projectId: "p-1", principalId: "u", source: "s", action: "genRandom", keyId: null, outcome: "success",
    })));
  }
  const db = rawDb(dir);
  const second = db.prepare("SELECT first_seq FROM audit_blocks ORDER BY first_seq LIMIT 1 OFFSET 1").pluck().get() as number;
  for (const [name, sql] of [
    ["cut short", "UPDATE audit_blocks SET bodies = substr(bodies, 1, length(bodies) - 3) WHERE first_seq = ?"],
    ["a chain value missing", "UPDATE audit_blocks SET hashes = substr(hashes, 1, length(hashes) - 32) WHERE first_seq = ?"],
    ["garbage", "UPDATE audit_blocks SET bodies = randomblob(length(bodies)) WHERE first_seq = ?"],
  ] as const) {
    const original = db.prepare("SELECT bodies, hashes FROM audit_blocks WHERE first_seq = ?").get(second) as { bodies: Buffer; hashes: Buffer };
    db.prepare(sql).run(second);
    const verdict = await store.audit.verify();
    t.false(verdict.ok, name);
    if (!verdict.ok) {
      t.is(verdict.problem, "malformed", `${name}: ${verdict.message}`);
      t.is(verdict.firstBadSeq, second, name);
    }
    await t.throwsAsync(store.audit.query({ projectId: "p-1", limit: 1000 }), undefined, name);
    db.prepare("UPDATE audit_blocks SET bodies = ?, hashes = ? WHERE first_seq = ?").run(original.bodies, original.hashes, second);
  }
  db.close();
  t.true((await store.audit.verify()).ok, "restored");
});
