#include "audit_chain.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <string>

#include "error.h"

namespace hsmkit {
namespace {

const EVP_MD* sha256() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (fetched == nullptr) throw_openssl("EVP_MD_fetch SHA2-256");
    return fetched;  // process lifetime: fetched once
  }();
  return md;
}

struct CtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

uint32_t read_u32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void write_u64(uint8_t* p, uint64_t value) noexcept {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(value & 0xff);
    value >>= 8;
  }
}

void write_u32(uint8_t* p, uint32_t value) noexcept {
  p[0] = static_cast<uint8_t>(value >> 24);
  p[1] = static_cast<uint8_t>(value >> 16);
  p[2] = static_cast<uint8_t>(value >> 8);
  p[3] = static_cast<uint8_t>(value);
}

// A time's u64, or throws: an integer in [0, 2^53) (the store reads times back as JavaScript numbers).
uint64_t checked_time(double time, size_t record) {
  constexpr double kMaxTime = 9007199254740991.0;
  if (!(time >= 0 && time <= kMaxTime) || time != static_cast<double>(static_cast<uint64_t>(time))) {
    throw_invalid("audit records: record " + std::to_string(record) + " has a time that is not an integer in [0, 2^53)");
  }
  return static_cast<uint64_t>(time);
}

// The u32 length and 1-byte format, seq and time that open every framed record.
constexpr size_t kFrameHead = 4 + 1 + 8 + 8;

}  // namespace

size_t frame_records_size(const SealedRecords& records) {
  if (records.offsets[0] != 0 || records.offsets[records.strings] != records.strs_len) {
    throw_invalid("audit records: string offsets do not span the strings");
  }
  for (size_t i = 0; i < records.strings; ++i) {
    uint32_t start = records.offsets[i];
    uint32_t end = records.offsets[i + 1];
    // end within the strings before the length prefix is read: a later offset may undercut an
    // earlier one, so the span check above does not bound this string yet.
    if (end < start || end > records.strs_len || end - start < 4 || read_u32(records.strs + start) != end - start - 4) {
      throw_invalid("audit records: string " + std::to_string(i + 1) + " is not a str");
    }
  }
  size_t total = 0;
  for (size_t r = 0; r < records.count; ++r) {
    checked_time(records.times[r], r);
    const uint32_t* ids = records.fields + r * kFrameFields;
    size_t body = kFrameHead - 4;
    for (size_t f = 0; f < kFrameFields; ++f) {
      uint32_t id = ids[f];
      if (id > records.strings || (id == 0 && f < kFrameRequired)) {
        throw_invalid("audit records: record " + std::to_string(r) + " names string " + std::to_string(id) + " of " +
                      std::to_string(records.strings));
      }
      size_t length = id == 0 ? 0 : records.offsets[id] - records.offsets[id - 1];
      body += (f < kFrameRequired ? 0 : 1) + length;
    }
    if (body > 0xffffffffu) throw_invalid("audit records: a body longer than 2^32 - 1 bytes");
    total += 4 + body;
  }
  return total;
}

void frame_records(const SealedRecords& records, uint8_t* out, size_t out_len) {
  if (frame_records_size(records) != out_len) throw_invalid("audit records: output is not the framing's size");
  uint8_t* at = out;
  for (size_t r = 0; r < records.count; ++r) {
    uint8_t* start = at;
    at += 4;
    *at++ = kRecordFormat;
    write_u64(at, 0);  // seq: chain_records numbers the records
    at += 8;
    write_u64(at, checked_time(records.times[r], r));
    at += 8;
    const uint32_t* ids = records.fields + r * kFrameFields;
    for (size_t f = 0; f < kFrameFields; ++f) {
      uint32_t id = ids[f];
      if (f >= kFrameRequired) *at++ = id == 0 ? 0x00 : 0x01;
      if (id == 0) continue;
      uint32_t from = records.offsets[id - 1];
      size_t length = records.offsets[id] - from;
      std::memcpy(at, records.strs + from, length);
      at += length;
    }
    write_u32(start, static_cast<uint32_t>(at - start - 4));
  }
}

size_t chain_records(const uint8_t* previous, const uint8_t* framed, size_t framed_len, size_t count, uint64_t first_seq,
                     uint8_t* bodies, size_t bodies_cap, uint8_t* hashes, size_t hashes_cap) {
  if (count > hashes_cap / kChainHashSize) throw_invalid("hashes output holds fewer than " + std::to_string(count) + " chain values");
  // Check the framing first, so that nothing is written for input that does not hold.
  size_t at = 0;
  size_t body_total = 0;
  for (size_t i = 0; i < count; ++i) {
    if (framed_len - at < 4) throw_invalid("audit records: truncated length at record " + std::to_string(i));
    size_t len = read_u32(framed + at);
    at += 4;
    if (len < kChainMinBody || len > framed_len - at) throw_invalid("audit records: bad body length at record " + std::to_string(i));
    at += len;
    body_total += len;
  }
  if (at != framed_len) throw_invalid("audit records: bytes after the last record");
  if (body_total > bodies_cap) throw_invalid("bodies output is too small");

  std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) throw Error(ErrorCode::OutOfMemory, "EVP_MD_CTX_new failed");
  const EVP_MD* md = sha256();
  const uint8_t* chain = previous;
  size_t out = 0;
  at = 0;
  for (size_t i = 0; i < count; ++i) {
    size_t len = read_u32(framed + at);
    at += 4;
    uint8_t* body = bodies + out;
    std::memcpy(body, framed + at, len);
    write_u64(body + kChainSeqOffset, first_seq + i);
    uint8_t* value = hashes + i * kChainHashSize;
    unsigned int value_len = 0;
    if (EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 || EVP_DigestUpdate(ctx.get(), chain, kChainHashSize) != 1 ||
        EVP_DigestUpdate(ctx.get(), body, len) != 1 || EVP_DigestFinal_ex(ctx.get(), value, &value_len) != 1 ||
        value_len != kChainHashSize) {
      throw_openssl("SHA-256 of an audit record");
    }
    chain = value;
    at += len;
    out += len;
  }
  return out;
}

}  // namespace hsmkit
