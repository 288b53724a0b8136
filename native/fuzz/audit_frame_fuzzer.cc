// libFuzzer target: hsmkit::frame_records_size / frame_records and chain_records (audit_chain.h).
// JavaScript reaches both with arrays it built itself (auditFrame's ids, times, strings and
// offsets; auditChain's framing and counts), so every length and offset is hostile input here.
//
// Input layout:
//   [0]   flags: bit 0  chain mode (chain_records on raw framing) instead of frame mode
// Frame mode:
//   [1]   n, the number of strings
//   [2]   count, the number of records (& 63)
//   then  n + 1 offsets (u32 little endian), count * 9 ids (one byte each; 0xff stands for
//         2^32 - 1), count times (8 bytes each, the raw IEEE double), and the strings' bytes (rest)
// Chain mode:
//   [1]   count (& 63)
//   [2]   bodies capacity relative to the exact need (signed byte, clamped at 0)
//   [3]   hashes capacity relative to 32 * count (signed byte, clamped at 0)
//   then  the framing (rest)
//
// Every array is an exactly-sized heap block (an empty one too), so ASan's redzone sits right
// after its last element: a read past any of them is reported.
//
// Invariants checked against an independent reading of audit_chain.h:
//   - frame_records_size throws only InvalidArgument, exactly when the strings, ids or times do
//     not hold, and otherwise returns the size of the framing the header describes;
//   - frame_records writes exactly that many bytes (canary), lays each record out as the header
//     says, and refuses any other output length before writing;
//   - chain_records throws only InvalidArgument, exactly when the framing does not hold `count`
//     bodies of at least kChainMinBody bytes or an output is too small, writing nothing then;
//     otherwise it writes the bodies with seq numbered and SHA-256 chain values equal to a
//     one-shot EVP digest, and nothing past what it reports.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "audit_chain.h"
#include "error.h"
#include "fuzz_support.h"

