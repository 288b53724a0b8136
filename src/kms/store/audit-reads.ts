/**
 * Reading the audit log out of its blocks (audit/blocks.ts, migrations.ts v3) on one connection:
 * the records that match a filter, in seq order, decoding only the blocks that can hold one.
 *
 * Which blocks: with a project, those holding the search term of the most selective filter given
 * (the key, else the action, else the project), found through the term's anchors and the block
 * lists within their reach (audit/blocks.ts "Search terms"); without one, every block. Blocks
 * start at the one holding the record after `afterSeq`, or later — the first whose time_high
 * reaches `from` (time_high never decreases, so no earlier block holds a record that late). Each
 * candidate block is skipped unless it can hold a time in [from, to). Every record of a block read
 * is then checked against every filter: terms and times only narrow the search, they never decide
 * a match.
 *
 * The columns that narrow it (first_seq, last_seq, min_time, time_high) are not covered by the
 * chain, so every block read is checked against its records: edited, they would hide records from
 * queries — or give the writer a head the records do not have — while the chain still verified.
 */
import type Database from "better-sqlite3";
import { actionTerm, decodeBlock, keyTerm, MalformedBlock, TERM_REACH_BLOCKS } from "../audit/blocks.js";
import type { AuditRecord } from "../types.js";
import type { AuditQuery } from "./store.js";

export type AuditFilter = Omit<AuditQuery, "limit">;

/** Blocks read per statement. */
const BLOCKS_PER_READ = 32;

interface BlockRow {
  first_seq: number;
  last_seq: number;
  min_time: number;
  time_high: number;
  bodies: Buffer;
  hashes: Buffer;
}

export class AuditBlockReader {
  readonly #s;

  constructor(db: Database.Database) {
    const prepare = (sql: string): Database.Statement => db.prepare(sql);
    const blockColumns = "b.first_seq, b.last_seq, b.min_time, b.time_high, b.bodies, b.hashes";
    const timeWindow = "b.time_high >= ? AND b.min_time < ?";
    /** The time_high of the first block at or after block `@param`: where a walk in log order starts. */
    const timeHighAt = (param: string): string => `(SELECT time_high FROM audit_blocks WHERE first_seq >= @${param} ORDER BY first_seq LIMIT 1)`;
    this.#s = {
      startAt: prepare("SELECT coalesce(max(first_seq), 0) FROM audit_blocks WHERE first_seq <= ?").pluck(),
      headSeq: prepare("SELECT coalesce((SELECT last_seq FROM audit_blocks ORDER BY first_seq DESC LIMIT 1), 0)").pluck(),
      startAtTime: prepare("SELECT first_seq FROM audit_blocks WHERE time_high >= ? ORDER BY time_high, first_seq LIMIT 1").pluck(),
      blocks: prepare(`SELECT ${blockColumns} FROM audit_blocks b WHERE b.first_seq >= ? AND ${timeWindow} ORDER BY b.first_seq LIMIT ${BLOCKS_PER_READ}`),
      // Blocks in log order, walked on audit_blocks_by_time rather than the table: time_high never
      // decreases along the log, so (time_high, first_seq) is log order, and that index holds two
      // numbers a block where the table holds its bodies (about a page a block). Each walk starts
      // at the time_high of the first block at or after the one named (an anchor whose block is
      // gone then reaches from the next).
      // The earliest block whose anchor could reach block @start: TERM_REACH_BLOCKS - 1 blocks before it.
      reachFrom: prepare(`SELECT first_seq FROM audit_blocks INDEXED BY audit_blocks_by_time
        WHERE time_high <= ${timeHighAt("start")} AND first_seq < @start
        ORDER BY time_high DESC, first_seq DESC LIMIT 1 OFFSET ${TERM_REACH_BLOCKS - 2}`).pluck(),
      anchors: prepare(`SELECT first_seq FROM audit_block_terms WHERE project_id = ? AND term = ? AND first_seq >= ? ORDER BY first_seq LIMIT ${BLOCKS_PER_READ}`).pluck(),
      // The first block past the reach of the anchor at block @anchor.
      reachEnd: prepare(`SELECT first_seq FROM audit_blocks INDEXED BY audit_blocks_by_time
        WHERE time_high >= ${timeHighAt("anchor")} AND first_seq > @anchor
        ORDER BY time_high, first_seq LIMIT 1 OFFSET ${TERM_REACH_BLOCKS - 1}`).pluck(),
      // The blocks of that reach in [@read, @end) that hold the term: listed by block, or anchored (a
      // block an anchor names holds its term) — a primary-key lookup each, not a scan of every term
      // of those blocks (a block of a busy store lists a hundred keys and more).
      termBlocks: prepare(`WITH reach(first_seq) AS (
          SELECT first_seq FROM audit_blocks INDEXED BY audit_blocks_by_time
          WHERE time_high >= ${timeHighAt("anchor")} AND first_seq >= @anchor
          ORDER BY time_high, first_seq LIMIT ${TERM_REACH_BLOCKS})
        SELECT r.first_seq FROM reach r WHERE r.first_seq >= @read AND r.first_seq < @end
          AND (EXISTS (SELECT 1 FROM audit_terms_by_block t WHERE t.first_seq = r.first_seq AND t.project_id = @project AND t.term = @term)
            OR EXISTS (SELECT 1 FROM audit_block_terms a WHERE a.project_id = @project AND a.term = @term AND a.first_seq = r.first_seq))
        ORDER BY r.first_seq`).pluck(),
      block: prepare(`SELECT ${blockColumns} FROM audit_blocks b WHERE b.first_seq = ? AND ${timeWindow}`),
      blockHolding: prepare(`SELECT ${blockColumns} FROM audit_blocks b WHERE b.first_seq <= ? ORDER BY b.first_seq DESC LIMIT 1`),
    };
  }

  /** The seq of the log's last record (0 for an empty log). */
  headSeq(): number {
    return this.#s.headSeq.get() as number;
  }

  /**
   * The records matching `filter`, in seq order (block order; within a block, the order written).
   * Throws MalformedBlock (audit/blocks.ts) on a block that does not decode or whose columns
   * disagree with its records.
   */
  *records(filter: AuditFilter = {}): Generator<AuditRecord> {
    const afterSeq = filter.afterSeq ?? 0;
    // Unbounded, not the widest safe integers: without a time filter no block is left out by its
    // times, so a block whose times were edited is read (and found malformed), not skipped.
    const from = filter.from ?? -Infinity;
    const to = filter.to ?? Infinity;
    let start = this.#s.startAt.get(afterSeq + 1) as number;
    if (filter.from !== undefined) {
      const byTime = this.#s.startAtTime.get(filter.from) as number | undefined;
      if (byTime === undefined) return;
      start = Math.max(start, byTime);
    }
    const project = filter.projectId;
    const term = filter.keyId !== undefined ? keyTerm(filter.keyId) : filter.action !== undefined ? actionTerm(filter.action) : "";
    const rows = project === undefined ? this.#allBlocks(start, from, to) : this.#blocksOfTerm(project, term, start, from, to);
    let timeHigh = -Infinity;
    for (const row of rows) {
      const records = recordsOf(row, timeHigh);
      timeHigh = row.time_high;
      for (const record of records) if (matches(record, filter, afterSeq)) yield record;
    }
  }

  /** Every block from `start` on that can hold a time in [from, to), in order. */
  *#allBlocks(start: number, from: number, to: number): Generator<BlockRow> {
    for (;;) {
      const rows = this.#s.blocks.all(start, from, to) as BlockRow[];
      yield* rows;
      if (rows.length < BLOCKS_PER_READ) return;
      start = rows.at(-1)!.first_seq + 1;
    }
  }

  /**
   * The blocks from `start` on that hold (project, term) and can hold a time in [from, to), in
   * order: for each anchor whose reach extends past what was read, the blocks listed within the
   * rest of that reach.
   */
  *#blocksOfTerm(project: string, term: string, start: number, from: number, to: number): Generator<BlockRow> {
    // Blocks before `read` are done (or before the start).
    let read = start;
    let anchorsFrom = (this.#s.reachFrom.get({ start }) as number | undefined) ?? 0;
    for (;;) {
      const anchors = this.#s.anchors.all(project, term, anchorsFrom) as number[];
      for (const anchor of anchors) {
        // Past the log's end: every block after the anchor is within its reach.
        const end = (this.#s.reachEnd.get({ anchor }) as number | undefined) ?? Number.MAX_SAFE_INTEGER;
        if (end <= read) continue;
        const blocks = this.#s.termBlocks.all({ anchor, read, end, project, term }) as number[];
        read = end;
        for (const firstSeq of blocks) {
          const row = this.#s.block.get(firstSeq, from, to) as BlockRow | undefined;
          if (row !== undefined) yield row;
        }
      }
      if (anchors.length < BLOCKS_PER_READ) return;
      anchorsFrom = anchors.at(-1)! + 1;
    }
  }

  /** Record `seq`, or undefined when the log holds none. */
  record(seq: number): AuditRecord | undefined {
    const row = this.#s.blockHolding.get(seq) as BlockRow | undefined;
    if (row === undefined) return undefined;
    return recordsOf(row, -Infinity).find((record) => record.seq === seq);
  }
}

