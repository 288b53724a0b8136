#include "aead.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/modes.h>

#include <climits>
#include <cstring>
#include <string>

#include "error.h"

namespace hsmkit {
namespace {

// OpenSSL 3's GCM provider keeps the IV in a 128-byte field (GCM_IV_MAX_SIZE), so longer
// IVs, which SP 800-38D and PKCS#11 allow, go through OpenSSL's own GCM128 mode code
// instead, with AES-ECB through EVP as its block function (AES-NI, no table lookups).
constexpr size_t kEvpMaxIv = 128;

// EVP update lengths are ints; feed larger inputs in chunks a multiple of the block size.
constexpr size_t kUpdateChunk = size_t{1} << 30;

const EVP_CIPHER* fetch_once(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) throw_openssl(name);
  return cipher;  // process lifetime: fetched once, shared by every context
}

const EVP_CIPHER* gcm_cipher(size_t key_len) {
  static const EVP_CIPHER* aes128 = fetch_once("AES-128-GCM");
  static const EVP_CIPHER* aes192 = fetch_once("AES-192-GCM");
  static const EVP_CIPHER* aes256 = fetch_once("AES-256-GCM");
  return key_len == 16 ? aes128 : key_len == 24 ? aes192 : aes256;
}

const EVP_CIPHER* ecb_cipher(size_t key_len) {
  static const EVP_CIPHER* aes128 = fetch_once("AES-128-ECB");
  static const EVP_CIPHER* aes192 = fetch_once("AES-192-ECB");
  static const EVP_CIPHER* aes256 = fetch_once("AES-256-ECB");
  return key_len == 16 ? aes128 : key_len == 24 ? aes192 : aes256;
}

void update(EVP_CIPHER_CTX* ctx, uint8_t* out, const uint8_t* in, size_t len) {
  while (len > 0) {
    size_t chunk = len < kUpdateChunk ? len : kUpdateChunk;
    int written = 0;
    if (EVP_CipherUpdate(ctx, out, &written, in, static_cast<int>(chunk)) != 1) throw_openssl("EVP_CipherUpdate");
    in += chunk;
    if (out != nullptr) out += chunk;
    len -= chunk;
  }
}

// GCM with an IV longer than the EVP provider accepts.
class LongIvGcm {
 public:
  LongIvGcm(const uint8_t* key, size_t key_len) : ecb_(EVP_CIPHER_CTX_new()) {
    if (ecb_ == nullptr || EVP_EncryptInit_ex(ecb_, ecb_cipher(key_len), nullptr, key, nullptr) != 1) {
      EVP_CIPHER_CTX_free(ecb_);
      throw_openssl("AES-ECB init");
    }
    EVP_CIPHER_CTX_set_padding(ecb_, 0);
    gcm_ = CRYPTO_gcm128_new(ecb_, &LongIvGcm::block);
    if (gcm_ == nullptr) {
      EVP_CIPHER_CTX_free(ecb_);
      throw Error(ErrorCode::OutOfMemory, "CRYPTO_gcm128_new failed");
    }
  }
  ~LongIvGcm() {
    CRYPTO_gcm128_release(gcm_);  // cleanses the GHASH key
    EVP_CIPHER_CTX_free(ecb_);
  }

  void start(const uint8_t* iv, size_t iv_len, const uint8_t* aad, size_t aad_len) {
    CRYPTO_gcm128_setiv(gcm_, iv, iv_len);
    if (aad_len > 0 && CRYPTO_gcm128_aad(gcm_, aad, aad_len) != 0) throw_invalid("GCM additional data too long");
  }
  void encrypt(const uint8_t* in, uint8_t* out, size_t len) {
    if (len > 0 && CRYPTO_gcm128_encrypt(gcm_, in, out, len) != 0) throw_invalid("GCM plaintext too long");
  }
  void decrypt(const uint8_t* in, uint8_t* out, size_t len) {
    if (len > 0 && CRYPTO_gcm128_decrypt(gcm_, in, out, len) != 0) throw_invalid("GCM ciphertext too long");
  }
  void tag(uint8_t* out, size_t len) {
    uint8_t full[16];
    CRYPTO_gcm128_tag(gcm_, full, sizeof full);
    std::memcpy(out, full, len);
  }
  // Constant-time comparison inside OpenSSL.
  bool verify(const uint8_t* expected, size_t len) { return CRYPTO_gcm128_finish(gcm_, expected, len) == 0; }

