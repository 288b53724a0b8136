// libFuzzer target: hsmkit::GcmContext::open (and seal, to check what open accepts).
//
// Input layout (all lengths in bytes):
//   [0]     flags: bits 0-1 key size (0: 16, 1: 24, 2 and 3: 32)
//                  bit 2      open in place (out aliases the sealed input)
//                  bit 3      round trip: the payload is a plaintext to seal, then open
//                  bit 4      reuse: open again on the same context, after an open with
//                             another IV length, and expect the same verdict
//   [1]     tag length = byte % 20 (0..3 and 17..19 are invalid on purpose)
//   [2..3]  IV length, little endian, & 0x1ff (0 is invalid; 129..511 take the long-IV path)
//   [4]     AAD length, low 8 bits; the high 4 bits are byte [3]'s high nibble (0..4095 bytes:
//           JavaScript passes AAD of any length, and OpenSSL hashes long AAD in bulk)
//   then    key, IV, AAD, payload (sealed = ciphertext || tag, or a plaintext in round-trip mode)
//
// Invariants checked (aead.h is the contract):
//   - the only exception is hsmkit::Error InvalidArgument, and only for an empty IV, a tag length
//     outside 4..16, or a sealed input shorter than its tag;
//   - nothing is written past sealed_len - tag_len output bytes (canary);
//   - a failed open leaves the output zeroed;
//   - a successful open re-seals to exactly the sealed input;
//   - for IVs up to 128 bytes the verdict and plaintext equal a one-shot EVP reference;
//   - the same context gives the same verdict when reused, including after another IV length;
//   - round trip: open(seal(p)) == p, and a flipped bit fails with zeroed output.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "aead.h"
#include "error.h"
#include "fuzz_support.h"

namespace {

using hsmkit::ErrorCode;
using hsmkit::GcmContext;
using hsmkit::fuzz::Guarded;
using hsmkit::fuzz::Reader;

constexpr size_t kEvpMaxIv = 128;

struct Case {
  std::vector<uint8_t> key, iv, aad, payload;
  size_t tag_len;
  bool in_place, round_trip, reuse;
};

const EVP_CIPHER* reference_cipher(size_t key_len) {
  return key_len == 16 ? EVP_aes_128_gcm() : key_len == 24 ? EVP_aes_192_gcm() : EVP_aes_256_gcm();
}

// One-shot GCM on a fresh EVP context, the way OpenSSL's documentation does it. For opening,
// returns whether the tag verified; `out` gets in_len bytes (plus the tag when sealing).
bool reference(bool seal, const Case& c, const uint8_t* in, size_t in_len, const uint8_t* tag, std::vector<uint8_t>& out) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  FUZZ_CHECK(ctx != nullptr, "EVP_CIPHER_CTX_new");
  out.assign(in_len + (seal ? c.tag_len : 0), 0);
  int len = 0;
  FUZZ_CHECK(EVP_CipherInit_ex(ctx, reference_cipher(c.key.size()), nullptr, nullptr, nullptr, seal) == 1, "ref init");
  FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(c.iv.size()), nullptr) == 1, "ref ivlen");
  FUZZ_CHECK(EVP_CipherInit_ex(ctx, nullptr, nullptr, c.key.data(), c.iv.data(), seal) == 1, "ref key/iv");
  if (!c.aad.empty()) FUZZ_CHECK(EVP_CipherUpdate(ctx, nullptr, &len, c.aad.data(), static_cast<int>(c.aad.size())) == 1, "ref aad");
  if (in_len > 0) FUZZ_CHECK(EVP_CipherUpdate(ctx, out.data(), &len, in, static_cast<int>(in_len)) == 1, "ref update");
  bool ok;
  if (seal) {
    uint8_t unused[16];
    FUZZ_CHECK(EVP_CipherFinal_ex(ctx, unused, &len) == 1, "ref final");
    FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(c.tag_len), out.data() + in_len) == 1, "ref tag");
    ok = true;
  } else {
    FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(c.tag_len), const_cast<uint8_t*>(tag)) == 1,
               "ref set tag");
    uint8_t unused[16];
    ok = EVP_CipherFinal_ex(ctx, unused, &len) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

