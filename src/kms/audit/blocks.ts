/**
 * Audit blocks: how the store keeps the audit log (docs/kms-store.md "Audit blocks"). Each group
 * commit that appends records writes them as one row: their canonical bodies (chain.ts, which
 * carry every field including seq) back to back, and their chain values, 32 bytes each, in seq
 * order. Alongside, one row per distinct search term of the block — the project, each key and
 * each action within the project — points queries at the blocks that can hold what they look for.
 *
 * Why not a row per record: at tens of thousands of audited requests a second the per-record
 * INSERT with its three secondary indexes was most of a request's CPU (measured: 26 µs per record
 * against 5 µs for a block, bench notes in docs/BENCHMARKS.md). A block costs one INSERT and a few
 * index entries per commit; its terms grow with the distinct keys and actions in a batch, not
 * with the records. Nothing about tamper evidence changes: the chain runs over the same bodies,
 * and verify() reads the records back one by one.
 */
import { chainHashInto, decodeRecord, encodeRecordUnchecked, HASH_LENGTH, maxEncodedLength, type ChainedFields } from "./chain.js";
import type { AuditRecord } from "../types.js";

/** A block as the store writes it. */
export interface AuditBlock {
  firstSeq: number;
  lastSeq: number;
  minTime: number;
  maxTime: number;
  bodies: Buffer;
  hashes: Buffer;
  /** [project ("" for none), term] pairs: "" the project, "k:<key id>", "a:<action>". */
  terms: Array<[string, string]>;
}

/**
 * Search terms (docs/kms-store.md "Search terms"). Every block lists its terms in
 * audit_terms_by_block, in block order: a commit appends its rows at the end of that index. The
 * per-term index, audit_block_terms, holds anchors: a row for block F says that F holds the term
 * and that any of the TERM_REACH_BLOCKS blocks beginning at F may hold it (audit_terms_by_block
 * says which). The writer anchors a term again only when its last anchor no longer reaches the
 * block — once in 64 commits for a key in constant use, instead of a row, and a page of that
 * index, per commit. A query reads a term's anchors, then the block list within each reach.
 *
 * Part of the stored format: a different reach would misread the anchors already written.
 */
export const TERM_REACH_BLOCKS = 64;

/** A (project, term) pair as one string; the length prefix keeps any two pairs apart. */
const termId = (project: string, term: string): string => `${project.length}:${project}${term}`;

/**
 * The writer's memory of the anchors it wrote, counting blocks as it commits them. Blocks must
 * be consecutive in the log from the first the writer commits: the store has one writer, and a
 * new writer (a restart) starts with an empty memory, so it anchors every term once more — a
 * spare anchor costs a query a look, never a miss.
 */
export class TermAnchors {
  /** Term → the ordinal of the block it was last anchored at. */
  readonly #anchoredAt = new Map<string, number>();
  /** Ordinal of the next block to commit. */
  #next = 0;

