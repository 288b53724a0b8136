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
 * otherwise collapse to U+FFFD), seq is an integer in [0, 2^53) and time one in [0, MAX_AUDIT_TIME].
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

/** String.prototype.isWellFormed (ES2024, in Node 20; the lib here is ES2023): far cheaper than the pattern. */
const wellFormed: (value: string) => boolean = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function"
  ? (value) => (value as unknown as { isWellFormed(): boolean }).isWellFormed()
  : (value) => !LONE_SURROGATE.test(value);

export function checkString(value: string, name: string): void {
  if (typeof value !== "string") throw new TypeError(`audit field ${name} must be a string`);
  if (!wellFormed(value)) throw new TypeError(`audit field ${name} holds a lone surrogate, which UTF-8 cannot encode`);
}

/** Actions seen valid, to skip the pattern for the few every request uses (bounded: any caller may name any action). */
const validActions = new Set<string>();

export function checkAction(action: unknown): void {
  if (typeof action === "string" && validActions.has(action)) return;
  if (typeof action !== "string" || !ACTION_PATTERN.test(action)) {
    throw new TypeError(`audit action must be letters and digits (1-64, leading letter), not ${JSON.stringify(action)}`);
  }
  if (validActions.size < 256) validActions.add(action);
}

/**
 * The latest record time: 9999-12-31T23:59:59.999Z. The export writes times as ISO 8601 with a
 * four-digit year (export.ts), and past this a JavaScript Date writes an expanded year
 * ("+010000-…") that the export's reader refuses, or, past 8.64e15 ms, no date at all — so a
 * record dated later, appended by a clock gone wild, would make every complete export unreadable
 * or fail. It is refused at append instead, where the request that carries it fails.
 */
export const MAX_AUDIT_TIME = 253_402_300_799_999;

/** Throws RangeError unless the record's integer field `name` holds a value the log can encode and export. */
export function checkInteger(value: number, name: "seq" | "time"): void {
  const max = name === "time" ? MAX_AUDIT_TIME : Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < 0 || value > max) throw new RangeError(`audit field ${name} must be an integer in [0, ${max}], not ${value}`);
}

/** Throws TypeError/RangeError unless `fields` can be encoded (and so appended). */
export function checkFields(fields: ChainedFields): void {
  checkInteger(fields.seq, "seq");
  checkInteger(fields.time, "time");
  if (fields.outcome !== "success" && fields.outcome !== "failure" && fields.outcome !== "denied") {
    throw new TypeError(`audit outcome must be success, failure or denied, not ${String(fields.outcome)}`);
  }
  checkAction(fields.action);
  checkString(fields.requestId, "requestId");
  checkString(fields.source, "source");
  // Written out rather than looped over names: this runs for every record, and a keyed load by a
  // name from a list is a megamorphic lookup.
  checkOptional(fields.projectId, "projectId");
  checkOptional(fields.principalId, "principalId");
  checkOptional(fields.keyId, "keyId");
  checkOptional(fields.errorCode, "errorCode");
  checkOptional(fields.detail, "detail");
}

function checkOptional(value: string | null, name: string): void {
  if (value !== null) checkString(value, name);
}

/** `value` is a checked safe integer (checkFields), so the byte stores need no range checks. */
export function writeU64(out: Buffer, offset: number, value: number): number {
  const high = Math.floor(value / 0x1_0000_0000);
  const low = value >>> 0;
  out[offset] = high >>> 24;
  out[offset + 1] = (high >>> 16) & 0xff;
  out[offset + 2] = (high >>> 8) & 0xff;
  out[offset + 3] = high & 0xff;
  out[offset + 4] = low >>> 24;
  out[offset + 5] = (low >>> 16) & 0xff;
  out[offset + 6] = (low >>> 8) & 0xff;
  out[offset + 7] = low & 0xff;
  return offset + 8;
}

/** Strings up to this long are tried as ASCII in JavaScript first: ids, actions, sources — nearly every field. */
const SHORT = 96;

/** A str field (u32 UTF-8 length ‖ UTF-8) at `offset`; `out` has room for 4 + 3 × value.length bytes, or for the exact length. Returns the end. */
export function writeStr(out: Buffer, offset: number, value: string): number {
  let length = -1;
  if (value.length <= SHORT) length = writeAscii(out, offset + 4, value);
  // Not ASCII (or long): UTF-8 by Buffer.write, which a native call makes dearer for short strings.
  if (length < 0) length = out.write(value, offset + 4, "utf8");
  out[offset] = length >>> 24;
  out[offset + 1] = (length >>> 16) & 0xff;
  out[offset + 2] = (length >>> 8) & 0xff;
  out[offset + 3] = length & 0xff;
  return offset + 4 + length;
}

