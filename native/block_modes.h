// AES confidentiality modes of NIST SP 800-38A as PKCS#11 defines them: CKM_AES_ECB, CKM_AES_CBC,
// CKM_AES_CBC_PAD and CKM_AES_CTR, single-part and multi-part. AES itself and the ECB/CBC/CTR
// chaining come from OpenSSL's EVP ciphers (always with OpenSSL's padding off); what is written
// here is the PKCS#11 plumbing around them: the PKCS#7 padding of CBC-PAD, the partial-block
// buffering of multi-part operations, and CTR's counter-bits limit.
//
// Lengths (PKCS#11 Current Mechanisms, the AES and AES-with-Counter sections):
//   ECB, CBC   input a whole number of 16-byte blocks (0 allowed); output = input.
//   CBC-PAD    encrypt: any input; output = input rounded up to the next whole block (PKCS#7,
//              1..16 pad bytes of value n). decrypt: input a positive whole number of blocks;
//              output = input minus the pad, at most input - 1.
//   CTR        any input; output = input.
// A length a mode cannot take is ErrorCode::InvalidArgument; a CBC-PAD decryption whose last
// block does not end in valid padding is ErrorCode::BadPadding.
//
// CTR (CK_AES_CTR_PARAMS): a 16-byte counter block cb and counter_bits 1..128. The counter is
// the low counter_bits bits of cb, big-endian; the rest of cb is never changed. PKCS#11 ("AES
// with Counter Encryption / Decryption"): an operation that would overflow the counter bits
// fails (CKR_DATA_LEN_RANGE); the final post-increment may overflow but no further block may
// be processed. So from counter value c at most 2^counter_bits - c blocks are processed (e.g.
// 2 counter bits starting at 1: 3 blocks), and asking for more is ErrorCode::CounterOverflow,
// refused before any output is written. Because of that limit, OpenSSL's 128-bit increment
// never carries into the fixed bits of cb.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace hsmkit {

constexpr size_t kAesBlockSize = 16;
constexpr uint32_t kCtrMaxCounterBits = 128;

// The PKCS#11 mechanisms; the numbers are the binding's encoding of them.
enum class BlockMode : uint32_t { Ecb = 0, Cbc = 1, CbcPad = 2, Ctr = 3 };
// The raw chaining an OpenSSL context performs; CBC-PAD is CBC plus our padding.
enum class AesChaining : uint32_t { Ecb = 0, Cbc = 1, Ctr = 2 };

// Throws InvalidArgument unless `value` names a BlockMode.
BlockMode block_mode_from(uint32_t value);
AesChaining chaining_of(BlockMode mode) noexcept;
const char* block_mode_name(BlockMode mode) noexcept;

struct BlockModeParams {
  const uint8_t* iv = nullptr;   // CBC, CBC-PAD: the IV; CTR: the initial counter block; ECB: none
  size_t iv_len = 0;             // 16, or 0 for ECB
  uint32_t counter_bits = 128;   // CTR only: 1..128
};

// Throws InvalidArgument for an IV that is not 16 bytes (or any IV for ECB) and, for CTR,
// counter bits outside 1..128.
void check_block_mode_params(BlockMode mode, const BlockModeParams& params);

// Exact output length of a single-part operation on in_len bytes, except CBC-PAD decryption,
// where it is the upper bound in_len - 1. Throws InvalidArgument for a length the mode cannot
// take (not whole blocks for ECB/CBC and for CBC-PAD decryption; empty for CBC-PAD decryption).
size_t block_mode_output_size(BlockMode mode, bool encrypt, size_t in_len);

// How many blocks CTR may process from counter block cb: 2^counter_bits minus the counter's
// value, saturated at UINT64_MAX (more than any input can use).
uint64_t ctr_block_budget(const uint8_t* cb, uint32_t counter_bits);

// One AES chaining in one direction under one key; key schedule done once. start() sets the IV
// or counter block and drops any keystream position; process() runs whole blocks (ECB, CBC) or
// any length (CTR). CTR has one context for both directions. Not thread-safe.
class AesModeContext {
 public:
  AesModeContext(const uint8_t* key, size_t key_len, AesChaining chaining, bool encrypt);
  // A copy with its own key schedule (EVP_CIPHER_CTX_copy), for a multi-part operation.
  AesModeContext(const AesModeContext& other);
  ~AesModeContext();
  AesModeContext& operator=(const AesModeContext&) = delete;

  AesChaining chaining() const noexcept { return chaining_; }
  bool encrypt() const noexcept { return encrypt_; }

  void start(const uint8_t* iv);
  // out may be in (exactly) but must not otherwise overlap it.
  void process(const uint8_t* in, size_t len, uint8_t* out);

 private:
  EVP_CIPHER_CTX* ctx_;
  AesChaining chaining_;
  bool encrypt_;
};

// A single-part encryption or decryption (the direction is the context's) of in_len bytes into
// out, which holds at least block_mode_output_size(...) bytes and may be in itself. Returns the
// bytes written. On BadPadding the output is cleansed. `cipher` must be the chaining of `mode`.
size_t block_mode_crypt(AesModeContext& cipher, BlockMode mode, const BlockModeParams& params, const uint8_t* in,
                        size_t in_len, uint8_t* out);

// A multi-part operation (PKCS#11 C_EncryptUpdate/C_EncryptFinal and the decrypt pair). It owns
// a copy of the key slot's context, so it does not depend on the slot after construction.
// update_size() and final_size() tell the caller how large `out` must be beforehand. Any error
// from update() or finish() ends the operation, as PKCS#11 v2.40 §5.8 and §5.9 say of
// C_EncryptUpdate and C_DecryptUpdate; a too-small output buffer is the caller's check, made
// with the size functions before calling, and ends nothing. finish() ends it too. Ending
// cleanses the buffered bytes and frees the key schedule.
class BlockModeStream {
 public:
  BlockModeStream(const AesModeContext& prepared, BlockMode mode, const BlockModeParams& params);
  ~BlockModeStream();
  BlockModeStream(const BlockModeStream&) = delete;
  BlockModeStream& operator=(const BlockModeStream&) = delete;

  // Bytes update() writes for in_len more input: exact. Throws InvalidArgument once ended.
  size_t update_size(size_t in_len) const;
  // Bytes finish() needs: exact, except CBC-PAD decryption, whose 15 is an upper bound.
  size_t final_size() const;
  // Feeds in_len bytes; writes update_size(in_len) bytes. out must not overlap in.
  size_t update(const uint8_t* in, size_t in_len, uint8_t* out);
  // Ends the operation (C_EncryptFinal/C_DecryptFinal), writing the last bytes: CBC-PAD's pad
  // block, or the unpadded last block. Returns their count.
  size_t finish(uint8_t* out);
  // Ends the operation without output.
  void abort() noexcept;
  bool ended() const noexcept { return cipher_ == nullptr; }

 private:
  void check_open() const;

  std::unique_ptr<AesModeContext> cipher_;
  BlockMode mode_;
  bool encrypt_;
  uint8_t pending_[kAesBlockSize] = {};  // input not yet processed (CBC-PAD decryption: up to a whole block)
  size_t pending_len_ = 0;
  uint64_t bytes_in_ = 0;     // input taken so far
  uint64_t ctr_budget_ = 0;   // CTR: blocks allowed in total
  uint32_t counter_bits_ = 0;  // CTR: for messages
};

}  // namespace hsmkit
