// The audit log's hash chain over many records at once (src/kms/audit/chain.ts defines it:
// hash[n] = SHA-256(hash[n-1] || body[n])). The store's writer numbers and chains every record
// of a group commit in one call here: one SHA-256 per record without a JavaScript call each.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hsmkit {

constexpr size_t kChainHashSize = 32;
// A body's u64 seq sits right after its format byte; a body is at least that long.
constexpr size_t kChainSeqOffset = 1;
constexpr size_t kChainMinBody = kChainSeqOffset + 8;

// `framed` holds `count` records as u32 big-endian length || body. For record i: writes
// first_seq + i into its body (u64 big-endian at kChainSeqOffset), appends the body to `bodies`
// (without its length), chains it after the previous chain value (`previous` for the first) and
// writes that value to hashes[32 * i]. Returns the bytes written to `bodies`. Throws
// InvalidArgument, having written nothing it reports, if the framing does not hold exactly
// `count` bodies of at least kChainMinBody bytes, or an output is too small.
size_t chain_records(const uint8_t* previous, const uint8_t* framed, size_t framed_len, size_t count, uint64_t first_seq,
                     uint8_t* bodies, size_t bodies_cap, uint8_t* hashes, size_t hashes_cap);

// Records as the request path batches them (src/kms/store/audit-appends.ts): per record
// kFrameFields string ids in body order — outcome, action, requestId, source (required: 1..n),
// then projectId, principalId, keyId, errorCode, detail (optional: 0 for null) — and a time.
// The batch's n distinct strings are `strs`, each already a str (u32 big-endian UTF-8 length ||
// UTF-8), string id i at strs[offsets[i - 1], offsets[i]); `offsets` has n + 1 entries.
constexpr size_t kFrameFields = 9;
constexpr size_t kFrameRequired = 4;
constexpr uint8_t kRecordFormat = 0x01;

struct SealedRecords {
  const uint32_t* fields;  // count * kFrameFields
  const double* times;     // count
  size_t count;
  const uint8_t* strs;
  size_t strs_len;
  const uint32_t* offsets;  // strings + 1
  size_t strings;
};

// The bytes frame_records writes: `count` records as u32 big-endian length || body, the body as
// src/kms/audit/chain.ts lays it out with seq 0 (chain_records numbers it). Throws
// InvalidArgument if an id names no string (or null where a field is required), a time is not an
// integer in [0, 2^53), or the strings do not hold together.
size_t frame_records_size(const SealedRecords& records);

// Writes the framing (frame_records_size(records) bytes, checked by it) to `out`.
void frame_records(const SealedRecords& records, uint8_t* out, size_t out_len);

}  // namespace hsmkit
