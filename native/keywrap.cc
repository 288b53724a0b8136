#include "keywrap.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

#include <cstring>
#include <string>

#include "aead.h"
#include "error.h"
#include "secure_memory.h"

namespace hsmkit {
namespace {

const EVP_CIPHER* fetch_once(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) throw_openssl(name);
  return cipher;
}

const EVP_CIPHER* wrap_cipher(size_t key_len, bool padded) {
  static const EVP_CIPHER* kw128 = fetch_once("AES-128-WRAP");
  static const EVP_CIPHER* kw192 = fetch_once("AES-192-WRAP");
  static const EVP_CIPHER* kw256 = fetch_once("AES-256-WRAP");
  static const EVP_CIPHER* kwp128 = fetch_once("AES-128-WRAP-PAD");
  static const EVP_CIPHER* kwp192 = fetch_once("AES-192-WRAP-PAD");
  static const EVP_CIPHER* kwp256 = fetch_once("AES-256-WRAP-PAD");
  if (padded) return key_len == 16 ? kwp128 : key_len == 24 ? kwp192 : kwp256;
  return key_len == 16 ? kw128 : key_len == 24 ? kw192 : kw256;
}

}  // namespace

size_t key_wrap_output_size(bool padded, size_t in_len) {
  if (in_len > kKeyWrapMaxInput) throw_invalid("key wrap input longer than 1 GiB");
  if (padded) {
    if (in_len == 0) throw_invalid("KWP cannot wrap an empty input");
    return (in_len + 7) / 8 * 8 + 8;
  }
  if (in_len < 16 || in_len % 8 != 0) {
    throw_invalid("KW wraps whole 8-byte blocks, at least 16 bytes; got " + std::to_string(in_len) +
                  " (use KWP for other lengths)");
  }
  return in_len + 8;
}

size_t key_unwrap_max_output_size(bool padded, size_t in_len) {
  if (in_len > kKeyWrapMaxInput + 8) throw_invalid("key unwrap input longer than 1 GiB");
  size_t minimum = padded ? 16 : 24;
  if (in_len < minimum || in_len % 8 != 0) {
    throw_invalid(std::string(padded ? "KWP" : "KW") + " wrapped input must be a multiple of 8 bytes, at least " +
                  std::to_string(minimum) + "; got " + std::to_string(in_len));
  }
  return in_len - 8;
}

KeyWrapContext::KeyWrapContext(const uint8_t* kek, size_t kek_len, bool padded, bool wrap)
    : ctx_(nullptr), padded_(padded), wrap_(wrap) {
  check_aes_key_length(kek_len);
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr) throw Error(ErrorCode::OutOfMemory, "EVP_CIPHER_CTX_new failed");
  // Required before OpenSSL 3 and harmless since: wrap modes are refused without it.
  EVP_CIPHER_CTX_set_flags(ctx_, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex(ctx_, wrap_cipher(kek_len, padded), nullptr, kek, nullptr, wrap ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw_openssl("AES key wrap setup");
  }
}

KeyWrapContext::~KeyWrapContext() { EVP_CIPHER_CTX_free(ctx_); }

size_t KeyWrapContext::wrap(const uint8_t* in, size_t in_len, uint8_t* out) {
  if (!wrap_) throw_invalid("key wrap context was made for unwrapping");
  size_t expected = key_wrap_output_size(padded_, in_len);
  int written = 0;
  // One update is one whole wrap in OpenSSL's wrap ciphers; the context is reusable after it.
  if (EVP_CipherUpdate(ctx_, out, &written, in, static_cast<int>(in_len)) != 1 ||
      static_cast<size_t>(written) != expected) {
    throw_openssl("AES key wrap");
  }
  return expected;
}

size_t KeyWrapContext::unwrap(const uint8_t* in, size_t in_len, uint8_t* out) {
  if (wrap_) throw_invalid("key wrap context was made for unwrapping");
  size_t maximum = key_unwrap_max_output_size(padded_, in_len);
  // OpenSSL's unwrap writes up to in_len bytes and, when a KWP integrity check fails, cleanses
  // in_len bytes of its output (CRYPTO_128_unwrap_pad) — 8 more than any result. So it unwraps
  // into scratch of in_len bytes, and only the recovered bytes reach the caller's buffer.
  SecureBytes scratch(in_len);
  int written = 0;
  if (EVP_CipherUpdate(ctx_, scratch.data(), &written, in, static_cast<int>(in_len)) != 1 || written <= 0 ||
      static_cast<size_t>(written) > maximum) {
    ERR_clear_error();
    throw Error(ErrorCode::Unwrap, "key unwrap failed: integrity check");
  }
  std::memcpy(out, scratch.data(), static_cast<size_t>(written));
  return static_cast<size_t>(written);
}

}  // namespace hsmkit
