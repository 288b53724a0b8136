#include "block_modes.h"

#include <openssl/crypto.h>

#include <cstring>
#include <string>

#include "aead.h"
#include "error.h"

namespace hsmkit {
namespace {

// EVP update lengths are ints; feed larger inputs in chunks a multiple of the block size.
constexpr size_t kUpdateChunk = size_t{1} << 30;

const EVP_CIPHER* fetch_once(const char* name) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  if (cipher == nullptr) throw_openssl(name);
  return cipher;  // process lifetime: fetched once, shared by every context
}

const EVP_CIPHER* ecb_cipher(size_t key_len) {
  static const EVP_CIPHER* aes128 = fetch_once("AES-128-ECB");
  static const EVP_CIPHER* aes192 = fetch_once("AES-192-ECB");
  static const EVP_CIPHER* aes256 = fetch_once("AES-256-ECB");
  return key_len == 16 ? aes128 : key_len == 24 ? aes192 : aes256;
}

const EVP_CIPHER* cbc_cipher(size_t key_len) {
  static const EVP_CIPHER* aes128 = fetch_once("AES-128-CBC");
  static const EVP_CIPHER* aes192 = fetch_once("AES-192-CBC");
  static const EVP_CIPHER* aes256 = fetch_once("AES-256-CBC");
  return key_len == 16 ? aes128 : key_len == 24 ? aes192 : aes256;
}

const EVP_CIPHER* ctr_cipher(size_t key_len) {
  static const EVP_CIPHER* aes128 = fetch_once("AES-128-CTR");
  static const EVP_CIPHER* aes192 = fetch_once("AES-192-CTR");
  static const EVP_CIPHER* aes256 = fetch_once("AES-256-CTR");
  return key_len == 16 ? aes128 : key_len == 24 ? aes192 : aes256;
}

const EVP_CIPHER* aes_cipher(AesChaining chaining, size_t key_len) {
  switch (chaining) {
    case AesChaining::Ecb: return ecb_cipher(key_len);
    case AesChaining::Cbc: return cbc_cipher(key_len);
    case AesChaining::Ctr: return ctr_cipher(key_len);
  }
  throw_invalid("unknown AES chaining");
}

std::string bytes_text(size_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// All-ones when a < b, else zero; a and b below 2^31. No branch on the values.
uint32_t mask_lt(uint32_t a, uint32_t b) { return 0u - ((a - b) >> 31); }
// All-ones when a == b, else zero; a and b below 2^31.
uint32_t mask_eq(uint32_t a, uint32_t b) {
  uint32_t x = a ^ b;
  return 0u - (((x - 1) & ~x) >> 31);
}

// The PKCS#7 pad length (1..16) that ends `block`, or 0 when the block does not end in valid
// padding. Every byte is examined whatever the pad value, so the time taken does not depend on
// where the padding goes wrong.
size_t pkcs7_pad_length(const uint8_t* block) {
  uint32_t pad = block[kAesBlockSize - 1];
  uint32_t good = ~mask_lt(pad, 1) & mask_lt(pad, kAesBlockSize + 1);
  for (uint32_t i = 0; i < kAesBlockSize; i++) {
    uint32_t in_pad = mask_lt(i, pad);
    good &= ~in_pad | mask_eq(block[kAesBlockSize - 1 - i], pad);
  }
  return pad & good;
}

void pkcs7_pad(uint8_t* block, size_t used) {
  uint8_t pad = static_cast<uint8_t>(kAesBlockSize - used);
  std::memset(block + used, pad, pad);
}

[[noreturn]] void throw_bad_padding() {
  throw Error(ErrorCode::BadPadding, "AES-CBC-PAD decryption failed: invalid padding");
}

// Refuses, before anything is processed, CTR input that would take the counter past its bits.
void check_ctr_budget(uint64_t budget, uint64_t done_bytes, size_t more, uint32_t counter_bits) {
  if (more == 0) return;
  uint64_t total = done_bytes + more;
  bool overflow = total < done_bytes;
  uint64_t blocks = total / kAesBlockSize + (total % kAesBlockSize != 0 ? 1 : 0);
  if (overflow || blocks > budget) {
    throw Error(ErrorCode::CounterOverflow,
                "AES-CTR: " + bytes_text(more) + " more would take the " + std::to_string(counter_bits) +
                    "-bit counter past its last value (" + std::to_string(budget) +
                    " blocks in all from this counter block)");
  }
}

}  // namespace

BlockMode block_mode_from(uint32_t value) {
  if (value > static_cast<uint32_t>(BlockMode::Ctr)) throw_invalid("unknown AES mode " + std::to_string(value));
  return static_cast<BlockMode>(value);
}

AesChaining chaining_of(BlockMode mode) noexcept {
  switch (mode) {
    case BlockMode::Ecb: return AesChaining::Ecb;
    case BlockMode::Cbc:
    case BlockMode::CbcPad: return AesChaining::Cbc;
    case BlockMode::Ctr: return AesChaining::Ctr;
  }
  return AesChaining::Ecb;
}

const char* block_mode_name(BlockMode mode) noexcept {
  switch (mode) {
    case BlockMode::Ecb: return "AES-ECB";
    case BlockMode::Cbc: return "AES-CBC";
    case BlockMode::CbcPad: return "AES-CBC-PAD";
    case BlockMode::Ctr: return "AES-CTR";
  }
  return "AES";
}

void check_block_mode_params(BlockMode mode, const BlockModeParams& params) {
  const char* name = block_mode_name(mode);
  if (mode == BlockMode::Ecb) {
    if (params.iv_len != 0) throw_invalid("AES-ECB takes no IV");
    return;
  }
  const char* what = mode == BlockMode::Ctr ? "counter block" : "IV";
  if (params.iv == nullptr || params.iv_len != kAesBlockSize) {
    throw_invalid(std::string(name) + " " + what + " must be 16 bytes, not " + std::to_string(params.iv_len));
  }
  if (mode == BlockMode::Ctr && (params.counter_bits < 1 || params.counter_bits > kCtrMaxCounterBits)) {
    throw_invalid("AES-CTR counter bits must be 1..128, not " + std::to_string(params.counter_bits));
  }
}

size_t block_mode_output_size(BlockMode mode, bool encrypt, size_t in_len) {
  const char* name = block_mode_name(mode);
  switch (mode) {
    case BlockMode::Ecb:
    case BlockMode::Cbc:
      if (in_len % kAesBlockSize != 0) {
        throw_invalid(std::string(name) + (encrypt ? " plaintext" : " ciphertext") +
                      " must be a whole number of 16-byte blocks; got " + bytes_text(in_len) +
                      (encrypt ? " (CBC-PAD pads other lengths)" : ""));
      }
      return in_len;
    case BlockMode::CbcPad:
      if (encrypt) {
        if (in_len > SIZE_MAX - kAesBlockSize) throw_invalid("AES-CBC-PAD plaintext too long");
        return in_len / kAesBlockSize * kAesBlockSize + kAesBlockSize;
      }
      if (in_len == 0 || in_len % kAesBlockSize != 0) {
        throw_invalid("AES-CBC-PAD ciphertext must be a positive whole number of 16-byte blocks; got " +
                      bytes_text(in_len));
      }
      return in_len - 1;
    case BlockMode::Ctr: return in_len;
  }
  throw_invalid("unknown AES mode");
}

uint64_t ctr_block_budget(const uint8_t* cb, uint32_t counter_bits) {
  // 2^bits - c = (2^bits - 1 - c) + 1, and 2^bits - 1 - c is the counter bits of cb inverted.
  uint8_t rest[kAesBlockSize];
  for (size_t i = 0; i < kAesBlockSize; i++) {
    size_t low_bit = 8 * (kAesBlockSize - 1 - i);  // bit number of this byte's lowest bit
    size_t bits = counter_bits <= low_bit ? 0 : counter_bits - low_bit;
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>((1u << bits) - 1);
    rest[i] = static_cast<uint8_t>(~cb[i] & mask);
  }
  uint64_t high = 0;
  uint64_t low = 0;
  for (size_t i = 0; i < 8; i++) high = high << 8 | rest[i];
  for (size_t i = 8; i < kAesBlockSize; i++) low = low << 8 | rest[i];
  if (high != 0 || low == UINT64_MAX) return UINT64_MAX;
  return low + 1;
}

AesModeContext::AesModeContext(const uint8_t* key, size_t key_len, AesChaining chaining, bool encrypt)
    : ctx_(nullptr), chaining_(chaining), encrypt_(chaining == AesChaining::Ctr || encrypt) {
  check_aes_key_length(key_len);
  const EVP_CIPHER* cipher = aes_cipher(chaining, key_len);
  ctx_ = EVP_CIPHER_CTX_new();
  if (ctx_ == nullptr) throw Error(ErrorCode::OutOfMemory, "EVP_CIPHER_CTX_new failed");
  if (EVP_CipherInit_ex(ctx_, cipher, nullptr, key, nullptr, encrypt_ ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_set_padding(ctx_, 0) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw_openssl("AES key setup");
  }
}

AesModeContext::AesModeContext(const AesModeContext& other)
    : ctx_(EVP_CIPHER_CTX_new()), chaining_(other.chaining_), encrypt_(other.encrypt_) {
  if (ctx_ == nullptr) throw Error(ErrorCode::OutOfMemory, "EVP_CIPHER_CTX_new failed");
  if (EVP_CIPHER_CTX_copy(ctx_, other.ctx_) != 1) {
    EVP_CIPHER_CTX_free(ctx_);
    throw_openssl("EVP_CIPHER_CTX_copy");
  }
}

// EVP_CIPHER_CTX_free cleanses the key schedule.
AesModeContext::~AesModeContext() { EVP_CIPHER_CTX_free(ctx_); }

void AesModeContext::start(const uint8_t* iv) {
  if (chaining_ == AesChaining::Ecb) return;  // no state between calls: only whole blocks go in
  if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, iv, -1) != 1) throw_openssl("AES set IV");
}

