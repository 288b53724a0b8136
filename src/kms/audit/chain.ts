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
import { createHash } from "node:crypto";
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

function strLength(value: string): number {
  return 4 + Buffer.byteLength(value, "utf8");
}

function optLength(value: string | null): number {
  return value === null ? 1 : 1 + strLength(value);
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

/** The canonical body of a record (the layout above). Throws if a field cannot be encoded. */
export function encodeRecord(fields: ChainedFields): Buffer {
  checkFields(fields);
  const size = 1 + 8 + 8
    + strLength(fields.outcome) + strLength(fields.action) + strLength(fields.requestId) + strLength(fields.source)
    + optLength(fields.projectId) + optLength(fields.principalId) + optLength(fields.keyId)
    + optLength(fields.errorCode) + optLength(fields.detail);
  const out = Buffer.allocUnsafe(size);
  out[0] = RECORD_FORMAT;
  let offset = writeU64(out, 1, fields.seq);
  offset = writeU64(out, offset, fields.time);
  offset = writeStr(out, offset, fields.outcome);
  offset = writeStr(out, offset, fields.action);
  offset = writeStr(out, offset, fields.requestId);
  offset = writeStr(out, offset, fields.source);
  offset = writeOpt(out, offset, fields.projectId);
  offset = writeOpt(out, offset, fields.principalId);
  offset = writeOpt(out, offset, fields.keyId);
  offset = writeOpt(out, offset, fields.errorCode);
  offset = writeOpt(out, offset, fields.detail);
  if (offset !== size) throw new Error(`audit record encoding: wrote ${offset} bytes, expected ${size}`);
  return out;
}

/** The chain value after `fields`, given the chain value before it. */
export function chainHash(previous: Buffer, fields: ChainedFields): Buffer {
  return createHash("sha256").update(previous).update(encodeRecord(fields)).digest();
}

/** The chain's head: the last record's seq and chain value (seq 0 and the genesis for an empty log). */
export interface ChainHead {
  seq: number;
  hash: Buffer;
}
