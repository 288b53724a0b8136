/**
 * Verifying an audit log: records in seq order and the log's checkpoints in, a verdict out —
 * "intact" with what that covers, or the first problem with the first record that cannot be
 * trusted. It knows nothing of SQLite: the store feeds it rows, the export reader feeds it lines.
 *
 * What each check catches (docs/kms-store.md "What verify() proves"):
 * - A record edited in place (any field, or its stored hash) no longer matches its chain value:
 *   "record-hash", naming that record.
 * - A record deleted: seq numbers have a gap: "sequence-gap", naming the first missing seq.
 * - A record inserted or two records swapped: the seq/content/hash no longer line up: "record-hash"
 *   (or "sequence-gap"), naming the first position where they do not.
 * - Any of those with every later hash recomputed (no secret is needed for that): the chain value at
 *   the next checkpoint differs from the MACed one: "checkpoint-mismatch"; the alteration lies after
 *   the previous good checkpoint, whose next record is named (the earliest record that cannot be
 *   trusted — which one was changed cannot be told).
 * - Records deleted from the end: a checkpoint vouches for records that are not there: "truncated".
 * - A checkpoint edited, forged or deleted: "checkpoint-mac" / "checkpoint-gap" / "checkpoint-order".
 * Not caught without an anchor: records deleted from the end together with every checkpoint that
 * covers them (the log then looks like a shorter, intact log); not caught at all: the end of the
 * log after the newest checkpoint ("unanchored" in the verdict) being cut off or extended.
 */
import type { AuditAnchor, AuditCheckpoint, AuditRecord } from "../types.js";
import { chainHash, genesisHash, type ChainedFields } from "./chain.js";
import { checkpointMacValid, fromAnchor, type AuditMac } from "./checkpoints.js";

export type AuditProblem =
  /** A record does not match its chain value: edited, inserted or moved. */
  | "record-hash"
  /** Records are missing (deleted) before the last one present. */
  | "sequence-gap"
  /** seq numbers go backwards or repeat (an export in the wrong order, a doctored file). */
  | "sequence-order"
  /** The chain value at a checkpoint is not the one the checkpoint's MAC vouches for. */
  | "checkpoint-mismatch"
  /** A checkpoint's MAC is wrong: the checkpoint was edited or forged (or the MAC key is not this log's). */
  | "checkpoint-mac"
  /** A checkpoint is missing from the numbered series. */
  | "checkpoint-gap"
  /** Checkpoints do not advance along the log. */
  | "checkpoint-order"
  /** A checkpoint or the anchor vouches for records that are not there: the log was cut back. */
  | "truncated"
  /** The anchor is not from this log, its MAC is wrong, or the log disagrees with it. */
  | "anchor-mismatch"
  /** A record cannot be encoded (a field of the wrong type or shape). */
  | "malformed";

export interface AuditVerifyOk {
  ok: true;
  /** Records checked. */
  records: number;
  /** Checkpoints checked (MAC and chain value). */
  checkpoints: number;
  /** The last record's seq and chain value (0 and the genesis for an empty log). */
  headSeq: number;
  headHash: Buffer;
  /** seq of the newest checkpoint (0: none). */
  lastCheckpointSeq: number;
  /**
   * Records after the newest checkpoint. The chain links them, but no MAC vouches for them yet:
   * they could have been cut off or appended by someone writing the database, undetectably.
   */
  unanchored: number;
  /**
   * seq of checkpoints written when the store reopened after a crash ("recovery"): the records
   * since the previous checkpoint were only chained, not MACed, while the KMS was down.
   */
  recoveryCheckpoints: number[];
  /** Whether an anchor was given and matched. */
  anchorChecked: boolean;
}

export interface AuditVerifyFailure {
  ok: false;
  problem: AuditProblem;
  /** The first record that cannot be trusted; null when the problem is in a checkpoint or anchor alone. */
  firstBadSeq: number | null;
  /** The checkpoint involved, when one is. */
  checkpointIndex: number | null;
  /** For the operator. */
  message: string;
  /** Records found intact before the problem. */
  records: number;
}

export type AuditVerification = AuditVerifyOk | AuditVerifyFailure;

export interface VerifyOptions {
  /** A checkpoint kept outside the database (audit.anchor()): detects a log cut back before it. */
  anchor?: AuditAnchor | undefined;
}

/**
 * Where a partial verification starts: right after a checkpoint already checked (its MAC, and its
 * record's chain value). The store uses it on open, to check only the records after the newest
 * checkpoint.
 */
export interface VerifyStart {
  seq: number;
  hash: Buffer;
  checkpointIndex: number;
}

/**
 * Checks records pushed in seq order against the chain and the checkpoints. push() returns false
 * once a problem is found (later records are not examined: after a break nothing is trusted);
 * finish() gives the verdict.
 */
