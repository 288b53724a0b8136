// HMAC (FIPS 198-1, RFC 2104) over OpenSSL's EVP_MAC "HMAC", with SHA-1, SHA-224, SHA-256,
// SHA-384 or SHA-512, as PKCS#11 defines it: CKM_SHA*_HMAC makes the full-length tag and
// CKM_SHA*_HMAC_GENERAL (CK_MAC_GENERAL_PARAMS) the first ulMacLength bytes of it.
//
// Keys: any length a key slot holds, 1..8192 bytes (HMAC hashes a key longer than the hash's
// block). Tags: kHmacMinTag..digest size bytes. The floor of 4 bytes is the 32 bits NIST SP
// 800-107 Rev. 1 allows as the shortest truncated HMAC, the same floor as GCM tags here;
// shorter PKCS#11 lengths are refused (the emulator reports CKR_MECHANISM_PARAM_INVALID).
//
// Verification computes the tag and compares it with CRYPTO_memcmp (time independent of where
// the bytes differ). The verifier fixes the tag length; a tag of any other length fails, so a
// truncated tag never passes against a longer expected length.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace hsmkit {

constexpr size_t kHmacMinTag = 4;
constexpr size_t kHmacMaxTag = 64;  // SHA-512

// The hashes; the numbers are the binding's encoding of them.
enum class HmacHash : uint32_t { Sha1 = 0, Sha224 = 1, Sha256 = 2, Sha384 = 3, Sha512 = 4 };

// Throws InvalidArgument unless `value` names an HmacHash.
HmacHash hmac_hash_from(uint32_t value);
const char* hmac_name(HmacHash hash) noexcept;
// The full tag length: the hash's output size in bytes.
size_t hmac_digest_size(HmacHash hash) noexcept;
// Throws InvalidArgument for a tag length outside kHmacMinTag..hmac_digest_size(hash).
void check_hmac_tag_length(HmacHash hash, size_t tag_len);

// HMAC with one key and hash, keyed once: each computation restarts from the keyed state
// (OpenSSL keeps the inner and outer padded-key states). Not thread-safe.
class HmacContext {
 public:
  HmacContext(const uint8_t* key, size_t key_len, HmacHash hash);
  // A copy with its own keyed state (EVP_MAC_CTX_dup), for a multi-part operation.
  HmacContext(const HmacContext& other);
  ~HmacContext();
  HmacContext& operator=(const HmacContext&) = delete;

  HmacHash hash() const noexcept { return hash_; }

  // Starts a new computation under the key.
  void start();
  void update(const uint8_t* data, size_t len);
  // Writes the first tag_len bytes of the tag (check_hmac_tag_length first).
  void finish(uint8_t* out, size_t tag_len);
  // True when `tag` (tag_given bytes) equals the first tag_len bytes of the tag; false for a tag
  // of another length. Constant time in the tag bytes.
  bool finish_verify(const uint8_t* tag, size_t tag_given, size_t tag_len);

  // Single-part conveniences: start, update, finish.
  void sign(const uint8_t* data, size_t len, uint8_t* out, size_t tag_len);
  bool verify(const uint8_t* data, size_t len, const uint8_t* tag, size_t tag_given, size_t tag_len);

 private:
  EVP_MAC_CTX* ctx_;
  HmacHash hash_;
};

// A multi-part sign or verify (PKCS#11 C_SignUpdate/C_SignFinal, C_VerifyUpdate/C_VerifyFinal)
// with the tag length fixed at the start. It owns a copy of the key slot's context. sign(),
// verify(), abort() and any error end it, freeing (and so cleansing) its keyed state.
class HmacStream {
 public:
  HmacStream(const HmacContext& prepared, size_t tag_len);
  HmacStream(const HmacStream&) = delete;
  HmacStream& operator=(const HmacStream&) = delete;

  size_t tag_length() const noexcept { return tag_len_; }
  void update(const uint8_t* data, size_t len);
  // Writes tag_length() bytes and ends the operation.
  size_t sign(uint8_t* out);
  // Compares with `tag` as HmacContext::finish_verify does, and ends the operation.
  bool verify(const uint8_t* tag, size_t tag_given);
  void abort() noexcept { mac_.reset(); }
  bool ended() const noexcept { return mac_ == nullptr; }
  // Throws InvalidArgument once the operation has ended.
  void check_open() const;

 private:
  std::unique_ptr<HmacContext> mac_;
  size_t tag_len_;
};

}  // namespace hsmkit