void AesModeContext::process(const uint8_t* in, size_t len, uint8_t* out) {
  if (chaining_ != AesChaining::Ctr && len % kAesBlockSize != 0) {
    throw_invalid("AES-ECB/CBC context given a partial block");  // callers buffer; never reached
  }
  while (len > 0) {
    size_t chunk = len < kUpdateChunk ? len : kUpdateChunk;
    int written = 0;
    if (EVP_CipherUpdate(ctx_, out, &written, in, static_cast<int>(chunk)) != 1 ||
        static_cast<size_t>(written) != chunk) {
      throw_openssl("EVP_CipherUpdate");
    }
    in += chunk;
    out += chunk;
    len -= chunk;
  }
}

size_t block_mode_crypt(AesModeContext& cipher, BlockMode mode, const BlockModeParams& params, const uint8_t* in,
                        size_t in_len, uint8_t* out) {
  check_block_mode_params(mode, params);
  if (cipher.chaining() != chaining_of(mode)) throw_invalid("AES context does not match the mode");
  bool encrypt = cipher.encrypt();
  block_mode_output_size(mode, encrypt, in_len);  // refuses lengths the mode cannot take
  if (mode == BlockMode::Ctr) check_ctr_budget(ctr_block_budget(params.iv, params.counter_bits), 0, in_len,
                                               params.counter_bits);
  cipher.start(params.iv);
  if (mode != BlockMode::CbcPad) {
    cipher.process(in, in_len, out);
    return in_len;
  }
  uint8_t last[kAesBlockSize];
  if (encrypt) {
    size_t whole = in_len / kAesBlockSize * kAesBlockSize;
    size_t tail = in_len - whole;
    if (tail > 0) std::memcpy(last, in + whole, tail);  // read before out (which may be in) is written
    pkcs7_pad(last, tail);
    cipher.process(in, whole, out);
    cipher.process(last, kAesBlockSize, out + whole);
    OPENSSL_cleanse(last, sizeof last);
    return whole + kAesBlockSize;
  }
  size_t body = in_len - kAesBlockSize;
  cipher.process(in, body, out);  // writes [0, body) only, so the last input block is still intact
  cipher.process(in + body, kAesBlockSize, last);
  size_t pad = pkcs7_pad_length(last);
  if (pad == 0) {
    OPENSSL_cleanse(last, sizeof last);
    OPENSSL_cleanse(out, body);
    throw_bad_padding();
  }
  std::memcpy(out + body, last, kAesBlockSize - pad);
  OPENSSL_cleanse(last, sizeof last);
  return body + kAesBlockSize - pad;
}

