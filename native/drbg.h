// SP 800-90A Rev. 1 CTR_DRBG over AES (§10.2.1), with or without the derivation function
// (Block_Cipher_df, §10.3.2). The block cipher is AES-ECB through OpenSSL's EVP interface.
//
// This class is the mechanism only: Instantiate, Reseed and Generate algorithms (§10.2.1.3-5)
// on a working state (Key, V, reseed_counter). Where entropy comes from, when to reseed and
// prediction resistance (§9.3.1) are the caller's business: random.cc for the process-wide
// generator, the CAVP vector tests for the known-answer checks.
//
// Parameters (SP 800-90A Table 3, AES): blocklen = 128 bits, keylen = 128/192/256,
// seedlen = keylen + blocklen, ctr_len = blocklen (the whole of V is the counter),
// max_number_of_bits_per_request = 2^19 (64 KiB), reseed_interval <= 2^48.
//
// Not thread-safe: the owner serialises access.
#pragma once

#include <cstddef>
#include <cstdint>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace hsmkit::drbg {

enum class GenerateResult {
  Ok,
  // reseed_counter > reseed_interval: nothing was generated; reseed, then call again (§10.2.1.5).
  ReseedRequired,
};

class CtrDrbg {
 public:
  static constexpr size_t kBlockLength = 16;
  // max_number_of_bits_per_request = 2^19 bits (Table 3, CTR_DRBG with AES).
  static constexpr size_t kMaxRequestBytes = size_t{1} << 16;
  // Table 3: reseed_interval <= 2^48 requests.
  static constexpr uint64_t kMaxReseedInterval = uint64_t{1} << 48;
  // Table 3 with a derivation function: max_length / max_personalization_string_length /
  // max_additional_input_length = 2^35 bits. Block_Cipher_df also encodes the input length as a
  // 32-bit byte count, which is the same bound.
  static constexpr uint64_t kMaxInputBytes = uint64_t{1} << 32;

  // key_length: 16, 24 or 32 bytes (AES-128/192/256). use_df: whether the derivation function
  // is used. Throws InvalidArgument for any other key length, OpenSSL if AES cannot be fetched.
  CtrDrbg(size_t key_length, bool use_df);
  ~CtrDrbg();
  CtrDrbg(const CtrDrbg&) = delete;
  CtrDrbg& operator=(const CtrDrbg&) = delete;

  size_t key_length() const { return key_length_; }
  size_t seed_length() const { return key_length_ + kBlockLength; }
  bool uses_df() const { return use_df_; }
  // security_strength of the instantiation: keylen in bits (128, 192 or 256).
  size_t security_strength_bits() const { return key_length_ * 8; }
  bool instantiated() const { return instantiated_; }
  uint64_t reseed_counter() const { return reseed_counter_; }
  uint64_t reseed_interval() const { return reseed_interval_; }
  // 1 <= interval <= 2^48; InvalidArgument otherwise. Takes effect at the next Generate.
  void set_reseed_interval(uint64_t interval);

  // §10.2.1.3. With the df: entropy_input of at least security_strength bits (and at most 2^32
  // bytes together with nonce and personalization), nonce as the caller chose it. Without the
  // df: entropy_input of exactly seedlen bits, no nonce (it must be empty), a personalization
  // string of at most seedlen bits. Replaces any previous state. Throws InvalidArgument for
  // lengths outside these bounds.
  void instantiate(const uint8_t* entropy, size_t entropy_length, const uint8_t* nonce, size_t nonce_length,
                   const uint8_t* personalization, size_t personalization_length);

  // §10.2.1.4. Entropy bounds as for instantiate; additional input of at most seedlen bits
  // without the df. Throws Entropy when not instantiated.
  void reseed(const uint8_t* entropy, size_t entropy_length, const uint8_t* additional, size_t additional_length);

  // §10.2.1.5. Writes `length` (<= kMaxRequestBytes) pseudorandom bytes to `out`. Throws Entropy
  // when not instantiated, InvalidArgument for an oversized request or additional input.
  [[nodiscard]] GenerateResult generate(uint8_t* out, size_t length, const uint8_t* additional,
                                        size_t additional_length);

  // Zeroises Key and V (OPENSSL_cleanse) and forgets the instantiation (§9.4).
  void uninstantiate();

 private:
  // CTR_DRBG_Update's second half: temp (seedlen bytes of E(Key, V+i) output) XOR provided_data
  // becomes the new Key || V. provided_data may be null, meaning seedlen zero bytes.
  void update_from_keystream(uint8_t* temp, const uint8_t* provided_data);
  // CTR_DRBG_Update (§10.2.1.2).
  void update(const uint8_t* provided_data);
  // Block_Cipher_df (§10.3.2) over the concatenation of up to three inputs, returning seedlen
  // bytes in `out`.
  void derive(const uint8_t* a, size_t a_length, const uint8_t* b, size_t b_length, const uint8_t* c,
              size_t c_length, uint8_t* out);
  // Encrypts `length` bytes (a multiple of 16) with the context's current key.
  void ecb(EVP_CIPHER_CTX* ctx, const uint8_t* in, uint8_t* out, size_t length);
  void set_key(EVP_CIPHER_CTX* ctx, const uint8_t* key);
  void check_entropy_length(size_t entropy_length) const;
  // For each of `count` blocks: V = (V + 1) mod 2^128, then the block is V.
  void next_counter_blocks(uint8_t* blocks, size_t count);

  size_t key_length_;
  bool use_df_;
  bool instantiated_ = false;
  uint64_t reseed_counter_ = 0;
  uint64_t reseed_interval_ = kMaxReseedInterval;
  uint8_t key_[32] = {};
  uint8_t v_[kBlockLength] = {};
  EVP_CIPHER_CTX* ctx_ = nullptr;     // keyed with key_
  EVP_CIPHER_CTX* df_ctx_ = nullptr;  // Block_Cipher_df's own keys
};

}  // namespace hsmkit::drbg
