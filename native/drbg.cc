#include "drbg.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstring>

#include "error.h"

namespace hsmkit::drbg {

namespace {

constexpr size_t kBlock = CtrDrbg::kBlockLength;

EVP_CIPHER* fetch_cipher(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) throw_openssl("EVP_CIPHER_fetch(AES-ECB)");
  return cipher;
}

// Fetched once per key size and kept for the life of the process (an implicit fetch inside
// every EVP_EncryptInit_ex costs about a microsecond). If a fetch throws, the static stays
// uninitialised and the next call tries again.
const EVP_CIPHER* ecb_cipher(size_t key_length) {
  switch (key_length) {
    case 16: {
      static const EVP_CIPHER* const cipher = fetch_cipher("AES-128-ECB");
      return cipher;
    }
    case 24: {
      static const EVP_CIPHER* const cipher = fetch_cipher("AES-192-ECB");
      return cipher;
    }
    default: {
      static const EVP_CIPHER* const cipher = fetch_cipher("AES-256-ECB");
      return cipher;
    }
  }
}

size_t blocks_for(size_t bytes) { return (bytes + kBlock - 1) / kBlock; }

// Big-endian 64-bit load/store. GCC and Clang turn the byte-swap builtin into one bswap; the
// byte loops are the portable fallback (they are ~3x slower on the 64 KiB hot path).
uint64_t load_be64(const uint8_t* in) {
  uint64_t value;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(&value, in, sizeof value);
  value = __builtin_bswap64(value);
#else
  value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | in[i];
#endif
  return value;
}

void store_be64(uint8_t* out, uint64_t value) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  value = __builtin_bswap64(value);
  std::memcpy(out, &value, sizeof value);
#else
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(value);
    value >>= 8;
  }
#endif
}

void store_be32(uint8_t* out, uint32_t value) {
  out[0] = static_cast<uint8_t>(value >> 24);
  out[1] = static_cast<uint8_t>(value >> 16);
  out[2] = static_cast<uint8_t>(value >> 8);
  out[3] = static_cast<uint8_t>(value);
}

// Cleanses a buffer when the scope ends, however it ends (OpenSSL failures throw).
class ScopedCleanse {
 public:
  ScopedCleanse(void* data, size_t length) : data_(data), length_(length) {}
  ~ScopedCleanse() { OPENSSL_cleanse(data_, length_); }
  ScopedCleanse(const ScopedCleanse&) = delete;
  ScopedCleanse& operator=(const ScopedCleanse&) = delete;

 private:
  void* data_;
  size_t length_;
};

// Reads the concatenation of a few byte strings block by block, without copying them into one
// buffer (Block_Cipher_df's S can hold kilobytes of entropy input).
class SegmentReader {
 public:
  struct Segment {
    const uint8_t* data;
    size_t length;
  };
  SegmentReader(const Segment* segments, size_t count) : segments_(segments), count_(count) {}

  // Copies up to `length` bytes into `out`; returns how many were available.
  size_t read(uint8_t* out, size_t length) {
    size_t done = 0;
    while (done < length && index_ < count_) {
      const Segment& segment = segments_[index_];
      size_t take = segment.length - offset_;
      if (take > length - done) take = length - done;
      if (take > 0) std::memcpy(out + done, segment.data + offset_, take);
      done += take;
      offset_ += take;
      if (offset_ == segment.length) {
        ++index_;
        offset_ = 0;
      }
    }
    return done;
  }

 private:
  const Segment* segments_;
  size_t count_;
  size_t index_ = 0;
  size_t offset_ = 0;
};

}  // namespace

CtrDrbg::CtrDrbg(size_t key_length, bool use_df) : key_length_(key_length), use_df_(use_df) {
  if (key_length != 16 && key_length != 24 && key_length != 32) {
    throw_invalid("CTR_DRBG key length must be 16, 24 or 32 bytes");
  }
  const EVP_CIPHER* cipher = ecb_cipher(key_length);
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr) throw_openssl("EVP_CIPHER_CTX_new");
  if (use_df_) {
    df_ctx_ = EVP_CIPHER_CTX_new();
    if (df_ctx_ == nullptr) {
      EVP_CIPHER_CTX_free(ctx_);
      throw_openssl("EVP_CIPHER_CTX_new");
    }
  }
  for (EVP_CIPHER_CTX* ctx : {ctx_, df_ctx_}) {
    if (ctx == nullptr) continue;
    if (EVP_EncryptInit_ex(ctx, cipher, nullptr, nullptr, nullptr) != 1 || EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
      EVP_CIPHER_CTX_free(ctx_);
      EVP_CIPHER_CTX_free(df_ctx_);
      throw_openssl("EVP_EncryptInit_ex(AES-ECB)");
    }
  }
}