export class ChainVerifier {
  #previous: Buffer;
  #lastSeq = 0;
  #records = 0;
  #checkpointsChecked = 0;
  #nextCheckpoint = 0;
  #lastCheckpointSeq = 0;
  #lastCheckpointIndex = 0;
  readonly #recoveries: number[] = [];
  readonly #checkpoints: readonly AuditCheckpoint[];
  readonly #anchor: { logId: Buffer; checkpoint: AuditCheckpoint } | null;
  #anchorHash: Buffer | null = null;
  #failure: AuditVerifyFailure | null = null;

  constructor(
    private readonly logId: Buffer,
    private readonly mac: AuditMac,
    checkpoints: readonly AuditCheckpoint[],
    options: VerifyOptions & { start?: VerifyStart } = {},
  ) {
    this.#previous = genesisHash(logId);
    if (options.start !== undefined) {
      this.#previous = options.start.hash;
      this.#lastSeq = options.start.seq;
      this.#lastCheckpointSeq = options.start.seq;
      this.#lastCheckpointIndex = options.start.checkpointIndex;
    }
    this.#checkpoints = [...checkpoints].sort((a, b) => a.index - b.index);
    if (options.anchor === undefined) {
      this.#anchor = null;
    } else {
      try {
        this.#anchor = fromAnchor(options.anchor);
      } catch (error) {
        this.#anchor = null;
        this.#fail("anchor-mismatch", null, null, `the anchor is malformed: ${(error as Error).message}`);
      }
    }
    if (this.#anchor !== null) {
      const { logId: anchorLog, checkpoint } = this.#anchor;
      if (!anchorLog.equals(logId)) {
        this.#fail("anchor-mismatch", null, checkpoint.index, `the anchor belongs to log ${anchorLog.toString("hex")}, not ${logId.toString("hex")}`);
      } else if (!checkpointMacValid(logId, checkpoint, mac)) {
        this.#fail("anchor-mismatch", null, checkpoint.index, "the anchor's MAC is wrong: it was not made by this log's key");
      }
    }
  }

  /** The problem found so far, if any. */
  get failure(): AuditVerifyFailure | null {
    return this.#failure;
  }

