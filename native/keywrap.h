// AES key wrap: KW (RFC 3394, SP 800-38F §6.2) and KWP (RFC 5649, SP 800-38F §6.3), through
// OpenSSL's AES-*-WRAP and AES-*-WRAP-PAD ciphers with their default integrity values
// (A6A6A6A6A6A6A6A6 for KW, A65959A6 || MLI for KWP).
//
// Limits (SP 800-38F): KW wraps 16 bytes or more in whole 8-byte semiblocks; KWP wraps 1 to
// 2^32-1 bytes. Output is 8 bytes longer than the (padded) input. OpenSSL caps one call at
// 2^31 bytes; we cap at 1 GiB, far above any key.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace hsmkit {

constexpr size_t kKeyWrapMaxInput = size_t{1} << 30;

// Output length of a wrap of in_len bytes; throws InvalidArgument if KW/KWP cannot wrap it.
size_t key_wrap_output_size(bool padded, size_t in_len);
// Largest possible output of an unwrap of in_len bytes; throws InvalidArgument for a length
// no wrap produces (public information, so not the opaque integrity error).
size_t key_unwrap_max_output_size(bool padded, size_t in_len);

// One wrap or unwrap direction under one key-encryption key; key schedule done once.
// Not thread-safe: use one context per thread.
class KeyWrapContext {
 public:
  KeyWrapContext(const uint8_t* kek, size_t kek_len, bool padded, bool wrap);
  ~KeyWrapContext();
  KeyWrapContext(const KeyWrapContext&) = delete;
  KeyWrapContext& operator=(const KeyWrapContext&) = delete;

  // Writes key_wrap_output_size(padded, in_len) bytes; returns that count.
  size_t wrap(const uint8_t* in, size_t in_len, uint8_t* out);
  // Writes the recovered bytes (at most key_unwrap_max_output_size) and returns their count.
  // Throws ErrorCode::Unwrap, leaving out untouched, when the integrity check fails. Never writes
  // past the recovered bytes (OpenSSL itself may write in_len bytes; we give it scratch for that).
  size_t unwrap(const uint8_t* in, size_t in_len, uint8_t* out);

 private:
  EVP_CIPHER_CTX* ctx_;
  bool padded_;
  bool wrap_;
};

}  // namespace hsmkit