  /** Of the next block's `terms`, those that need an anchor row. */
  due(terms: ReadonlyArray<readonly [string, string]>): Array<readonly [string, string]> {
    const due: Array<readonly [string, string]> = [];
    for (const pair of terms) {
      const at = this.#anchoredAt.get(termId(pair[0], pair[1]));
      if (at === undefined || this.#next - at >= TERM_REACH_BLOCKS) due.push(pair);
    }
    return due;
  }

  /** The next block committed with anchor rows for `anchored` (what due() gave for it). */
  committed(anchored: ReadonlyArray<readonly [string, string]>): void {
    for (const [project, term] of anchored) this.#anchoredAt.set(termId(project, term), this.#next);
    this.#next++;
    // Forget anchors that reach no further block, so the memory holds recent terms only.
    if (this.#next % TERM_REACH_BLOCKS === 0) {
      for (const [id, at] of this.#anchoredAt) if (this.#next - at >= TERM_REACH_BLOCKS) this.#anchoredAt.delete(id);
    }
  }
}

/** The term a query by key uses. */
export const keyTerm = (keyId: string): string => `k:${keyId}`;
/** The term a query by action uses. */
export const actionTerm = (action: string): string => `a:${action}`;
/** A record's project as block terms name it (records without one: ""). */
export const termProject = (projectId: string | null): string => projectId ?? "";

/**
 * The search terms of a block's records. Records are noted by their fields into nested sets (no
 * string is joined per record: the request path notes one per request); terms listed elsewhere
 * (the records of another thread) are taken as they are; list() gives each term once.
 */
export class BlockTerms {
  readonly #named = new Map<string, { keys: Set<string>; actions: Set<string> }>();
  #listed: Array<readonly [string, string]> = [];

  note(projectId: string | null, keyId: string | null, action: string): void {
    const project = termProject(projectId);
    let named = this.#named.get(project);
    if (named === undefined) this.#named.set(project, (named = { keys: new Set(), actions: new Set() }));
    named.actions.add(action);
    if (keyId !== null) named.keys.add(keyId);
  }

  take(terms: ReadonlyArray<readonly [string, string]>): void {
    this.#listed = this.#listed.concat(terms);
  }

  clear(): void {
    this.#named.clear();
    this.#listed = [];
  }

  list(): Array<[string, string]> {
    const terms = new Map<string, [string, string]>();
    const add = (project: string, term: string): void => {
      const id = termId(project, term);
      if (!terms.has(id)) terms.set(id, [project, term]);
    };
    for (const [project, { keys, actions }] of this.#named) {
      add(project, "");
      for (const keyId of keys) add(project, keyTerm(keyId));
      for (const action of actions) add(project, actionTerm(action));
    }
    for (const [project, term] of this.#listed) add(project, term);
    return [...terms.values()];
  }
}

/**
 * Collects the records of one transaction. Appends chain each record to the previous one; mark()
 * and truncate() undo the records of a write rolled back to its savepoint.
 */
export class BlockBuilder {
  #scratch: Buffer = Buffer.allocUnsafe(16384);
  #bodies: Buffer = Buffer.allocUnsafe(65536);
  #length = 0;
  #hashes: Buffer = Buffer.allocUnsafe(HASH_LENGTH * 256);
  #count = 0;
  #firstSeq = 0;
  #minTime = Infinity;
  #maxTime = -Infinity;
  readonly #terms = new BlockTerms();

  get count(): number {
    return this.#count;
  }

  /** Starts a block whose first record will be `firstSeq`. */
  reset(firstSeq: number): void {
    this.#length = 0;
    this.#count = 0;
    this.#firstSeq = firstSeq;
    this.#minTime = Infinity;
    this.#maxTime = -Infinity;
    this.#terms.clear();
  }

  /** Appends `fields` (checked, with its seq) chained after `previous`; returns its chain value. */
  append(previous: Buffer, fields: ChainedFields): Buffer {
    const room = HASH_LENGTH + maxEncodedLength(fields);
    if (this.#scratch.length < room) this.#scratch = Buffer.allocUnsafe(Math.max(room, this.#scratch.length * 2));
    const { hash, end } = chainHashInto(this.#scratch, previous, fields);
    const bodyLength = end - HASH_LENGTH;
    this.#bodies = grow(this.#bodies, this.#length + bodyLength);
    this.#scratch.copy(this.#bodies, this.#length, HASH_LENGTH, end);
    this.#length += bodyLength;
    this.#hashes = grow(this.#hashes, (this.#count + 1) * HASH_LENGTH);
    hash.copy(this.#hashes, this.#count * HASH_LENGTH);
    this.#count++;
    if (fields.time < this.#minTime) this.#minTime = fields.time;
    if (fields.time > this.#maxTime) this.#maxTime = fields.time;
    this.#terms.note(fields.projectId, fields.keyId, fields.action);
    return hash;
  }

  /**
   * Appends records numbered and chained already (src/crypto/audit-chain.ts): their bodies back to
   * back and their chain values. The caller adds their times and terms with include().
   */
  appendChained(bodies: Uint8Array, hashes: Uint8Array, count: number): void {
    if (hashes.length !== count * HASH_LENGTH) throw new RangeError(`${count} records need ${count * HASH_LENGTH} bytes of chain values, not ${hashes.length}`);
    this.#bodies = grow(this.#bodies, this.#length + bodies.length);
    this.#bodies.set(bodies, this.#length);
    this.#length += bodies.length;
    this.#hashes = grow(this.#hashes, (this.#count + count) * HASH_LENGTH);
    this.#hashes.set(hashes, this.#count * HASH_LENGTH);
    this.#count += count;
  }

  /** Widens the block's time range and adds search terms (for records the request path batched: appendChained). */
  include(minTime: number, maxTime: number, terms: ReadonlyArray<readonly [string, string]>): void {
    if (minTime < this.#minTime) this.#minTime = minTime;
    if (maxTime > this.#maxTime) this.#maxTime = maxTime;
    this.#terms.take(terms);
  }

  /** Where the block stands, for truncate(). */
  mark(): { count: number; length: number } {
    return { count: this.#count, length: this.#length };
  }

  /**
   * Drops the records after `mark`. Their terms and times stay: a term names blocks that *may*
   * hold a match, so a spare one only costs a query a look.
   */
  truncate(mark: { count: number; length: number }): void {
    this.#count = mark.count;
    this.#length = mark.length;
  }

  /** The chain values so far, copied (32 bytes each). */
  hashes(): Uint8Array {
    const out = new Uint8Array(this.#count * HASH_LENGTH);
    out.set(this.#hashes.subarray(0, this.#count * HASH_LENGTH));
    return out;
  }

  /** The block, or null when no record was appended. */
  build(): AuditBlock | null {
    if (this.#count === 0) return null;
    return {
      firstSeq: this.#firstSeq,
      lastSeq: this.#firstSeq + this.#count - 1,
      minTime: this.#minTime,
      maxTime: this.#maxTime,
      bodies: Buffer.from(this.#bodies.subarray(0, this.#length)),
      hashes: Buffer.from(this.#hashes.subarray(0, this.#count * HASH_LENGTH)),
      terms: this.#terms.list(),
    };
  }

}

function grow(buffer: Buffer, needed: number): Buffer {
  if (buffer.length >= needed) return buffer;
  const bigger = Buffer.allocUnsafe(Math.max(needed, buffer.length * 2));
  buffer.copy(bigger);
  return bigger;
}

/** The block's terms for records given as fields (a migration or a rewrite building blocks from rows). */
export function termsOf(records: readonly ChainedFields[]): Array<[string, string]> {
  const terms = new BlockTerms();
  for (const fields of records) terms.note(fields.projectId, fields.keyId, fields.action);
  return terms.list();
}

/**
 * A block holding `records` as they are, stored chain values included, nothing checked or
 * recomputed: for copying records that were stored before (a migration) — and for tests that play
 * an intruder rewriting the log.
 */
export function blockOf(records: readonly AuditRecord[]): AuditBlock {
  if (records.length === 0) throw new RangeError("a block holds at least one record");
  let minTime = Infinity;
  let maxTime = -Infinity;
  for (const record of records) {
    minTime = Math.min(minTime, record.time);
    maxTime = Math.max(maxTime, record.time);
  }
  return {
    firstSeq: records[0]!.seq,
    lastSeq: records.at(-1)!.seq,
    minTime,
    maxTime,
    bodies: Buffer.concat(records.map(({ hash: _hash, ...fields }) => encodeRecordUnchecked(fields))),
    hashes: Buffer.concat(records.map((record) => record.hash)),
    terms: termsOf(records),
  };
}

/** A stored block's bytes that do not read back as records. */
export class MalformedBlock extends Error {
  constructor(readonly firstSeq: number, reason: string) {
    super(`audit block at record ${firstSeq}: ${reason}`);
  }
}

/**
 * The records of a stored block, in the order they were written: each body decoded, with the
 * chain value stored beside it. Throws MalformedBlock when the bodies do not decode or the
 * number of chain values differs from the number of bodies.
 */
export function decodeBlock(firstSeq: number, bodies: Buffer, hashes: Buffer): AuditRecord[] {
  const records: AuditRecord[] = [];
  let at = 0;
  try {
    while (at < bodies.length) {
      const { fields, end } = decodeRecord(bodies, at);
      at = end;
      const index = records.length;
      if ((index + 1) * HASH_LENGTH > hashes.length) throw new MalformedBlock(firstSeq, `more records than chain values (${hashes.length / HASH_LENGTH})`);
      records.push({ ...fields, hash: Buffer.from(hashes.subarray(index * HASH_LENGTH, (index + 1) * HASH_LENGTH)) });
    }
  } catch (error) {
    if (error instanceof MalformedBlock) throw error;
    throw new MalformedBlock(firstSeq, (error as Error).message);
  }
  if (records.length * HASH_LENGTH !== hashes.length) throw new MalformedBlock(firstSeq, `${records.length} records but ${hashes.length / HASH_LENGTH} chain values`);
  return records;
}
