#include <string>
#include <utility>

#include "binding/addon.h"
#include "keys.h"
#include "keywrap.h"
#include "secure_memory.h"

namespace hsmkit::binding {
namespace {

std::pair<uint8_t*, size_t> out_for(const Napi::CallbackInfo& info, size_t index, size_t need) {
  auto [out, out_len] = output_buffer_arg(info, index, "out");
  if (out_len < need) {
    throw_invalid("output buffer holds " + std::to_string(out_len) + " bytes but " + std::to_string(need) +
                  " are needed");
  }
  return {out, out_len};
}

// keyWrap(kek, padded, data, out) -> bytes written
Napi::Value key_wrap(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    Bytes data = buffer_arg(info, 2, "data");
    auto out = out_for(info, 3, key_wrap_output_size(padded, data.size));
    size_t written = kek.material().key_wrap(padded, true).wrap(data.data, data.size, out.first);
    return Napi::Number::New(info.Env(), static_cast<double>(written));
  });
}

// keyWrapKey(kek, padded, key, out) -> bytes written; the key's bytes never reach JavaScript.
Napi::Value key_wrap_key(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    KeyMaterial& key = key_arg(info, 2, "key").material();
    auto out = out_for(info, 3, key_wrap_output_size(padded, key.size()));
    size_t written = kek.material().key_wrap(padded, true).wrap(key.data(), key.size(), out.first);
    return Napi::Number::New(info.Env(), static_cast<double>(written));
  });
}

// keyUnwrap(kek, padded, wrapped, out) -> bytes recovered; ERR_NATIVE_UNWRAP on an integrity
// failure, with out cleansed. out must hold wrapped.length - 8 bytes.
Napi::Value key_unwrap(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    Bytes wrapped = buffer_arg(info, 2, "wrapped");
    auto out = out_for(info, 3, key_unwrap_max_output_size(padded, wrapped.size));
    size_t recovered = kek.material().key_wrap(padded, false).unwrap(wrapped.data, wrapped.size, out.first);
    return Napi::Number::New(info.Env(), static_cast<double>(recovered));
  });
}

// keyUnwrapKey(kek, padded, wrapped) -> key handle; the bytes stay in native memory, unwrapped
// into secure scratch and trimmed to the recovered length. ERR_NATIVE_INVALID_ARGUMENT for a
// wrapped key longer than a slot holds (kMaxKeyBytes, as importKey and generateKey enforce).
Napi::Value key_unwrap_key(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    Bytes wrapped = buffer_arg(info, 2, "wrapped");
    size_t maximum = key_unwrap_max_output_size(padded, wrapped.size);
    // Exact for both modes, before any unwrapping: KW recovers wrapped.length - 8 bytes and KWP
    // at most 7 fewer, so with kMaxKeyBytes a multiple of 8 a larger bound means a larger key.
    static_assert(kMaxKeyBytes % 8 == 0, "the wrapped-length bound below relies on whole semiblocks");
    if (maximum > kMaxKeyBytes) {
      throw_invalid("a wrapped key of " + std::to_string(wrapped.size) + " bytes unwraps to more than the " +
                    std::to_string(kMaxKeyBytes) + " bytes a key slot holds");
    }
    SecureBytes scratch(maximum);
    size_t recovered = kek.material().key_wrap(padded, false).unwrap(wrapped.data, wrapped.size, scratch.data());
    return new_key_handle(info.Env(), KeySlot(SecureBytes(scratch.data(), recovered)));
  });
}

}  // namespace

void init_keywrap(Napi::Env env, Napi::Object exports) {
  exports.Set("keyWrap", Napi::Function::New(env, key_wrap, "keyWrap"));
  exports.Set("keyUnwrap", Napi::Function::New(env, key_unwrap, "keyUnwrap"));
  exports.Set("keyWrapKey", Napi::Function::New(env, key_wrap_key, "keyWrapKey"));
  exports.Set("keyUnwrapKey", Napi::Function::New(env, key_unwrap_key, "keyUnwrapKey"));
}

}  // namespace hsmkit::binding