  #fail(problem: AuditProblem, firstBadSeq: number | null, checkpointIndex: number | null, message: string): false {
    this.#failure ??= { ok: false, problem, firstBadSeq, checkpointIndex, message, records: this.#records };
    return false;
  }

  /** Checks the next checkpoint, which claims `chainValue` (null: the log has no record at its seq). */
  #checkCheckpoint(checkpoint: AuditCheckpoint, chainValue: Buffer | null): boolean {
    const expectedIndex = this.#lastCheckpointIndex + 1;
    if (checkpoint.index !== expectedIndex) {
      return this.#fail("checkpoint-gap", null, expectedIndex,
        `checkpoint ${expectedIndex} is missing (the next one present is ${checkpoint.index})`);
    }
    if (!checkpointMacValid(this.logId, checkpoint, this.mac)) {
      return this.#fail("checkpoint-mac", null, checkpoint.index,
        `checkpoint ${checkpoint.index} (at record ${checkpoint.seq}) has a wrong MAC: it was edited or forged`);
    }
    if (checkpoint.seq <= this.#lastCheckpointSeq) {
      return this.#fail("checkpoint-order", null, checkpoint.index,
        `checkpoint ${checkpoint.index} is at record ${checkpoint.seq}, not after the previous one at ${this.#lastCheckpointSeq}`);
    }
    if (chainValue === null) {
      return this.#fail("truncated", this.#lastSeq + 1, checkpoint.index,
        `checkpoint ${checkpoint.index} vouches for records up to ${checkpoint.seq}, but the log ends at ${this.#lastSeq}: records were removed`);
    }
    if (!checkpoint.hash.equals(chainValue)) {
      const from = this.#lastCheckpointSeq + 1;
      return this.#fail("checkpoint-mismatch", from, checkpoint.index,
        `the chain value at record ${checkpoint.seq} is not the one checkpoint ${checkpoint.index} vouches for: ` +
        `records ${from}..${checkpoint.seq} were altered and their hashes recomputed`);
    }
    this.#checkpointsChecked++;
    this.#lastCheckpointSeq = checkpoint.seq;
    this.#lastCheckpointIndex = checkpoint.index;
    if (checkpoint.reason === "recovery") this.#recoveries.push(checkpoint.seq);
    return true;
  }

  /** Feeds the next record; false once the log is known to be bad. */
  push(record: AuditRecord): boolean {
    if (this.#failure !== null) return false;
    const expected = this.#lastSeq + 1;
    if (record.seq !== expected) {
      if (Number.isSafeInteger(record.seq) && record.seq > expected) {
        const missing = record.seq - 1 === expected ? `record ${expected} is` : `records ${expected}..${record.seq - 1} are`;
        return this.#fail("sequence-gap", expected, null, `${missing} missing: the log goes from ${this.#lastSeq} to ${record.seq}`);
      }
      return this.#fail("sequence-order", record.seq, null, `record ${String(record.seq)} follows record ${this.#lastSeq}`);
    }
    let value: Buffer;
    try {
      value = chainHash(this.#previous, fieldsOf(record));
    } catch (error) {
      return this.#fail("malformed", record.seq, null, `record ${record.seq} cannot be encoded: ${(error as Error).message}`);
    }
    if (!Buffer.isBuffer(record.hash) || !value.equals(record.hash)) {
      return this.#fail("record-hash", record.seq, null, `record ${record.seq} does not match its chain value: it was altered, inserted or moved`);
    }
    while (this.#nextCheckpoint < this.#checkpoints.length) {
      const checkpoint = this.#checkpoints[this.#nextCheckpoint]!;
      if (checkpoint.seq > record.seq) break;
      this.#nextCheckpoint++;
      if (!this.#checkCheckpoint(checkpoint, checkpoint.seq === record.seq ? value : null)) return false;
    }
    if (this.#anchor !== null && this.#anchor.checkpoint.seq === record.seq) this.#anchorHash = value;
    this.#previous = value;
    this.#lastSeq = record.seq;
    this.#records++;
    return true;
  }

  /**
   * The stored log cannot be read back as records from here on (bytes that are no record): the
   * next record expected is the first that cannot be trusted.
   */
  malformed(message: string): void {
    this.#fail("malformed", this.#lastSeq + 1, null, `the log after record ${this.#lastSeq} cannot be read: ${message}`);
  }

  /** The verdict over everything pushed. */
  finish(): AuditVerification {
    // Checkpoints beyond the last record: each must still be genuine, and then it proves a cut.
    while (this.#failure === null && this.#nextCheckpoint < this.#checkpoints.length) {
      this.#checkCheckpoint(this.#checkpoints[this.#nextCheckpoint++]!, null);
    }
    if (this.#failure === null && this.#anchor !== null) this.#checkAnchor(this.#anchor.checkpoint);
    if (this.#failure !== null) return this.#failure;
    return {
      ok: true,
      records: this.#records,
      checkpoints: this.#checkpointsChecked,
      headSeq: this.#lastSeq,
      headHash: this.#previous,
      lastCheckpointSeq: this.#lastCheckpointSeq,
      unanchored: this.#lastSeq - this.#lastCheckpointSeq,
      recoveryCheckpoints: this.#recoveries,
      anchorChecked: this.#anchor !== null,
    };
  }

  #checkAnchor(anchor: AuditCheckpoint): void {
    if (anchor.seq > this.#lastSeq) {
      this.#fail("truncated", this.#lastSeq + 1, anchor.index,
        `the anchor vouches for records up to ${anchor.seq}, but the log ends at ${this.#lastSeq}: records were removed`);
      return;
    }
    if (anchor.index > this.#lastCheckpointIndex) {
      this.#fail("truncated", null, anchor.index,
        `the anchor is checkpoint ${anchor.index}, but the log's checkpoints end at ${this.#lastCheckpointIndex}: checkpoints were removed`);
      return;
    }
    const own = this.#checkpoints.find((checkpoint) => checkpoint.index === anchor.index);
    if (own === undefined || own.seq !== anchor.seq || !own.hash.equals(anchor.hash) || own.time !== anchor.time) {
      this.#fail("anchor-mismatch", null, anchor.index, `the log's checkpoint ${anchor.index} is not the anchor`);
      return;
    }
    if (anchor.seq > 0 && (this.#anchorHash === null || !this.#anchorHash.equals(anchor.hash))) {
      this.#fail("anchor-mismatch", anchor.seq, anchor.index, `the chain value at record ${anchor.seq} is not the anchor's`);
    }
  }
}

function fieldsOf(record: AuditRecord): ChainedFields {
  return {
    seq: record.seq,
    time: record.time,
    requestId: record.requestId,
    projectId: record.projectId,
    principalId: record.principalId,
    source: record.source,
    action: record.action,
    keyId: record.keyId,
    outcome: record.outcome,
    errorCode: record.errorCode,
    detail: record.detail,
  };
}

/** Verifies a whole log given as an iterable of records (seq order) and its checkpoints. */
export function verifyRecords(
  logId: Buffer,
  mac: AuditMac,
  records: Iterable<AuditRecord>,
  checkpoints: readonly AuditCheckpoint[],
  options: VerifyOptions = {},
): AuditVerification {
  const verifier = new ChainVerifier(logId, mac, checkpoints, options);
  for (const record of records) if (!verifier.push(record)) break;
  return verifier.finish();
}