 private:
  static void block(const unsigned char in[16], unsigned char out[16], const void* key) {
    int written = 0;
    // An initialized ECB context without padding cannot fail on one whole block.
    EVP_EncryptUpdate(static_cast<EVP_CIPHER_CTX*>(const_cast<void*>(key)), out, &written, in, 16);
  }

  EVP_CIPHER_CTX* ecb_;
  GCM128_CONTEXT* gcm_;
};

}  // namespace

void check_aes_key_length(size_t key_len) {
  if (key_len != 16 && key_len != 24 && key_len != 32) {
    throw_invalid("AES key must be 16, 24 or 32 bytes, not " + std::to_string(key_len));
  }
}

void check_gcm_parameters(size_t iv_len, size_t tag_len) {
  if (iv_len == 0) throw_invalid("GCM IV must be at least 1 byte");
  if (iv_len > UINT32_MAX) throw_invalid("GCM IV must be at most 2^32-1 bytes");
  if (tag_len < kGcmMinTag || tag_len > kGcmMaxTag) throw_invalid("GCM tag length must be 4..16 bytes");
}

GcmContext::GcmContext(const uint8_t* key, size_t key_len, bool encrypt)
    : ctx_(nullptr), key_(key), key_len_(key_len), encrypt_(encrypt) {
  check_aes_key_length(key_len);
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr) throw Error(ErrorCode::OutOfMemory, "EVP_CIPHER_CTX_new failed");
  if (EVP_CipherInit_ex(ctx_, gcm_cipher(key_len), nullptr, key, nullptr, encrypt ? 1 : 0) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw_openssl("AES-GCM key setup");
  }
}

GcmContext::~GcmContext() { EVP_CIPHER_CTX_free(ctx_); }

void GcmContext::set_iv(const uint8_t* iv, size_t iv_len) {
  if (iv_len != iv_len_) {
    if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(iv_len), nullptr) != 1) {
      throw_openssl("GCM set IV length");
    }
    iv_len_ = iv_len;
  }
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, iv, -1) != 1) throw_openssl("GCM set IV");
}

void GcmContext::seal(const uint8_t* iv, size_t iv_len, const uint8_t* aad, size_t aad_len, const uint8_t* pt,
                      size_t pt_len, size_t tag_len, uint8_t* out) {
  check_gcm_parameters(iv_len, tag_len);
  if (!encrypt_) throw_invalid("GCM context was made for opening");
  if (iv_len > kEvpMaxIv) {
    LongIvGcm gcm(key_, key_len_);
    gcm.start(iv, iv_len, aad, aad_len);
    gcm.encrypt(pt, out, pt_len);
    gcm.tag(out + pt_len, tag_len);
    return;
  }
  set_iv(iv, iv_len);
  if (aad_len > 0) update(ctx_, nullptr, aad, aad_len);
  if (pt_len > 0) update(ctx_, out, pt, pt_len);
  int written = 0;
  if (EVP_CipherFinal_ex(ctx_, out + pt_len, &written) != 1) throw_openssl("GCM seal final");
  if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag_len), out + pt_len) != 1) {
    throw_openssl("GCM get tag");
  }
}

