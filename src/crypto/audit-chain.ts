/**
 * The audit log's hash chain over a batch of records, in the native core (native/audit_chain.cc):
 * hash[n] = SHA-256(hash[n-1] || body[n]) as src/kms/audit/chain.ts defines it, one native call
 * per batch instead of a JavaScript SHA-256 call per record (about 1.4 µs each in Node 20, most of
 * what the store's writer spent on a record).
 */
import { addon } from "./addon.js";

const HASH_BYTES = 32;

export interface ChainedBatch {
  /** The records' bodies back to back, seq written in (a view of the output buffer). */
  bodies: Buffer;
  /** Their chain values, 32 bytes each, in order. */
  hashes: Buffer;
}

/**
 * Numbers and chains `count` records framed as u32 big-endian length ‖ body (the body's u64 seq,
 * after its format byte, is overwritten with firstSeq, firstSeq + 1, …), after the chain value
 * `previous`. Throws (nothing returned) if the framing does not hold exactly `count` bodies.
 */
export function chainRecords(previous: Uint8Array, framed: Uint8Array, count: number, firstSeq: number): ChainedBatch {
  if (!(previous instanceof Uint8Array) || previous.length !== HASH_BYTES) throw new TypeError("previous must be a 32-byte chain value");
  if (!(framed instanceof Uint8Array)) throw new TypeError("framed must be a Uint8Array");
  if (!Number.isSafeInteger(count) || count < 0 || count > 0xffff_ffff) throw new RangeError("count must be an integer in [0, 2^32)");
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1 || firstSeq + count > Number.MAX_SAFE_INTEGER) {
    throw new RangeError("firstSeq must be an integer in [1, 2^53 - count)");
  }
  // Bodies are the framed bytes less 4 per record.
  const bodies = Buffer.allocUnsafe(Math.max(0, framed.length - 4 * count));
  const hashes = Buffer.allocUnsafe(count * HASH_BYTES);
  const written = addon.auditChain(previous, framed, count, firstSeq, bodies, hashes);
  return { bodies: bodies.subarray(0, written), hashes };
}

/** Fields per record in frameSealed's input, in body order (native/audit_chain.h). */
export const SEALED_FIELDS = 9;

/**
 * Frames `count` records given as string ids (SEALED_FIELDS per record: outcome, action,
 * requestId, source — each 1..n — then projectId, principalId, keyId, errorCode, detail — 0 for
 * null) and times, over the batch's strings `strs` (each a str: u32 big-endian length ‖ UTF-8;
 * string id i at strs[offsets[i - 1], offsets[i])), as chainRecords takes them: u32 length ‖ body
 * with seq 0. In the native core: one call per batch, the bytes copied by memcpy rather than one
 * JavaScript store each (about 1.4 µs a record in JavaScript, most of it copying). Throws
 * RangeError, writing nothing, if an id names no string, a time is not an integer in [0, 2^53),
 * or the strings do not hold together.
 */
export function frameSealed(fields: Uint32Array, times: Float64Array, strs: Uint8Array, offsets: Uint32Array, count: number): Buffer {
  if (!Number.isSafeInteger(count) || count < 0 || count > 0xffff_ffff) throw new RangeError("count must be an integer in [0, 2^32)");
  try {
    return addon.auditFrame(fields, times, strs, offsets, count);
  } catch (error) {
    throw new RangeError((error as Error).message, { cause: error });
  }
}

