#include "keys.h"

#include <string>
#include <utility>

#include "error.h"
#include "random.h"

namespace hsmkit {
namespace {

void check_key_size(size_t size) {
  if (size == 0 || size > kMaxKeyBytes) {
    throw_invalid("key length must be 1.." + std::to_string(kMaxKeyBytes) + " bytes, not " + std::to_string(size));
  }
}

}  // namespace

KeyMaterial::KeyMaterial(SecureBytes bytes) : bytes_(std::move(bytes)) {}

GcmContext& KeyMaterial::gcm(bool encrypt) {
  auto& slot = gcm_[encrypt ? 1 : 0];
  if (!slot) slot = std::make_unique<GcmContext>(bytes_.data(), bytes_.size(), encrypt);
  return *slot;
}

KeyWrapContext& KeyMaterial::key_wrap(bool padded, bool wrap) {
  auto& slot = key_wrap_[(padded ? 2 : 0) + (wrap ? 1 : 0)];
  if (!slot) slot = std::make_unique<KeyWrapContext>(bytes_.data(), bytes_.size(), padded, wrap);
  return *slot;
}

AesModeContext& KeyMaterial::aes_mode(AesChaining chaining, bool encrypt) {
  bool direction = chaining == AesChaining::Ctr || encrypt;
  auto& slot = aes_mode_[static_cast<size_t>(chaining) * 2 + (direction ? 1 : 0)];
  if (!slot) slot = std::make_unique<AesModeContext>(bytes_.data(), bytes_.size(), chaining, direction);
  return *slot;
}

HmacContext& KeyMaterial::hmac(HmacHash hash) {
  auto& slot = hmac_[static_cast<size_t>(hash)];
  if (!slot) slot = std::make_unique<HmacContext>(bytes_.data(), bytes_.size(), hash);
  return *slot;
}

KeySlot::KeySlot(SecureBytes bytes) : size_(bytes.size()) {
  material_ = std::make_shared<KeyMaterial>(std::move(bytes));
}

KeySlot KeySlot::import(const uint8_t* bytes, size_t size) {
  check_key_size(size);
  return KeySlot(SecureBytes(bytes, size));
}

KeySlot KeySlot::generate(size_t size) {
  check_key_size(size);
  SecureBytes bytes(size);
  random::generate(bytes.data(), size);
  return KeySlot(std::move(bytes));
}

KeyMaterial& KeySlot::material() const {
  if (!material_) throw Error(ErrorCode::KeyDestroyed, "the key slot was destroyed");
  return *material_;
}

std::shared_ptr<KeyMaterial> KeySlot::share() const {
  if (!material_) throw Error(ErrorCode::KeyDestroyed, "the key slot was destroyed");
  return material_;
}

}  // namespace hsmkit
