// libFuzzer target: hsmkit::KeyWrapContext::unwrap for AES-KW (RFC 3394) and AES-KWP (RFC 5649).
//
// Input layout:
//   [0]   flags: bit 0     KWP (padded) instead of KW
//                bits 1-2  key size (0: 16, 1: 24, 2 and 3: 32)
//                bit 3     round trip: the payload is data to wrap, then unwrap
//                bit 4     reuse: unwrap twice on the same context (after a failure too)
//   then  key, payload (the wrapped input, or the data in round-trip mode)
//
// Invariants checked (keywrap.h is the contract):
//   - key_unwrap_max_output_size throws InvalidArgument exactly for lengths no wrap produces
//     (KW: multiple of 8, >= 24; KWP: multiple of 8, >= 16), and unwrap refuses those too;
//   - unwrap throws only hsmkit::Error Unwrap for a bad integrity check, and then the output
//     is cleansed;
//   - unwrap writes at most key_unwrap_max_output_size bytes (canary after exactly that many);
//   - a successful unwrap returns max bytes for KW and max-7..max for KWP, and re-wraps to exactly
//     the input; the verdict and bytes equal a one-shot EVP reference;
//   - round trip: unwrap(wrap(k)) == k, wrap equals the reference, a flipped bit fails.
//
// HSMKIT_FUZZ_UNWRAP_SLACK=N (environment) gives unwrap N spare bytes before the canary. It
// exists to keep fuzzing past a known overflow while it is being fixed: see
// docs/native-builds.md, "Findings". Leave it unset to check the documented contract.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "error.h"
#include "fuzz_support.h"
#include "keywrap.h"

namespace {

using hsmkit::ErrorCode;
using hsmkit::KeyWrapContext;
using hsmkit::fuzz::Guarded;
using hsmkit::fuzz::Reader;

size_t unwrap_slack() {
  static const size_t slack = [] {
    const char* value = std::getenv("HSMKIT_FUZZ_UNWRAP_SLACK");
    return value != nullptr ? static_cast<size_t>(std::strtoul(value, nullptr, 10)) : size_t{0};
  }();
  return slack;
}

const EVP_CIPHER* reference_cipher(size_t key_len, bool padded) {
  if (padded) return key_len == 16 ? EVP_aes_128_wrap_pad() : key_len == 24 ? EVP_aes_192_wrap_pad() : EVP_aes_256_wrap_pad();
  return key_len == 16 ? EVP_aes_128_wrap() : key_len == 24 ? EVP_aes_192_wrap() : EVP_aes_256_wrap();
}

// One-shot wrap/unwrap on a fresh EVP context with an output buffer as large as OpenSSL
// wants (in_len + 16). Returns false when OpenSSL refuses.
bool reference(bool wrap, const std::vector<uint8_t>& key, bool padded, const std::vector<uint8_t>& in,
               std::vector<uint8_t>& out) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  FUZZ_CHECK(ctx != nullptr, "EVP_CIPHER_CTX_new");
  EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  FUZZ_CHECK(EVP_CipherInit_ex(ctx, reference_cipher(key.size(), padded), nullptr, key.data(), nullptr, wrap) == 1,
             "ref init");
  out.assign(in.size() + 16, 0);
  int len = 0;
  bool ok = EVP_CipherUpdate(ctx, out.data(), &len, in.data(), static_cast<int>(in.size())) == 1 && len > 0;
  out.resize(ok ? static_cast<size_t>(len) : 0);
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

bool unwrap_length_ok(bool padded, size_t n) {
  return n % 8 == 0 && n >= (padded ? 16u : 24u) && n <= hsmkit::kKeyWrapMaxInput + 8;
}

struct UnwrapResult {
  bool refused = false;  // InvalidArgument for the length
  bool ok = false;
  std::vector<uint8_t> bytes;
};

UnwrapResult unwrap_checked(KeyWrapContext& context, bool padded, const std::vector<uint8_t>& in) {
  UnwrapResult result;
  bool length_ok = unwrap_length_ok(padded, in.size());
  size_t maximum = 0;
  try {
    maximum = hsmkit::key_unwrap_max_output_size(padded, in.size());
    FUZZ_CHECK(length_ok, "key_unwrap_max_output_size accepted %zu bytes (%s)", in.size(), padded ? "KWP" : "KW");
    FUZZ_CHECK(maximum == in.size() - 8, "key_unwrap_max_output_size(%zu) = %zu", in.size(), maximum);
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "max size threw %s", hsmkit::fuzz::code_name(e));
    FUZZ_CHECK(!length_ok, "key_unwrap_max_output_size refused %zu bytes (%s)", in.size(), padded ? "KWP" : "KW");
  }

