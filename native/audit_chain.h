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

}  // namespace hsmkit