CtrDrbg::~CtrDrbg() {
  OPENSSL_cleanse(key_, sizeof key_);
  OPENSSL_cleanse(v_, sizeof v_);
  // Freeing a context clears and frees the provider's key schedule.
  EVP_CIPHER_CTX_free(ctx_);
  EVP_CIPHER_CTX_free(df_ctx_);
}

void CtrDrbg::set_reseed_interval(uint64_t interval) {
  if (interval < 1 || interval > kMaxReseedInterval) throw_invalid("reseed_interval must be from 1 to 2^48");
  reseed_interval_ = interval;
}

void CtrDrbg::set_key(EVP_CIPHER_CTX* ctx, const uint8_t* key) {
  // NULL cipher: keep the fetched cipher and the context, only run the key schedule.
  if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, key, nullptr) != 1) throw_openssl("EVP_EncryptInit_ex(key)");
}

void CtrDrbg::ecb(EVP_CIPHER_CTX* ctx, const uint8_t* in, uint8_t* out, size_t length) {
  int written = 0;
  if (EVP_EncryptUpdate(ctx, out, &written, in, static_cast<int>(length)) != 1 ||
      static_cast<size_t>(written) != length) {
    throw_openssl("EVP_EncryptUpdate(AES-ECB)");
  }
}

void CtrDrbg::next_counter_blocks(uint8_t* blocks, size_t count) {
  // ctr_len = blocklen: V = (V + 1) mod 2^128, V big-endian.
  uint64_t high = load_be64(v_);
  uint64_t low = load_be64(v_ + 8);
  for (size_t i = 0; i < count; ++i) {
    if (++low == 0) ++high;
    store_be64(blocks + i * kBlock, high);
    store_be64(blocks + i * kBlock + 8, low);
  }
  store_be64(v_, high);
  store_be64(v_ + 8, low);
}

void CtrDrbg::update_from_keystream(uint8_t* temp, const uint8_t* provided_data) {
  const size_t seed_length = this->seed_length();
  if (provided_data != nullptr) {
    for (size_t i = 0; i < seed_length; ++i) temp[i] ^= provided_data[i];
  }
  std::memcpy(key_, temp, key_length_);
  std::memcpy(v_, temp + key_length_, kBlock);
  set_key(ctx_, key_);
}

void CtrDrbg::update(const uint8_t* provided_data) {
  // §10.2.1.2: temp = E(Key, V+1) || E(Key, V+2) || ...; leftmost seedlen bits, XOR
  // provided_data; Key = leftmost keylen bits, V = the next blocklen bits. One EVP call.
  uint8_t temp[3 * kBlock];
  ScopedCleanse wipe_temp(temp, sizeof temp);
  const size_t blocks = blocks_for(seed_length());
  next_counter_blocks(temp, blocks);
  ecb(ctx_, temp, temp, blocks * kBlock);
  update_from_keystream(temp, provided_data);
}