/** Writes `value` at `offset` if it is all ASCII (then UTF-8 is the same bytes) and returns its length; -1 otherwise (bytes written so far are overwritten by the caller). */
function writeAscii(out: Buffer, offset: number, value: string): number {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code > 0x7f) return -1;
    out[offset + i] = code;
  }
  return value.length;
}

function writeOpt(out: Buffer, offset: number, value: string | null): number {
  if (value === null) {
    out[offset] = 0;
    return offset + 1;
  }
  out[offset] = 1;
  return writeStr(out, offset + 1, value);
}

function optionalLength(value: string | null): number {
  return value === null ? 0 : value.length;
}

/** Bytes the body can take at most: UTF-8 needs at most 3 bytes per UTF-16 code unit. */
function maxBodyLength(fields: ChainedFields): number {
  const units = fields.outcome.length + fields.action.length + fields.requestId.length + fields.source.length +
    optionalLength(fields.projectId) + optionalLength(fields.principalId) + optionalLength(fields.keyId) + optionalLength(fields.errorCode) + optionalLength(fields.detail);
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

/**
 * encodeRecord without the field checks, for records that were stored before (a migration copying
 * rows as they are: a doctored row must carry over for verify() to find, not stop the copy).
 */
export function encodeRecordUnchecked(fields: ChainedFields): Buffer {
  const out = scratchFor(maxBodyLength(fields));
  return Buffer.from(out.subarray(0, writeBody(out, 0, fields)));
}

/** Thrown by decodeRecord for bytes that are not a body of this format. */
export class MalformedRecord extends Error {
  constructor(readonly offset: number, reason: string) {
    super(`audit record at byte ${offset}: ${reason}`);
  }
}

/**
 * Reads the body at `offset` of `bytes` (the inverse of encodeRecord); returns its fields and
 * where the next body starts. Total: anything but a well-formed body throws MalformedRecord.
 */
export function decodeRecord(bytes: Buffer, offset: number): { fields: ChainedFields; end: number } {
  const start = offset;
  const fail = (reason: string): never => {
    throw new MalformedRecord(start, reason);
  };
  let at = offset;
  const need = (n: number): void => {
    if (at + n > bytes.length) fail("truncated");
  };
  const u64 = (): number => {
    need(8);
    const high = bytes.readUInt32BE(at);
    if (high > 0x1f_ffff) fail("integer beyond 2^53");
    const value = high * 0x1_0000_0000 + bytes.readUInt32BE(at + 4);
    at += 8;
    return value;
  };
  const str = (): string => {
    need(4);
    const length = bytes.readUInt32BE(at);
    at += 4;
    need(length);
    const value = bytes.toString("utf8", at, at + length);
    at += length;
    return value;
  };
  const opt = (): string | null => {
    need(1);
    const present = bytes[at++];
    if (present === 0) return null;
    if (present !== 1) fail("bad presence byte");
    return str();
  };
  need(1);
  if (bytes[at++] !== RECORD_FORMAT) fail("unknown format");
  const seq = u64();
  const time = u64();
  const outcome = str() as AuditOutcome;
  const action = str();
  const requestId = str();
  const source = str();
  const projectId = opt();
  const principalId = opt();
  const keyId = opt();
  const errorCode = opt();
  const detail = opt();
  return { fields: { seq, time, requestId, projectId, principalId, source, action, keyId, outcome, errorCode, detail }, end: at };
}

/**
 * Encodes `fields` (checked by the caller) after `previous` in `out` and returns the chain value;
 * the body is then at out[HASH_LENGTH, end) — the caller copies it where it keeps records. `out`
 * needs room for HASH_LENGTH + maxEncodedLength(fields).
 */
export function chainHashInto(out: Buffer, previous: Buffer, fields: ChainedFields): { hash: Buffer; end: number } {
  previous.copy(out, 0, 0, HASH_LENGTH);
  const end = writeBody(out, HASH_LENGTH, fields);
  return { hash: hash("sha256", out.subarray(0, end), "buffer"), end };
}

/** Bytes a body of `fields` can take at most. */
export const maxEncodedLength = (fields: ChainedFields): number => maxBodyLength(fields);

/** The chain value after `fields`, given the chain value before it. Throws if a field cannot be encoded. */
export function chainHash(previous: Buffer, fields: ChainedFields): Buffer {
  checkFields(fields);
  return chainHashInto(scratchFor(HASH_LENGTH + maxBodyLength(fields)), previous, fields).hash;
}

/** The chain's head: the last record's seq and chain value (seq 0 and the genesis for an empty log). */
export interface ChainHead {
  seq: number;
  hash: Buffer;
}
