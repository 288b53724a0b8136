/**
 * The audit log's hash chain: the canonical encoding of a record and the SHA-256 chain over it.
 * docs/kms-store.md ("Audit chain") states the same layout for people who verify a log without
 * hsmkit.
 *
 *   genesis  = SHA-256( "hsmkit-audit-genesis-v1" 0x00 || logId )                logId: 16 bytes
 *   hash[n]  = SHA-256( hash[n-1] || body[n] )                                   hash[0] = genesis
 *   body     = 0x01                        format version
 *           || u64 seq || u64 time         big-endian; time in ms since the Unix epoch
 *           || str outcome || str action || str requestId || str source
 *           || opt projectId || opt principalId || opt keyId || opt errorCode || opt detail
 *   str s    = u32 byteLength(UTF-8 s) || UTF-8 s
 *   opt s    = 0x00 (null) | 0x01 || str s
 *
 * Every field has a length or a presence byte, so no two different records encode the same way.
 * Strings must be well formed (no lone UTF-16 surrogates, which UTF-8 cannot carry and would
 * otherwise collapse to U+FFFD), and seq/time are integers in [0, 2^53).
 */
import { createHash, hash } from "node:crypto";
import type { AuditOutcome, AuditRecord } from "../types.js";

/** Bytes of a chain value (SHA-256). */
export const HASH_LENGTH = 32;

/** Bytes of a log id. */
export const LOG_ID_LENGTH = 16;

/** The format version byte that opens every body. */
export const RECORD_FORMAT = 0x01;

export const AUDIT_OUTCOMES: readonly AuditOutcome[] = ["success", "failure", "denied"];

const ACTION_PATTERN = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

/** A UTF-16 surrogate without its partner (String.prototype.isWellFormed is ES2024). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The fields a chain value covers: an AuditRecord without its hash. */
export type ChainedFields = Omit<AuditRecord, "hash">;

/** The chain value before record 1 of the log `logId`. */
export function genesisHash(logId: Buffer): Buffer {
  if (logId.length !== LOG_ID_LENGTH) throw new RangeError(`an audit log id has ${LOG_ID_LENGTH} bytes, not ${logId.length}`);
  return createHash("sha256").update("hsmkit-audit-genesis-v1\0", "latin1").update(logId).digest();
}

function checkString(value: string, name: string): void {
  if (typeof value !== "string") throw new TypeError(`audit field ${name} must be a string`);
  if (LONE_SURROGATE.test(value)) throw new TypeError(`audit field ${name} holds a lone surrogate, which UTF-8 cannot encode`);
}

function checkInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`audit field ${name} must be an integer in [0, 2^53), not ${value}`);
}

/** Throws TypeError/RangeError unless `fields` can be encoded (and so appended). */
export function checkFields(fields: ChainedFields): void {
  checkInteger(fields.seq, "seq");
  checkInteger(fields.time, "time");
  if (!AUDIT_OUTCOMES.includes(fields.outcome)) throw new TypeError(`audit outcome must be success, failure or denied, not ${String(fields.outcome)}`);
  if (typeof fields.action !== "string" || !ACTION_PATTERN.test(fields.action)) {
    throw new TypeError(`audit action must be letters and digits (1-64, leading letter), not ${JSON.stringify(fields.action)}`);
  }
  checkString(fields.requestId, "requestId");
  checkString(fields.source, "source");
  for (const name of ["projectId", "principalId", "keyId", "errorCode", "detail"] as const) {
    const value = fields[name];
    if (value !== null) checkString(value, name);
  }
}

function writeU64(out: Buffer, offset: number, value: number): number {
  out.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  out.writeUInt32BE(value >>> 0, offset + 4);
  return offset + 8;
}

function writeStr(out: Buffer, offset: number, value: string): number {
  const length = out.write(value, offset + 4, "utf8");
  out.writeUInt32BE(length, offset);
  return offset + 4 + length;
}

function writeOpt(out: Buffer, offset: number, value: string | null): number {
  if (value === null) {
    out[offset] = 0;
    return offset + 1;
  }
  out[offset] = 1;
  return writeStr(out, offset + 1, value);
}

/** Bytes the body can take at most: UTF-8 needs at most 3 bytes per UTF-16 code unit. */
function maxBodyLength(fields: ChainedFields): number {
  let units = fields.outcome.length + fields.action.length + fields.requestId.length + fields.source.length;
  for (const value of [fields.projectId, fields.principalId, fields.keyId, fields.errorCode, fields.detail]) if (value !== null) units += value.length;
  return 1 + 8 + 8 + 4 * 4 + 5 * 5 + 3 * units;
}

/** Reused for encoding (the writer hashes tens of thousands of records a second). */
let scratch = Buffer.allocUnsafe(8192);

function scratchFor(length: number): Buffer {
  if (scratch.length < length) scratch = Buffer.allocUnsafe(Math.max(length, scratch.length * 2));
  return scratch;
}

/** Writes the body at `offset` of `out` (which has room for maxBodyLength); returns the end. */
function writeBody(out: Buffer, offset: number, fields: ChainedFields): number {
  out[offset] = RECORD_FORMAT;
  let at = writeU64(out, offset + 1, fields.seq);
  at = writeU64(out, at, fields.time);
  at = writeStr(out, at, fields.outcome);
  at = writeStr(out, at, fields.action);
  at = writeStr(out, at, fields.requestId);
  at = writeStr(out, at, fields.source);
  at = writeOpt(out, at, fields.projectId);
  at = writeOpt(out, at, fields.principalId);
  at = writeOpt(out, at, fields.keyId);
  at = writeOpt(out, at, fields.errorCode);
  return writeOpt(out, at, fields.detail);
}

/** The canonical body of a record (the layout above). Throws if a field cannot be encoded. */
export function encodeRecord(fields: ChainedFields): Buffer {
  checkFields(fields);
  const out = scratchFor(maxBodyLength(fields));
  return Buffer.from(out.subarray(0, writeBody(out, 0, fields)));
}

/** The chain value after `fields`, given the chain value before it. Throws if a field cannot be encoded. */
export function chainHash(previous: Buffer, fields: ChainedFields): Buffer {
  checkFields(fields);
  return chainHashUnchecked(previous, fields);
}

/**
 * chainHash for fields already checked with checkFields (the writer: the store checked every
 * record before queueing it). One SHA-256 over `previous || body`, encoded in a reused buffer.
 */
export function chainHashUnchecked(previous: Buffer, fields: ChainedFields): Buffer {
  const out = scratchFor(HASH_LENGTH + maxBodyLength(fields));
  previous.copy(out, 0, 0, HASH_LENGTH);
  return hash("sha256", out.subarray(0, writeBody(out, HASH_LENGTH, fields)), "buffer");
}

/** The chain's head: the last record's seq and chain value (seq 0 and the genesis for an empty log). */
export interface ChainHead {
  seq: number;
  hash: Buffer;
}
