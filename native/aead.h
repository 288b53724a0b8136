// AES-GCM (NIST SP 800-38D) seal and open over OpenSSL's EVP interface.
//
// Sealed layout, as PKCS#11 CKM_AES_GCM returns it: ciphertext || tag, where the tag is the
// first tag_len bytes of the full 16-byte GCM tag.
//
// Limits: key 16, 24 or 32 bytes; IV at least 1 byte (SP 800-38D allows up to 2^61-1 bits;
// we take up to 2^32-1 bytes); tag 4..16 bytes (PKCS#11 CK_GCM_PARAMS.ulTagBits 32..128 in
// whole bytes); plaintext and AAD up to 2^36-32 bytes and 2^61-1 bits respectively — we cap
// both at SIZE_MAX and let OpenSSL enforce the GCM bounds.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace hsmkit {

constexpr size_t kGcmMinTag = 4;
constexpr size_t kGcmMaxTag = 16;

// Throws ErrorCode::InvalidArgument unless key_len is an AES key length.
void check_aes_key_length(size_t key_len);
// Throws ErrorCode::InvalidArgument for an empty IV or a tag length outside 4..16.
void check_gcm_parameters(size_t iv_len, size_t tag_len);

// One GCM direction under one key, key schedule done once. Each seal/open only sets the IV.
// Not thread-safe: use one context per thread.
class GcmContext {
 public:
  GcmContext(const uint8_t* key, size_t key_len, bool encrypt);
  ~GcmContext();
  GcmContext(const GcmContext&) = delete;
  GcmContext& operator=(const GcmContext&) = delete;

  // Writes pt_len + tag_len bytes to out (which may alias pt).
  void seal(const uint8_t* iv, size_t iv_len, const uint8_t* aad, size_t aad_len, const uint8_t* pt, size_t pt_len,
            size_t tag_len, uint8_t* out);
  // Reads sealed = ciphertext || tag; writes sealed_len - tag_len bytes to out. Returns false,
  // with out zeroed, when the tag does not verify. Releases no unauthenticated plaintext.
  bool open(const uint8_t* iv, size_t iv_len, const uint8_t* aad, size_t aad_len, const uint8_t* sealed,
            size_t sealed_len, size_t tag_len, uint8_t* out);

 private:
  void set_iv(const uint8_t* iv, size_t iv_len);

  EVP_CIPHER_CTX* ctx_;
  const uint8_t* key_;
  size_t key_len_;
  size_t iv_len_ = 12;
  bool encrypt_;
};

// Messages packed back to back: message i has lengths[i] bytes; its IV is ivs[i*iv_len ..];
// its AAD is the i-th run of aad_lengths in aads (or none when aads is null).
struct GcmBatch {
  const uint8_t* ivs;
  size_t iv_len;
  const uint8_t* aads;          // may be null
  const uint32_t* aad_lengths;  // null when aads is null
  const uint8_t* data;
  const uint32_t* lengths;
  size_t count;
  size_t tag_len;
};

// Bytes of output a batch needs: sum(lengths) + count*tag_len when sealing,
// sum(lengths) - count*tag_len when opening. Throws InvalidArgument on inconsistent shapes.
size_t gcm_batch_output_size(const GcmBatch& batch, size_t data_len, size_t ivs_len, size_t aads_len, bool seal);

// Seals every message into out, packed: sealed_i = ct_i || tag_i.
void gcm_seal_batch(GcmContext& context, const GcmBatch& batch, uint8_t* out);
// Opens every message; ok[i] = 1 when message i verified, else 0 and its plaintext zeroed.
// Returns how many verified.
size_t gcm_open_batch(GcmContext& context, const GcmBatch& batch, uint8_t* out, uint8_t* ok);

}  // namespace hsmkit
