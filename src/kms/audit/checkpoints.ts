/**
 * Checkpoints: MACed statements "after record `seq` the chain value is `hash`". The chain alone
 * proves nothing against someone who can write the database — they can recompute every hash after
 * an edit. A checkpoint's MAC is made with an HMAC key that lives in the token, so whoever edits the
 * database cannot make a checkpoint that matches the edit.
 *
 *   mac input = "hsmkit-audit-checkpoint-v1" 0x00 || logId (16)
 *            || u64 index || u64 seq || hash (32) || u64 time || str reason
 *
 * (u64 big-endian, str as in chain.ts.) Binding the log id stops a checkpoint of one log from
 * vouching for another; binding the index makes checkpoints a numbered series, so a deleted one is
 * noticed.
 */
import type { AuditAnchor, AuditCheckpoint, CheckpointReason } from "../types.js";
import { HASH_LENGTH, LOG_ID_LENGTH } from "./chain.js";

/**
 * The MAC the audit log uses for checkpoints, injected: the backend provides one over an HMAC key
 * held in the token (C_Sign / C_Verify with CKM_SHA256_HMAC); tests use the native HMAC. Both
 * calls are synchronous and may throw (a token error), which fails the checkpoint, not the records.
 */
export interface AuditMac {
  mac(data: Buffer): Buffer;
  /** Must compare in constant time. */
  verifyMac(data: Buffer, mac: Buffer): boolean;
}

export const CHECKPOINT_REASONS: readonly CheckpointReason[] = ["count", "interval", "close", "recovery", "manual"];

const CHECKPOINT_DOMAIN = Buffer.from("hsmkit-audit-checkpoint-v1\0", "latin1");

/** The checkpoint without its MAC. */
export type CheckpointFields = Omit<AuditCheckpoint, "mac">;

function u64(value: number, name: string): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`checkpoint ${name} must be an integer in [0, 2^53), not ${value}`);
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32BE(Math.floor(value / 0x1_0000_0000), 0);
  out.writeUInt32BE(value >>> 0, 4);
  return out;
}

/** The bytes a checkpoint's MAC covers. */
export function checkpointMacInput(logId: Buffer, fields: CheckpointFields): Buffer {
  if (logId.length !== LOG_ID_LENGTH) throw new RangeError(`an audit log id has ${LOG_ID_LENGTH} bytes`);
  if (fields.hash.length !== HASH_LENGTH) throw new RangeError(`a checkpoint hash has ${HASH_LENGTH} bytes`);
  if (!CHECKPOINT_REASONS.includes(fields.reason)) throw new TypeError(`unknown checkpoint reason ${String(fields.reason)}`);
  const reason = Buffer.from(fields.reason, "latin1");
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(reason.length, 0);
  return Buffer.concat([
    CHECKPOINT_DOMAIN, logId, u64(fields.index, "index"), u64(fields.seq, "seq"), fields.hash,
    u64(fields.time, "time"), length, reason,
  ]);
}

/** A checkpoint with its MAC made by `mac`. */
export function makeCheckpoint(logId: Buffer, fields: CheckpointFields, mac: AuditMac): AuditCheckpoint {
  return { ...fields, mac: Buffer.from(mac.mac(checkpointMacInput(logId, fields))) };
}

/** Whether the checkpoint's MAC is right (false too when its fields cannot be encoded). */
export function checkpointMacValid(logId: Buffer, checkpoint: AuditCheckpoint, mac: AuditMac): boolean {
  let input: Buffer;
  try {
    input = checkpointMacInput(logId, checkpoint);
  } catch {
    return false;
  }
  return mac.verifyMac(input, checkpoint.mac);
}

/** The checkpoint as an anchor for safekeeping outside the database. */
export function toAnchor(logId: Buffer, checkpoint: AuditCheckpoint): AuditAnchor {
  return {
    logId: logId.toString("hex"),
    index: checkpoint.index,
    seq: checkpoint.seq,
    hash: checkpoint.hash.toString("hex"),
    time: checkpoint.time,
    reason: checkpoint.reason,
    mac: checkpoint.mac.toString("hex"),
  };
}

const HEX = /^(?:[0-9a-f]{2})*$/;

/** The anchor's checkpoint; throws TypeError when the anchor is malformed. */
export function fromAnchor(anchor: AuditAnchor): { logId: Buffer; checkpoint: AuditCheckpoint } {
  if (typeof anchor !== "object" || anchor === null) throw new TypeError("an audit anchor must be an object");
  for (const name of ["logId", "hash", "mac"] as const) {
    if (typeof anchor[name] !== "string" || !HEX.test(anchor[name])) throw new TypeError(`audit anchor ${name} must be lowercase hex`);
  }
  const logId = Buffer.from(anchor.logId, "hex");
  const hash = Buffer.from(anchor.hash, "hex");
  if (logId.length !== LOG_ID_LENGTH || hash.length !== HASH_LENGTH) throw new TypeError("audit anchor logId or hash has the wrong length");
  if (!CHECKPOINT_REASONS.includes(anchor.reason)) throw new TypeError("audit anchor reason is unknown");
  for (const name of ["index", "seq", "time"] as const) {
    if (!Number.isSafeInteger(anchor[name]) || anchor[name] < 0) throw new TypeError(`audit anchor ${name} must be a non-negative integer`);
  }
  return {
    logId,
    checkpoint: { index: anchor.index, seq: anchor.seq, hash, time: anchor.time, reason: anchor.reason, mac: Buffer.from(anchor.mac, "hex") },
  };
}

/** When the store writes checkpoints by itself. */
export interface CheckpointPolicy {
  /** After this many records since the last checkpoint (default 1024). */
  everyRecords: number;
  /** After this long with records not yet covered, in ms (default 60 000; 0: never by time). */
  everyMs: number;
}

export const DEFAULT_CHECKPOINT_POLICY: Readonly<CheckpointPolicy> = Object.freeze({ everyRecords: 1024, everyMs: 60_000 });