BlockModeStream::BlockModeStream(const AesModeContext& prepared, BlockMode mode, const BlockModeParams& params)
    : mode_(mode), encrypt_(prepared.encrypt()) {
  check_block_mode_params(mode, params);
  if (prepared.chaining() != chaining_of(mode)) throw_invalid("AES context does not match the mode");
  cipher_ = std::make_unique<AesModeContext>(prepared);
  cipher_->start(params.iv);
  if (mode == BlockMode::Ctr) ctr_budget_ = ctr_block_budget(params.iv, params.counter_bits);
  counter_bits_ = params.counter_bits;
}

BlockModeStream::~BlockModeStream() { abort(); }

void BlockModeStream::check_open() const {
  if (cipher_ == nullptr) {
    throw_invalid(std::string("the ") + block_mode_name(mode_) +
                  " operation has ended (by final, abort or an earlier error)");
  }
}

size_t BlockModeStream::update_size(size_t in_len) const {
  check_open();
  if (mode_ == BlockMode::Ctr) return in_len;
  size_t total = pending_len_ + in_len;
  if (mode_ == BlockMode::CbcPad && !encrypt_) {
    // Hold back the last whole block: only final() knows it is the padded one.
    return total == 0 ? 0 : (total - 1) / kAesBlockSize * kAesBlockSize;
  }
  return total / kAesBlockSize * kAesBlockSize;
}

