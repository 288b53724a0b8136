#include "mac.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include <cstring>
#include <string>

#include "error.h"

namespace hsmkit {
namespace {

EVP_MAC* hmac_algorithm() {
  static EVP_MAC* mac = [] {
    EVP_MAC* fetched = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (fetched == nullptr) throw_openssl("EVP_MAC_fetch HMAC");
    return fetched;  // process lifetime: fetched once, shared by every context
  }();
  return mac;
}

// OpenSSL's canonical digest names.
const char* digest_name(HmacHash hash) noexcept {
  switch (hash) {
    case HmacHash::Sha1: return "SHA1";
    case HmacHash::Sha224: return "SHA2-224";
    case HmacHash::Sha256: return "SHA2-256";
    case HmacHash::Sha384: return "SHA2-384";
    case HmacHash::Sha512: return "SHA2-512";
  }
  return "SHA2-256";
}

}  // namespace

HmacHash hmac_hash_from(uint32_t value) {
  if (value > static_cast<uint32_t>(HmacHash::Sha512)) throw_invalid("unknown HMAC hash " + std::to_string(value));
  return static_cast<HmacHash>(value);
}

const char* hmac_name(HmacHash hash) noexcept {
  switch (hash) {
    case HmacHash::Sha1: return "HMAC-SHA1";
    case HmacHash::Sha224: return "HMAC-SHA224";
    case HmacHash::Sha256: return "HMAC-SHA256";
    case HmacHash::Sha384: return "HMAC-SHA384";
    case HmacHash::Sha512: return "HMAC-SHA512";
  }
  return "HMAC";
}

size_t hmac_digest_size(HmacHash hash) noexcept {
  switch (hash) {
    case HmacHash::Sha1: return 20;
    case HmacHash::Sha224: return 28;
    case HmacHash::Sha256: return 32;
    case HmacHash::Sha384: return 48;
    case HmacHash::Sha512: return 64;
  }
  return 0;
}

void check_hmac_tag_length(HmacHash hash, size_t tag_len) {
  size_t full = hmac_digest_size(hash);
  if (tag_len < kHmacMinTag || tag_len > full) {
    throw_invalid(std::string(hmac_name(hash)) + " tag length must be " + std::to_string(kHmacMinTag) + ".." +
                  std::to_string(full) + " bytes, not " + std::to_string(tag_len));
  }
}

HmacContext::HmacContext(const uint8_t* key, size_t key_len, HmacHash hash) : ctx_(nullptr), hash_(hash) {
  if (key_len == 0) throw_invalid("HMAC key must be at least 1 byte");
  ctx_ = EVP_MAC_CTX_new(hmac_algorithm());
  if (ctx_ == nullptr) throw Error(ErrorCode::OutOfMemory, "EVP_MAC_CTX_new failed");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest_name(hash)), 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_init(ctx_, key, key_len, params) != 1) {
    EVP_MAC_CTX_free(ctx_);
    throw_openssl("HMAC key setup");
  }
}

HmacContext::HmacContext(const HmacContext& other) : ctx_(EVP_MAC_CTX_dup(other.ctx_)), hash_(other.hash_) {
  if (ctx_ == nullptr) throw_openssl("EVP_MAC_CTX_dup");
}

// EVP_MAC_CTX_free cleanses the keyed state.
HmacContext::~HmacContext() { EVP_MAC_CTX_free(ctx_); }

void HmacContext::start() {
  // No key: OpenSSL restarts from the inner padded-key state it kept.
  if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) throw_openssl("HMAC restart");
}

void HmacContext::update(const uint8_t* data, size_t len) {
  if (len > 0 && EVP_MAC_update(ctx_, data, len) != 1) throw_openssl("EVP_MAC_update");
}

void HmacContext::finish(uint8_t* out, size_t tag_len) {
  uint8_t full[kHmacMaxTag];
  size_t full_len = 0;
  if (EVP_MAC_final(ctx_, full, &full_len, sizeof full) != 1 || full_len != hmac_digest_size(hash_) ||
      tag_len > full_len) {
    OPENSSL_cleanse(full, sizeof full);
    throw_openssl("EVP_MAC_final");
  }
  std::memcpy(out, full, tag_len);
  OPENSSL_cleanse(full, sizeof full);
}

bool HmacContext::finish_verify(const uint8_t* tag, size_t tag_given, size_t tag_len) {
  uint8_t expected[kHmacMaxTag];
  finish(expected, tag_len);
  // The length is public (the verifier chose it); only the bytes are compared in constant time.
  bool good = tag_given == tag_len && CRYPTO_memcmp(expected, tag, tag_len) == 0;
  OPENSSL_cleanse(expected, sizeof expected);
  return good;
}

void HmacContext::sign(const uint8_t* data, size_t len, uint8_t* out, size_t tag_len) {
  check_hmac_tag_length(hash_, tag_len);
  start();
  update(data, len);
  finish(out, tag_len);
}

bool HmacContext::verify(const uint8_t* data, size_t len, const uint8_t* tag, size_t tag_given, size_t tag_len) {
  check_hmac_tag_length(hash_, tag_len);
  start();
  update(data, len);
  return finish_verify(tag, tag_given, tag_len);
}

HmacStream::HmacStream(const HmacContext& prepared, size_t tag_len) : tag_len_(tag_len) {
  check_hmac_tag_length(prepared.hash(), tag_len);
  mac_ = std::make_unique<HmacContext>(prepared);
  mac_->start();
}

void HmacStream::check_open() const {
  if (mac_ == nullptr) throw_invalid("the HMAC operation has ended (by sign, verify, abort or an earlier error)");
}

void HmacStream::update(const uint8_t* data, size_t len) {
  check_open();
  try {
    mac_->update(data, len);
  } catch (...) {
    abort();
    throw;
  }
}

size_t HmacStream::sign(uint8_t* out) {
  check_open();
  try {
    mac_->finish(out, tag_len_);
  } catch (...) {
    abort();
    throw;
  }
  abort();
  return tag_len_;
}

bool HmacStream::verify(const uint8_t* tag, size_t tag_given) {
  check_open();
  bool good = false;
  try {
    good = mac_->finish_verify(tag, tag_given, tag_len_);
  } catch (...) {
    abort();
    throw;
  }
  abort();
  return good;
}

}  // namespace hsmkit