  Guarded out(maximum + unwrap_slack());
  try {
    size_t n = context.unwrap(in.data(), in.size(), out.data());
    FUZZ_CHECK(length_ok, "unwrap accepted a %zu-byte input", in.size());
    FUZZ_CHECK(out.canary_intact(), "unwrap wrote past %zu bytes (canary byte %zu changed)", out.size(),
               out.first_canary_damage());
    FUZZ_CHECK(n >= 1 && n <= maximum, "unwrap returned %zu of at most %zu", n, maximum);
    if (padded) {
      FUZZ_CHECK(n + 8 > maximum, "KWP returned %zu bytes from a %zu-byte input", n, in.size());
    } else {
      FUZZ_CHECK(n == maximum, "KW returned %zu bytes from a %zu-byte input", n, in.size());
    }
    result.ok = true;
    result.bytes.assign(out.data(), out.data() + n);
  } catch (const hsmkit::Error& e) {
    if (e.code() == ErrorCode::InvalidArgument) {
      FUZZ_CHECK(!length_ok, "unwrap refused a valid length %zu: %s", in.size(), e.what());
      FUZZ_CHECK(out.canary_intact(), "unwrap wrote before refusing a length");
      result.refused = true;
      return result;
    }
    FUZZ_CHECK(e.code() == ErrorCode::Unwrap, "unwrap threw %s: %s", hsmkit::fuzz::code_name(e), e.what());
    FUZZ_CHECK(length_ok, "integrity error for a length that should be refused (%zu)", in.size());
    FUZZ_CHECK(out.canary_intact(),
               "a failed %s unwrap of %zu bytes wrote past its %zu-byte output (canary byte %zu changed)",
               padded ? "KWP" : "KW", in.size(), out.size(), out.first_canary_damage());
    // Contract (keywrap.h): a failed unwrap leaves the caller's output untouched — it never held
    // unauthenticated bytes, because OpenSSL unwraps into scratch that is cleansed.
    FUZZ_CHECK(out.untouched(maximum), "a failed unwrap changed the caller's output");
  }
  return result;
}

std::vector<uint8_t> wrap_checked(const std::vector<uint8_t>& key, bool padded, const std::vector<uint8_t>& data) {
  KeyWrapContext wrapper(key.data(), key.size(), padded, true);
  size_t expected = hsmkit::key_wrap_output_size(padded, data.size());
  Guarded out(expected);
  size_t n = wrapper.wrap(data.data(), data.size(), out.data());
  FUZZ_CHECK(n == expected, "wrap returned %zu, expected %zu", n, expected);
  FUZZ_CHECK(out.canary_intact(), "wrap wrote past %zu bytes", expected);
  return std::vector<uint8_t>(out.data(), out.data() + n);
}

void check_unwrap(const std::vector<uint8_t>& key, bool padded, bool reuse, const std::vector<uint8_t>& in) {
  KeyWrapContext context(key.data(), key.size(), padded, false);
  UnwrapResult first = unwrap_checked(context, padded, in);
  if (first.refused) return;

  std::vector<uint8_t> expected;
  bool reference_ok = reference(false, key, padded, in, expected);
  FUZZ_CHECK(reference_ok == first.ok, "verdict %d differs from the EVP reference %d (%s, %zu bytes)", first.ok,
             reference_ok, padded ? "KWP" : "KW", in.size());
  if (first.ok) {
    FUZZ_CHECK(expected == first.bytes, "unwrapped bytes differ from the EVP reference");
    FUZZ_CHECK(wrap_checked(key, padded, first.bytes) == in, "an accepted input does not re-wrap to itself");
  }
  if (reuse) {
    UnwrapResult again = unwrap_checked(context, padded, in);
    FUZZ_CHECK(again.ok == first.ok && again.bytes == first.bytes, "reused context changed its result");
  }
}

void check_round_trip(const std::vector<uint8_t>& key, bool padded, const std::vector<uint8_t>& data) {
  bool wrappable = padded ? !data.empty() : data.size() >= 16 && data.size() % 8 == 0;
  std::vector<uint8_t> wrapped;
  try {
    wrapped = wrap_checked(key, padded, data);
    FUZZ_CHECK(wrappable, "wrap accepted %zu bytes (%s)", data.size(), padded ? "KWP" : "KW");
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(e.code() == ErrorCode::InvalidArgument, "wrap threw %s: %s", hsmkit::fuzz::code_name(e), e.what());
    FUZZ_CHECK(!wrappable, "wrap refused %zu bytes (%s): %s", data.size(), padded ? "KWP" : "KW", e.what());
    return;
  }
  std::vector<uint8_t> expected;
  FUZZ_CHECK(reference(true, key, padded, data, expected) && expected == wrapped, "wrap differs from the EVP reference");

  KeyWrapContext context(key.data(), key.size(), padded, false);
  UnwrapResult back = unwrap_checked(context, padded, wrapped);
  FUZZ_CHECK(back.ok && back.bytes == data, "unwrap(wrap(k)) != k (%s, %zu bytes)", padded ? "KWP" : "KW", data.size());

  size_t bit = (data[0] * 131u + data.size()) % (wrapped.size() * 8);
  wrapped[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  UnwrapResult bad = unwrap_checked(context, padded, wrapped);
  FUZZ_CHECK(!bad.ok, "unwrap accepted a wrapping with bit %zu flipped", bit);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader reader(data, size);
  uint8_t flags;
  std::vector<uint8_t> key;
  if (!reader.byte(flags) || !reader.bytes(hsmkit::fuzz::kAesKeySizes[(flags >> 1) & 3], key)) return 0;
  bool padded = (flags & 1) != 0;
  std::vector<uint8_t> payload = reader.rest();
  try {
    if ((flags & 8) != 0) {
      check_round_trip(key, padded, payload);
    } else {
      check_unwrap(key, padded, (flags & 16) != 0, payload);
    }
  } catch (const hsmkit::Error& e) {
    FUZZ_CHECK(false, "unexpected hsmkit::Error %s: %s", hsmkit::fuzz::code_name(e), e.what());
  } catch (const std::exception& e) {
    FUZZ_CHECK(false, "unexpected exception: %s", e.what());
  }
  return 0;
}