size_t BlockModeStream::final_size() const {
  check_open();
  if (mode_ != BlockMode::CbcPad) return 0;
  return encrypt_ ? kAesBlockSize : kAesBlockSize - 1;
}

size_t BlockModeStream::update(const uint8_t* in, size_t in_len, uint8_t* out) {
  size_t emit = update_size(in_len);
  try {
    if (mode_ == BlockMode::Ctr) {
      check_ctr_budget(ctr_budget_, bytes_in_, in_len, counter_bits_);
      cipher_->process(in, in_len, out);
      bytes_in_ += in_len;
      return in_len;
    }
    bytes_in_ += in_len;
    size_t written = 0;
    if (emit > 0 && pending_len_ > 0) {
      // emit > 0 means pending and input hold more than a block, so the input completes it.
      size_t fill = kAesBlockSize - pending_len_;
      if (fill > 0) std::memcpy(pending_ + pending_len_, in, fill);
      cipher_->process(pending_, kAesBlockSize, out);
      in += fill;
      in_len -= fill;
      written = kAesBlockSize;
      pending_len_ = 0;
    }
    size_t direct = emit - written;
    cipher_->process(in, direct, out + written);
    in += direct;
    in_len -= direct;
    if (in_len > 0) std::memcpy(pending_ + pending_len_, in, in_len);
    pending_len_ += in_len;
    return emit;
  } catch (...) {
    abort();
    throw;
  }
}

size_t BlockModeStream::finish(uint8_t* out) {
  check_open();
  size_t written = 0;
  try {
    switch (mode_) {
      case BlockMode::Ecb:
      case BlockMode::Cbc:
        if (pending_len_ != 0) {
          throw_invalid(std::string(block_mode_name(mode_)) + (encrypt_ ? " plaintext" : " ciphertext") +
                        " must be a whole number of 16-byte blocks; got " + std::to_string(bytes_in_) + " bytes");
        }
        break;
      case BlockMode::Ctr: break;
      case BlockMode::CbcPad:
        if (encrypt_) {
          pkcs7_pad(pending_, pending_len_);
          cipher_->process(pending_, kAesBlockSize, out);
          written = kAesBlockSize;
        } else {
          if (pending_len_ != kAesBlockSize) {
            throw_invalid("AES-CBC-PAD ciphertext must be a positive whole number of 16-byte blocks; got " +
                          std::to_string(bytes_in_) + " bytes");
          }
          uint8_t last[kAesBlockSize];
          cipher_->process(pending_, kAesBlockSize, last);
          size_t pad = pkcs7_pad_length(last);
          if (pad == 0) {
            OPENSSL_cleanse(last, sizeof last);
            throw_bad_padding();
          }
          written = kAesBlockSize - pad;
          std::memcpy(out, last, written);
          OPENSSL_cleanse(last, sizeof last);
        }
        break;
    }
  } catch (...) {
    abort();
    throw;
  }
  abort();
  return written;
}

void BlockModeStream::abort() noexcept {
  OPENSSL_cleanse(pending_, sizeof pending_);
  pending_len_ = 0;
  cipher_.reset();
}

}  // namespace hsmkit