namespace {

using hsmkit::ErrorCode;
using hsmkit::fuzz::Guarded;
using hsmkit::fuzz::Reader;

// An exactly-sized heap array, never backed by a null pointer even when empty.
template <typename T>
struct Exact {
  explicit Exact(size_t n) : size(n), data(new T[n]) {}
  size_t size;
  std::unique_ptr<T[]> data;
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t be64(const uint8_t* p) {
  uint64_t value = 0;
  for (int i = 0; i < 8; i++) value = (value << 8) | p[i];
  return value;
}

// What audit_chain.h says a valid batch is, and the framing's size; -1 when it does not hold.
int64_t expected_size(const hsmkit::SealedRecords& r) {
  if (r.offsets[0] != 0 || r.offsets[r.strings] != r.strs_len) return -1;
  for (size_t i = 0; i < r.strings; i++) {
    uint64_t start = r.offsets[i], end = r.offsets[i + 1];
    if (end < start || end - start < 4 || end > r.strs_len || be32(r.strs + start) != end - start - 4) return -1;
  }
  int64_t total = 0;
  for (size_t k = 0; k < r.count; k++) {
    double time = r.times[k];
    if (!(time >= 0 && time < 9007199254740992.0) || time != static_cast<double>(static_cast<uint64_t>(time))) return -1;
    int64_t body = 1 + 8 + 8;
    for (size_t f = 0; f < hsmkit::kFrameFields; f++) {
      uint32_t id = r.fields[k * hsmkit::kFrameFields + f];
      if (id > r.strings || (f < hsmkit::kFrameRequired && id == 0)) return -1;
      if (f >= hsmkit::kFrameRequired) body += 1;
      if (id != 0) body += r.offsets[id] - r.offsets[id - 1];
    }
    total += 4 + body;
  }
  return total;
}

void check_layout(const hsmkit::SealedRecords& r, const uint8_t* out, size_t out_len) {
  size_t at = 0;
  for (size_t k = 0; k < r.count; k++) {
    FUZZ_CHECK(out_len - at >= 4 + 17, "record %zu truncated", k);
    uint32_t body = be32(out + at);
    const uint8_t* p = out + at + 4;
    FUZZ_CHECK(p[0] == hsmkit::kRecordFormat && be64(p + 1) == 0, "record %zu: bad format byte or seq", k);
    FUZZ_CHECK(be64(p + 9) == static_cast<uint64_t>(r.times[k]), "record %zu: wrong time", k);
    size_t q = 17;
    for (size_t f = 0; f < hsmkit::kFrameFields; f++) {
      uint32_t id = r.fields[k * hsmkit::kFrameFields + f];
      if (f >= hsmkit::kFrameRequired) {
        FUZZ_CHECK(p[q] == (id == 0 ? 0 : 1), "record %zu field %zu: wrong presence byte", k, f);
        q++;
      }
      if (id == 0) continue;
      size_t length = r.offsets[id] - r.offsets[id - 1];
      FUZZ_CHECK(std::memcmp(p + q, r.strs + r.offsets[id - 1], length) == 0, "record %zu field %zu: wrong bytes", k, f);
      q += length;
    }
    FUZZ_CHECK(q == body, "record %zu: length prefix %u, body %zu", k, body, q);
    at += 4 + body;
  }
  FUZZ_CHECK(at == out_len, "framing is %zu bytes, records end at %zu", out_len, at);
}

void frame_mode(Reader& reader) {
  uint8_t n, count_byte;
  if (!reader.byte(n) || !reader.byte(count_byte)) return;
  size_t count = count_byte & 63;
  std::vector<uint8_t> raw;
  Exact<uint32_t> offsets(size_t{n} + 1);
  if (!reader.bytes(offsets.size * 4, raw)) return;
  for (size_t i = 0; i < offsets.size; i++) {
    offsets.data[i] = uint32_t{raw[4 * i]} | uint32_t{raw[4 * i + 1]} << 8 | uint32_t{raw[4 * i + 2]} << 16 |
                      uint32_t{raw[4 * i + 3]} << 24;
  }
  Exact<uint32_t> fields(count * hsmkit::kFrameFields);
  if (!reader.bytes(fields.size, raw)) return;
  for (size_t i = 0; i < fields.size; i++) fields.data[i] = raw[i] == 0xff ? UINT32_MAX : raw[i];
  Exact<double> times(count);
  if (!reader.bytes(count * 8, raw)) return;
  std::memcpy(times.data.get(), raw.data(), count * 8);
  raw = reader.rest();
  Exact<uint8_t> strs(raw.size());
  if (!raw.empty()) std::memcpy(strs.data.get(), raw.data(), raw.size());

  hsmkit::SealedRecords records{fields.data.get(), times.data.get(), count, strs.data.get(), strs.size,
                                offsets.data.get(), n};
  int64_t expected = expected_size(records);
  size_t size = 0;
  try {
    size = hsmkit::frame_records_size(records);
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "frame_records_size threw %s", hsmkit::fuzz::code_name(e));
    FUZZ_CHECK(expected < 0, "frame_records_size refused a valid batch: %s", e.what());
    return;
  }
  FUZZ_CHECK(expected >= 0, "frame_records_size accepted an invalid batch (%zu strings, %zu records)", records.strings,
             count);
  FUZZ_CHECK(static_cast<int64_t>(size) == expected, "frame_records_size = %zu, expected %lld", size,
             static_cast<long long>(expected));

  // Any other length is refused before a byte is written.
  Guarded wrong(size + 1);
  bool threw = false;
  try {
    hsmkit::frame_records(records, wrong.data(), wrong.size());
  } catch (const hsmkit::Error& e) {
    threw = e.code() == ErrorCode::InvalidArgument;
  }
  FUZZ_CHECK(threw && wrong.untouched(wrong.size()) && wrong.canary_intact(), "frame_records took a wrong length");

  Guarded out(size);
  hsmkit::frame_records(records, out.data(), out.size());
  FUZZ_CHECK(out.canary_intact(), "frame_records wrote past %zu bytes (canary byte %zu changed)", size,
             out.first_canary_damage());
  check_layout(records, out.data(), size);

