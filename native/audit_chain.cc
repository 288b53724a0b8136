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

}  // namespace

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