bool valid_parameters(const Case& c) { return !c.iv.empty() && c.tag_len >= hsmkit::kGcmMinTag && c.tag_len <= hsmkit::kGcmMaxTag; }

// Opens `sealed` with `dec` into a guarded buffer (in place when asked). Returns the verdict,
// or nullopt-like false with `threw` set when the call threw the expected argument error.
struct OpenResult {
  bool threw = false;
  bool verified = false;
  std::vector<uint8_t> plaintext;
};

OpenResult open_checked(GcmContext& dec, const Case& c, const std::vector<uint8_t>& sealed, bool in_place) {
  OpenResult result;
  size_t ct_len = sealed.size() >= c.tag_len ? sealed.size() - c.tag_len : 0;
  bool expect_throw = !valid_parameters(c) || sealed.size() < c.tag_len;
  // In place, the buffer holds the sealed bytes and receives the plaintext over them.
  Guarded out(in_place ? sealed.size() : ct_len);
  if (in_place && !sealed.empty()) std::memcpy(out.data(), sealed.data(), sealed.size());
  const uint8_t* in = in_place ? out.data() : sealed.data();
  try {
    result.verified = dec.open(c.iv.data(), c.iv.size(), c.aad.data(), c.aad.size(), in, sealed.size(), c.tag_len, out.data());
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "open threw %s: %s", hsmkit::fuzz::code_name(e), e.what());
    FUZZ_CHECK(expect_throw, "open refused valid arguments (iv %zu, tag %zu, sealed %zu): %s", c.iv.size(), c.tag_len,
               sealed.size(), e.what());
    FUZZ_CHECK(out.canary_intact(), "open wrote past its output before throwing");
    result.threw = true;
    return result;
  }
  FUZZ_CHECK(!expect_throw, "open accepted iv %zu, tag %zu, sealed %zu", c.iv.size(), c.tag_len, sealed.size());
  FUZZ_CHECK(out.canary_intact(), "open wrote past sealed_len - tag_len = %zu bytes (canary byte %zu changed; iv %zu)",
             out.size(), out.first_canary_damage(), c.iv.size());
  if (!result.verified) {
    FUZZ_CHECK(out.zero(ct_len), "a failed open left %zu output bytes not zeroed", ct_len);
  }
  result.plaintext.assign(out.data(), out.data() + ct_len);
  return result;
}

std::vector<uint8_t> seal_checked(GcmContext& enc, const Case& c, const std::vector<uint8_t>& plaintext) {
  Guarded out(plaintext.size() + c.tag_len);
  enc.seal(c.iv.data(), c.iv.size(), c.aad.data(), c.aad.size(), plaintext.data(), plaintext.size(), c.tag_len, out.data());
  FUZZ_CHECK(out.canary_intact(), "seal wrote past pt_len + tag_len");
  return std::vector<uint8_t>(out.data(), out.data() + out.size());
}

void check_open(const Case& c) {
  GcmContext dec(c.key.data(), c.key.size(), false);
  OpenResult first = open_checked(dec, c, c.payload, c.in_place);
  if (first.threw) return;
  size_t ct_len = c.payload.size() - c.tag_len;

  if (first.verified) {
    // Whatever open accepts must be exactly what seal produces for that plaintext.
    GcmContext enc(c.key.data(), c.key.size(), true);
    std::vector<uint8_t> resealed = seal_checked(enc, c, first.plaintext);
    FUZZ_CHECK(resealed == c.payload, "an accepted message does not re-seal to itself (iv %zu, tag %zu, ct %zu)",
               c.iv.size(), c.tag_len, ct_len);
  }

  if (c.iv.size() <= kEvpMaxIv) {
    std::vector<uint8_t> expected;
    bool ok = reference(false, c, c.payload.data(), ct_len, c.payload.data() + ct_len, expected);
    FUZZ_CHECK(ok == first.verified, "verdict %d differs from the EVP reference %d (iv %zu, tag %zu)", first.verified, ok,
               c.iv.size(), c.tag_len);
    if (ok) FUZZ_CHECK(expected == first.plaintext, "plaintext differs from the EVP reference");
  }

  if (c.reuse) {
    // A context that just opened a message with another IV length (or failed) must not carry
    // anything over into the next open.
    Case other = c;
    other.iv.resize(c.iv.size() == 12 ? 13 : 12, 0x42);
    (void)open_checked(dec, other, c.payload, false);
    OpenResult again = open_checked(dec, c, c.payload, !c.in_place);
    FUZZ_CHECK(again.verified == first.verified, "reused context changed its verdict");
    FUZZ_CHECK(again.plaintext == first.plaintext, "reused context changed the plaintext");
  }
}