  // What frame_records writes, chain_records takes: every body is at least kChainMinBody.
  Guarded bodies(size - 4 * count);
  Guarded hashes(32 * count);
  uint8_t previous[32] = {0};
  size_t written = hsmkit::chain_records(previous, out.data(), size, count, 1, bodies.data(), bodies.size(),
                                         hashes.data(), hashes.size());
  FUZZ_CHECK(written == bodies.size(), "chain_records wrote %zu body bytes of %zu", written, bodies.size());
}

// The framing as audit_chain.h defines it: the body total, or -1 when it is not exactly count
// bodies of at least kChainMinBody bytes.
int64_t framed_bodies(const std::vector<uint8_t>& framed, size_t count) {
  size_t at = 0;
  int64_t total = 0;
  for (size_t i = 0; i < count; i++) {
    if (framed.size() - at < 4) return -1;
    size_t len = be32(framed.data() + at);
    at += 4;
    if (len < hsmkit::kChainMinBody || len > framed.size() - at) return -1;
    at += len;
    total += static_cast<int64_t>(len);
  }
  return at == framed.size() ? total : -1;
}

void chain_mode(Reader& reader) {
  uint8_t count_byte, bodies_delta, hashes_delta;
  if (!reader.byte(count_byte) || !reader.byte(bodies_delta) || !reader.byte(hashes_delta)) return;
  size_t count = count_byte & 63;
  std::vector<uint8_t> rest = reader.rest();
  Exact<uint8_t> framed(rest.size());
  if (!rest.empty()) std::memcpy(framed.data.get(), rest.data(), rest.size());

  int64_t need = framed_bodies(rest, count);
  auto capacity = [](int64_t exact, uint8_t delta) {
    int64_t cap = exact + static_cast<int8_t>(delta);
    return static_cast<size_t>(cap < 0 ? 0 : cap);
  };
  size_t bodies_cap = capacity(need < 0 ? static_cast<int64_t>(rest.size()) : need, bodies_delta);
  size_t hashes_cap = capacity(static_cast<int64_t>(32 * count), hashes_delta);
  bool valid = need >= 0 && static_cast<size_t>(need) <= bodies_cap && count <= hashes_cap / 32;

  Guarded bodies(bodies_cap);
  Guarded hashes(hashes_cap);
  uint8_t previous[32];
  for (size_t i = 0; i < sizeof previous; i++) previous[i] = static_cast<uint8_t>(i * 7);
  const uint64_t first_seq = 1000;
  size_t written = 0;
  try {
    written = hsmkit::chain_records(previous, framed.data.get(), framed.size, count, first_seq, bodies.data(), bodies_cap,
                                    hashes.data(), hashes_cap);
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "chain_records threw %s", hsmkit::fuzz::code_name(e));
    FUZZ_CHECK(!valid, "chain_records refused a valid framing: %s", e.what());
    FUZZ_CHECK(bodies.untouched(bodies_cap) && hashes.untouched(hashes_cap) && bodies.canary_intact() &&
                   hashes.canary_intact(),
               "chain_records wrote before refusing");
    return;
  }
  FUZZ_CHECK(valid, "chain_records accepted %zu bytes as %zu records (bodies cap %zu, hashes cap %zu)", rest.size(),
             count, bodies_cap, hashes_cap);
  FUZZ_CHECK(static_cast<int64_t>(written) == need, "chain_records wrote %zu body bytes, expected %lld", written,
             static_cast<long long>(need));
  FUZZ_CHECK(bodies.canary_intact() && hashes.canary_intact(), "chain_records wrote past its outputs");
  for (size_t i = written; i < bodies_cap; i++) {
    FUZZ_CHECK(bodies.data()[i] == 0xA5, "chain_records wrote past the %zu body bytes it reported", written);
  }

  // Replay: each body is the framed one with its seq written, chained by SHA-256(prev || body).
  uint8_t chain[32];
  std::memcpy(chain, previous, 32);
  size_t at = 0, out = 0;
  for (size_t i = 0; i < count; i++) {
    size_t len = be32(rest.data() + at);
    at += 4;
    std::vector<uint8_t> body(rest.begin() + static_cast<ptrdiff_t>(at), rest.begin() + static_cast<ptrdiff_t>(at + len));
    for (int b = 7; b >= 0; b--) body[hsmkit::kChainSeqOffset + 7 - b] = static_cast<uint8_t>((first_seq + i) >> (8 * b));
    FUZZ_CHECK(std::memcmp(bodies.data() + out, body.data(), len) == 0, "record %zu: body differs", i);
    std::vector<uint8_t> input(chain, chain + 32);
    input.insert(input.end(), body.begin(), body.end());
    unsigned int digest_len = 0;
    FUZZ_CHECK(EVP_Digest(input.data(), input.size(), chain, &digest_len, EVP_sha256(), nullptr) == 1, "EVP_Digest");
    FUZZ_CHECK(std::memcmp(hashes.data() + 32 * i, chain, 32) == 0, "record %zu: chain value differs", i);
    at += len;
    out += len;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader reader(data, size);
  uint8_t flags;
  if (!reader.byte(flags)) return 0;
  try {
    if ((flags & 1) != 0) {
      chain_mode(reader);
    } else {
      frame_mode(reader);
    }
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(false, "unexpected hsmkit::Error %s: %s", hsmkit::fuzz::code_name(e), e.what());
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "unexpected exception: %s", e.what());
  }
  return 0;
}