/**
 * The records of a stored block, checked against the columns queries find it by: its first and
 * last seq, a min_time no later and a time_high no earlier than any of its records, and a
 * time_high no earlier than `timeHighBefore` (an earlier block's: time_high never decreases along
 * the log). min_time and time_high may be wider than the records' times: a write rolled back
 * inside a batch leaves its times in the block (blocks.ts BlockBuilder.truncate).
 */
function recordsOf(row: BlockRow, timeHighBefore: number): AuditRecord[] {
  const records = decodeBlock(row.first_seq, row.bodies, row.hashes);
  const fail = (reason: string): never => {
    throw new MalformedBlock(row.first_seq, reason);
  };
  if (records.length === 0) fail("no records");
  if (records[0]!.seq !== row.first_seq || records.at(-1)!.seq !== row.last_seq) {
    fail(`its columns say records ${row.first_seq}..${row.last_seq}, it holds records ${records[0]!.seq}..${records.at(-1)!.seq}`);
  }
  for (const record of records) {
    if (record.time < row.min_time || record.time > row.time_high) {
      fail(`record ${record.seq}'s time ${record.time} is outside the block's ${row.min_time}..${row.time_high}`);
    }
  }
  if (row.time_high < timeHighBefore) fail(`its time_high ${row.time_high} is before an earlier block's ${timeHighBefore}`);
  return records;
}

function matches(record: AuditRecord, filter: AuditFilter, afterSeq: number): boolean {
  return record.seq > afterSeq
    && (filter.projectId === undefined || record.projectId === filter.projectId)
    && (filter.keyId === undefined || record.keyId === filter.keyId)
    && (filter.action === undefined || record.action === filter.action)
    && (filter.outcome === undefined || record.outcome === filter.outcome)
    && (filter.from === undefined || record.time >= filter.from)
    && (filter.to === undefined || record.time < filter.to);
}
