#include "keywrap.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/modes.h>

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

const EVP_CIPHER* ecb_cipher(size_t key_len) {
  static const EVP_CIPHER* aes128 = fetch_once("AES-128-ECB");
  static const EVP_CIPHER* aes192 = fetch_once("AES-192-ECB");
  static const EVP_CIPHER* aes256 = fetch_once("AES-256-ECB");
  return key_len == 16 ? aes128 : key_len == 24 ? aes192 : aes256;
}

// The block function OpenSSL's KW/KWP construction calls 6n times: one AES block through an ECB
// context prepared once with the key (AES-NI where the CPU has it). An initialized ECB context
// without padding cannot fail on one whole block.
void ecb_block(const unsigned char in[16], unsigned char out[16], const void* key) {
  int written = 0;
  EVP_CipherUpdate(static_cast<EVP_CIPHER_CTX*>(const_cast<void*>(key)), out, &written, in, 16);
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

// OpenSSL 3.0's AES-*-WRAP(-PAD) ciphers run RFC 3394/5649 over the low-level, table-based
// AES_encrypt (providers/implementations/ciphers/cipher_aes_wrp.c), which is not AES-NI and not
// free of cache-timing leaks. We run the same OpenSSL construction (CRYPTO_128_wrap[_pad],
// CRYPTO_128_unwrap[_pad] from modes.h) over an EVP AES-ECB context instead: the same bytes,
// checked against every Wycheproof KW/KWP vector, with the AES inside on AES-NI.
KeyWrapContext::KeyWrapContext(const uint8_t* kek, size_t kek_len, bool padded, bool wrap)
    : ctx_(nullptr), padded_(padded), wrap_(wrap) {
  check_aes_key_length(kek_len);
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr) throw Error(ErrorCode::OutOfMemory, "EVP_CIPHER_CTX_new failed");
  // Wrapping runs the forward cipher, unwrapping the inverse (RFC 3394 §2.2.1, §2.2.2).
  if (EVP_CipherInit_ex(ctx_, ecb_cipher(kek_len), nullptr, kek, nullptr, wrap ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw_openssl("AES key wrap setup");
  }
  EVP_CIPHER_CTX_set_padding(ctx_, 0);
}

KeyWrapContext::~KeyWrapContext() { EVP_CIPHER_CTX_free(ctx_); }

size_t KeyWrapContext::wrap(const uint8_t* in, size_t in_len, uint8_t* out) {
  if (!wrap_) throw_invalid("key wrap context was made for unwrapping");
  size_t expected = key_wrap_output_size(padded_, in_len);
  // A null IV selects the default integrity values: A6A6A6A6A6A6A6A6 (KW), A65959A6 ‖ MLI (KWP).
  size_t written = padded_ ? CRYPTO_128_wrap_pad(ctx_, nullptr, out, in, in_len, ecb_block)
                           : CRYPTO_128_wrap(ctx_, nullptr, out, in, in_len, ecb_block);
  if (written != expected) throw Error(ErrorCode::OpenSSL, "AES key wrap failed");
  return expected;
}

size_t KeyWrapContext::unwrap(const uint8_t* in, size_t in_len, uint8_t* out) {
  if (wrap_) throw_invalid("key wrap context was made for unwrapping");
  size_t maximum = key_unwrap_max_output_size(padded_, in_len);
  // OpenSSL's unwrap writes up to in_len bytes and, when a KWP integrity check fails, cleanses
  // in_len bytes of its output (CRYPTO_128_unwrap_pad) — 8 more than any result. So it unwraps
  // into scratch of in_len bytes, and only the recovered bytes reach the caller's buffer.
  SecureBytes scratch(in_len);
  size_t written = padded_ ? CRYPTO_128_unwrap_pad(ctx_, nullptr, scratch.data(), in, in_len, ecb_block)
                           : CRYPTO_128_unwrap(ctx_, nullptr, scratch.data(), in, in_len, ecb_block);
  if (written == 0 || written > maximum) {
    ERR_clear_error();
    throw Error(ErrorCode::Unwrap, "key unwrap failed: integrity check");
  }
  std::memcpy(out, scratch.data(), written);
  return written;
}

}  // namespace hsmkit
