// Key slots: key bytes in secure memory plus the cipher contexts prepared for them, so a
// call never redoes the key schedule. JavaScript holds a KeySlot through an opaque handle.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "aead.h"
#include "block_modes.h"
#include "keywrap.h"
#include "mac.h"
#include "secure_memory.h"

namespace hsmkit {

// Largest key a slot takes: generic secrets for HMAC may exceed AES's 32 bytes.
constexpr size_t kMaxKeyBytes = 8192;

class KeyMaterial {
 public:
  explicit KeyMaterial(SecureBytes bytes);
  KeyMaterial(const KeyMaterial&) = delete;
  KeyMaterial& operator=(const KeyMaterial&) = delete;

  const uint8_t* data() const noexcept { return bytes_.data(); }
  size_t size() const noexcept { return bytes_.size(); }

  // Prepared contexts, made on first use. Only the JavaScript thread that owns the slot
  // calls these (synchronous operations); asynchronous work builds contexts of its own.
  GcmContext& gcm(bool encrypt);
  KeyWrapContext& key_wrap(bool padded, bool wrap);
  // AES-ECB/CBC/CTR (CTR has one context for both directions); multi-part operations copy it.
  AesModeContext& aes_mode(AesChaining chaining, bool encrypt);
  // The key as an HMAC key under `hash`; multi-part operations copy it.
  HmacContext& hmac(HmacHash hash);

 private:
  SecureBytes bytes_;
  std::array<std::unique_ptr<GcmContext>, 2> gcm_;
  std::array<std::unique_ptr<KeyWrapContext>, 4> key_wrap_;
  std::array<std::unique_ptr<AesModeContext>, 6> aes_mode_;
  std::array<std::unique_ptr<HmacContext>, 5> hmac_;
};

class KeySlot {
 public:
  explicit KeySlot(SecureBytes bytes);
  // Copies `size` bytes in. Throws InvalidArgument for an empty or oversized key.
  static KeySlot import(const uint8_t* bytes, size_t size);
  // Fills a new slot from the process DRBG.
  static KeySlot generate(size_t size);

  bool destroyed() const noexcept { return material_ == nullptr; }
  size_t size() const noexcept { return size_; }
  // The key for an operation; throws ErrorCode::KeyDestroyed after destroy(). In-flight
  // asynchronous work holds its own reference, so destroying never pulls bytes from under it.
  KeyMaterial& material() const;
  std::shared_ptr<KeyMaterial> share() const;
  // Drops this slot's reference; the bytes are cleansed once no operation holds them.
  void destroy() noexcept { material_.reset(); }

 private:
  std::shared_ptr<KeyMaterial> material_;
  size_t size_;
};

}  // namespace hsmkit