bool GcmContext::open(const uint8_t* iv, size_t iv_len, const uint8_t* aad, size_t aad_len, const uint8_t* sealed,
                      size_t sealed_len, size_t tag_len, uint8_t* out) {
  check_gcm_parameters(iv_len, tag_len);
  if (encrypt_) throw_invalid("GCM context was made for sealing");
  if (sealed_len < tag_len) throw_invalid("GCM input is shorter than its tag");
  size_t ct_len = sealed_len - tag_len;
  uint8_t tag[kGcmMaxTag];
  std::memcpy(tag, sealed + ct_len, tag_len);  // out may alias sealed
  bool verified;
  if (iv_len > kEvpMaxIv) {
    LongIvGcm gcm(key_, key_len_);
    gcm.start(iv, iv_len, aad, aad_len);
    gcm.decrypt(sealed, out, ct_len);
    verified = gcm.verify(tag, tag_len);
  } else {
    set_iv(iv, iv_len);
    if (aad_len > 0) update(ctx_, nullptr, aad, aad_len);
    if (EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag_len), tag) != 1) {
      throw_openssl("GCM set tag");
    }
    if (ct_len > 0) update(ctx_, out, sealed, ct_len);
    int written = 0;
    verified = EVP_CipherFinal_ex(ctx_, out + ct_len, &written) == 1;
  }
  if (!verified) {
    OPENSSL_cleanse(out, ct_len);
    ERR_clear_error();
  }
  return verified;
}

size_t gcm_batch_output_size(const GcmBatch& batch, size_t data_len, size_t ivs_len, size_t aads_len, bool seal) {
  check_gcm_parameters(batch.iv_len, batch.tag_len);
  if (ivs_len != batch.count * batch.iv_len) {
    throw_invalid("batch IVs: expected " + std::to_string(batch.count) + " IVs of " + std::to_string(batch.iv_len) +
                  " bytes (" + std::to_string(batch.count * batch.iv_len) + " bytes), got " + std::to_string(ivs_len));
  }
  uint64_t total = 0;
  for (size_t i = 0; i < batch.count; i++) {
    if (!seal && batch.lengths[i] < batch.tag_len) {
      throw_invalid("batch message " + std::to_string(i) + " is shorter than its tag");
    }
    total += batch.lengths[i];
  }
  if (total != data_len) {
    throw_invalid("batch lengths add up to " + std::to_string(total) + " bytes but the data holds " +
                  std::to_string(data_len));
  }
  if (batch.aads != nullptr) {
    uint64_t aad_total = 0;
    for (size_t i = 0; i < batch.count; i++) aad_total += batch.aad_lengths[i];
    if (aad_total != aads_len) {
      throw_invalid("batch AAD lengths add up to " + std::to_string(aad_total) + " bytes but the AAD holds " +
                    std::to_string(aads_len));
    }
  }
  uint64_t tags = static_cast<uint64_t>(batch.count) * batch.tag_len;
  return static_cast<size_t>(seal ? total + tags : total - tags);
}

void gcm_seal_batch(GcmContext& context, const GcmBatch& batch, uint8_t* out) {
  const uint8_t* in = batch.data;
  const uint8_t* aad = batch.aads;
  for (size_t i = 0; i < batch.count; i++) {
    size_t len = batch.lengths[i];
    size_t aad_len = aad != nullptr ? batch.aad_lengths[i] : 0;
    context.seal(batch.ivs + i * batch.iv_len, batch.iv_len, aad, aad_len, in, len, batch.tag_len, out);
    in += len;
    out += len + batch.tag_len;
    if (aad != nullptr) aad += aad_len;
  }
}

size_t gcm_open_batch(GcmContext& context, const GcmBatch& batch, uint8_t* out, uint8_t* ok) {
  const uint8_t* in = batch.data;
  const uint8_t* aad = batch.aads;
  size_t verified = 0;
  for (size_t i = 0; i < batch.count; i++) {
    size_t len = batch.lengths[i];
    size_t aad_len = aad != nullptr ? batch.aad_lengths[i] : 0;
    bool good = context.open(batch.ivs + i * batch.iv_len, batch.iv_len, aad, aad_len, in, len, batch.tag_len, out);
    ok[i] = good ? 1 : 0;
    verified += good ? 1 : 0;
    in += len;
    out += len - batch.tag_len;
    if (aad != nullptr) aad += aad_len;
  }
  return verified;
}

}  // namespace hsmkit