void check_round_trip(const Case& c) {
  GcmContext enc(c.key.data(), c.key.size(), true);
  if (!valid_parameters(c)) {
    bool threw = false;
    try {
      (void)seal_checked(enc, c, c.payload);
    } catch (const hsmkit::Error& e) {
      FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "seal threw %s", hsmkit::fuzz::code_name(e));
      threw = true;
    }
    FUZZ_CHECK(threw, "seal accepted iv %zu, tag %zu", c.iv.size(), c.tag_len);
    return;
  }
  std::vector<uint8_t> sealed = seal_checked(enc, c, c.payload);
  if (c.iv.size() <= kEvpMaxIv) {
    std::vector<uint8_t> expected;
    reference(true, c, c.payload.data(), c.payload.size(), nullptr, expected);
    FUZZ_CHECK(expected == sealed, "seal differs from the EVP reference (iv %zu, tag %zu)", c.iv.size(), c.tag_len);
  }
  GcmContext dec(c.key.data(), c.key.size(), false);
  OpenResult back = open_checked(dec, c, sealed, c.in_place);
  FUZZ_CHECK(back.verified, "open rejected what seal produced (iv %zu, aad %zu, pt %zu, tag %zu)", c.iv.size(),
             c.aad.size(), c.payload.size(), c.tag_len);
  FUZZ_CHECK(back.plaintext == c.payload, "open(seal(p)) != p");

  // Any single flipped bit of ciphertext or tag must fail, and zero the output.
  size_t bit = (c.payload.empty() ? 0 : c.payload[0] * 131u + c.payload.size()) % (sealed.size() * 8);
  sealed[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  OpenResult bad = open_checked(dec, c, sealed, !c.in_place);
  FUZZ_CHECK(!bad.verified, "open accepted a message with bit %zu flipped", bit);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader reader(data, size);
  uint8_t flags, tag_byte, iv_lo, iv_hi, aad_len;
  if (!reader.byte(flags) || !reader.byte(tag_byte) || !reader.byte(iv_lo) || !reader.byte(iv_hi) ||
      !reader.byte(aad_len)) {
    return 0;
  }
  Case c;
  c.tag_len = tag_byte % 20;
  c.in_place = (flags & 4) != 0;
  c.round_trip = (flags & 8) != 0;
  c.reuse = (flags & 16) != 0;
  size_t iv_len = (iv_lo | (static_cast<size_t>(iv_hi) << 8)) & 0x1ff;
  size_t aad_bytes = aad_len | (static_cast<size_t>(iv_hi >> 4) << 8);
  if (!reader.bytes(hsmkit::fuzz::kAesKeySizes[flags & 3], c.key) || !reader.bytes(iv_len, c.iv) ||
      !reader.bytes(aad_bytes, c.aad)) {
    return 0;
  }
  c.payload = reader.rest();
  try {
    if (c.round_trip) {
      check_round_trip(c);
    } else {
      check_open(c);
    }
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(false, "unexpected hsmkit::Error %s: %s", hsmkit::fuzz::code_name(e), e.what());
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "unexpected exception: %s", e.what());
  }
  return 0;
}