void CtrDrbg::derive(const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length, const uint8_t* c,
                     size_t c_length, uint8_t* out) {
  // §10.3.2 Block_Cipher_df(input_string, seedlen). The input length L is a 32-bit byte count.
  const uint64_t input_length = uint64_t{a_length} + b_length + c_length;
  if (input_length >= kMaxInputBytes) throw_invalid("derivation function input must be shorter than 2^32 bytes");
  const size_t seed_length = this->seed_length();

  // S = L || N || input_string || 0x80 || 0x00 ... (to a multiple of outlen).
  uint8_t header[8];
  store_be32(header, static_cast<uint32_t>(input_length));
  store_be32(header + 4, static_cast<uint32_t>(seed_length));
  static const uint8_t kMarker = 0x80;
  const SegmentReader::Segment segments[] = {{header, sizeof header}, {a, a_length}, {b, b_length},
                                             {c, c_length}, {&kMarker, 1}};
  SegmentReader s(segments, sizeof segments / sizeof segments[0]);

  // K = leftmost(0x00010203...1F, keylen).
  uint8_t k[32];
  for (size_t i = 0; i < sizeof k; ++i) k[i] = static_cast<uint8_t>(i);
  set_key(df_ctx_, k);

  // temp = BCC(K, IV_0 || S) || BCC(K, IV_1 || S) || ... until keylen + outlen bits, with
  // IV_i = i (32 bits) || 0^(outlen-32). The chains are independent and share the key, so one
  // EVP call advances all of them by a block: each BCC step is chain_i = E(K, chain_i XOR block).
  // ceil((keylen + outlen) / outlen): 2 for AES-128, 3 for AES-192/256 (spelled out so the
  // compiler can see that `chain` is large enough).
  const size_t chains = key_length_ == 16 ? 2 : 3;
  uint8_t chain[3 * kBlock] = {};
  ScopedCleanse wipe_chain(chain, sizeof chain);
  for (size_t i = 0; i < chains; ++i) store_be32(chain + i * kBlock, static_cast<uint32_t>(i));
  ecb(df_ctx_, chain, chain, chains * kBlock);  // the IV block: E(K, 0 XOR IV_i)
  uint8_t block[kBlock];
  ScopedCleanse wipe_block(block, sizeof block);
  for (;;) {
    size_t got = s.read(block, kBlock);
    if (got == 0) break;
    if (got < kBlock) std::memset(block + got, 0, kBlock - got);  // zero padding to outlen
    for (size_t i = 0; i < chains; ++i) {
      for (size_t j = 0; j < kBlock; ++j) chain[i * kBlock + j] ^= block[j];
    }
    ecb(df_ctx_, chain, chain, chains * kBlock);
    if (got < kBlock) break;
  }

  // K = leftmost(temp, keylen); X = the next outlen bits; then X = E(K, X) repeatedly, and the
  // output is the leftmost seedlen bits of the X values.
  uint8_t derived[3 * kBlock];
  ScopedCleanse wipe_derived(derived, sizeof derived);
  uint8_t x[kBlock];
  ScopedCleanse wipe_x(x, sizeof x);
  set_key(df_ctx_, chain);
  std::memcpy(x, chain + key_length_, kBlock);
  const size_t out_blocks = blocks_for(seed_length);
  for (size_t i = 0; i < out_blocks; ++i) {
    ecb(df_ctx_, x, x, kBlock);
    std::memcpy(derived + i * kBlock, x, kBlock);
  }
  std::memcpy(out, derived, seed_length);
  // Leave no derived key schedule behind in df_ctx_: go back to the public constant key.
  set_key(df_ctx_, k);
}

void CtrDrbg::check_entropy_length(size_t entropy_length) const {
  if (use_df_) {
    if (entropy_length < key_length_) throw_invalid("entropy input must carry at least security_strength bits");
    if (entropy_length >= kMaxInputBytes) throw_invalid("entropy input must be shorter than 2^32 bytes");
  } else if (entropy_length != seed_length()) {
    throw_invalid("without the derivation function, entropy input must be exactly seedlen bits");
  }
}

void CtrDrbg::instantiate(const uint8_t* entropy, size_t entropy_length, const uint8_t* nonce, size_t nonce_length,
                          const uint8_t* personalization, size_t personalization_length) {
  check_entropy_length(entropy_length);
  const size_t seed_length = this->seed_length();
  uint8_t seed_material[3 * kBlock] = {};
  ScopedCleanse wipe_seed(seed_material, sizeof seed_material);
  if (use_df_) {
    // §10.2.1.3.2: seed_material = Block_Cipher_df(entropy_input || nonce || personalization_string).
    derive(entropy, entropy_length, nonce, nonce_length, personalization, personalization_length, seed_material);
  } else {
    // §10.2.1.3.1: personalization_string padded with zeros to seedlen, XOR entropy_input.
    if (nonce_length != 0) throw_invalid("without the derivation function, CTR_DRBG takes no nonce");
    if (personalization_length > seed_length) throw_invalid("personalization string longer than seedlen");
    if (personalization_length > 0) std::memcpy(seed_material, personalization, personalization_length);
    for (size_t i = 0; i < seed_length; ++i) seed_material[i] ^= entropy[i];
  }
  std::memset(key_, 0, sizeof key_);
  std::memset(v_, 0, sizeof v_);
  instantiated_ = false;
  try {
    set_key(ctx_, key_);
    update(seed_material);
  } catch (...) {
    uninstantiate();
    throw;
  }
  reseed_counter_ = 1;
  instantiated_ = true;
}

void CtrDrbg::reseed(const uint8_t* entropy, size_t entropy_length, const uint8_t* additional,
                     size_t additional_length) {
  if (!instantiated_) throw Error(ErrorCode::Entropy, "CTR_DRBG is not instantiated");
  check_entropy_length(entropy_length);
  const size_t seed_length = this->seed_length();
  uint8_t seed_material[3 * kBlock] = {};
  ScopedCleanse wipe_seed(seed_material, sizeof seed_material);
  if (use_df_) {
    // §10.2.1.4.2: seed_material = Block_Cipher_df(entropy_input || additional_input).
    derive(entropy, entropy_length, additional, additional_length, nullptr, 0, seed_material);
  } else {
    // §10.2.1.4.1: additional_input padded with zeros to seedlen, XOR entropy_input.
    if (additional_length > seed_length) throw_invalid("additional input longer than seedlen");
    if (additional_length > 0) std::memcpy(seed_material, additional, additional_length);
    for (size_t i = 0; i < seed_length; ++i) seed_material[i] ^= entropy[i];
  }
  try {
    update(seed_material);
  } catch (...) {
    uninstantiate();
    throw;
  }
  reseed_counter_ = 1;
}

GenerateResult CtrDrbg::generate(uint8_t* out, size_t length, const uint8_t* additional, size_t additional_length) {
  if (!instantiated_) throw Error(ErrorCode::Entropy, "CTR_DRBG is not instantiated");
  if (length > kMaxRequestBytes) throw_invalid("a CTR_DRBG request is limited to 2^16 bytes (2^19 bits)");
  if (!use_df_ && additional_length > seed_length()) throw_invalid("additional input longer than seedlen");
  // §10.2.1.5 step 1.
  if (reseed_counter_ > reseed_interval_) return GenerateResult::ReseedRequired;

  const size_t seed_length = this->seed_length();
  const size_t update_blocks = blocks_for(seed_length);
  uint8_t adin[3 * kBlock] = {};
  ScopedCleanse wipe_adin(adin, sizeof adin);
  uint8_t tail[kBlock + 3 * kBlock];
  ScopedCleanse wipe_tail(tail, sizeof tail);
  const uint8_t* provided = nullptr;  // Null additional input: Update uses 0^seedlen
  try {
    // Step 2. An empty additional input is the spec's Null: no Update here.
    if (additional_length > 0) {
      if (use_df_) {
        derive(additional, additional_length, nullptr, 0, nullptr, 0, adin);
      } else {
        std::memcpy(adin, additional, additional_length);
      }
      update(adin);
      provided = adin;
    }
    // Steps 3-5: the full output blocks are encrypted in place in one EVP call.
    const size_t full_blocks = length / kBlock;
    const size_t remainder = length % kBlock;
    next_counter_blocks(out, full_blocks);
    if (full_blocks > 0) ecb(ctx_, out, out, full_blocks * kBlock);
    // A partial last block and step 6's Update blocks continue the same counter sequence under
    // the same Key, so they share a second EVP call.
    const size_t update_offset = remainder > 0 ? kBlock : 0;
    const size_t tail_blocks = update_offset / kBlock + update_blocks;
    next_counter_blocks(tail, tail_blocks);
    ecb(ctx_, tail, tail, tail_blocks * kBlock);
    if (remainder > 0) std::memcpy(out + full_blocks * kBlock, tail, remainder);
    // Step 6: Update(additional_input, Key, V).
    update_from_keystream(tail + update_offset, provided);
  } catch (...) {
    OPENSSL_cleanse(out, length);
    uninstantiate();
    throw;
  }
  // Step 7.
  ++reseed_counter_;
  return GenerateResult::Ok;
}

void CtrDrbg::uninstantiate() {
  OPENSSL_cleanse(key_, sizeof key_);
  OPENSSL_cleanse(v_, sizeof v_);
  reseed_counter_ = 0;
  instantiated_ = false;
  // Overwrite the key schedule held in the context with that of the all-zero key. A failure
  // here cannot leak anything new; drop OpenSSL's error so it does not surface elsewhere.
  if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, key_, nullptr) != 1) ERR_clear_error();
}

}  // namespace hsmkit::drbg
