#include <vector>

#include "binding/addon.h"
#include "keys.h"
#include "keywrap.h"
#include "secure_memory.h"

namespace hsmkit::binding {
namespace {

Napi::Value wrap_bytes(Napi::Env env, KeyWrapContext& context, bool padded, const uint8_t* in, size_t in_len) {
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, key_wrap_output_size(padded, in_len));
  context.wrap(in, in_len, out.Data());
  return out;
}

// keyWrap(kek, padded, data) -> wrapped Buffer
Napi::Value key_wrap(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    Bytes data = buffer_arg(info, 2, "data");
    return wrap_bytes(info.Env(), kek.material().key_wrap(padded, true), padded, data.data, data.size);
  });
}

// keyWrapKey(kek, padded, key) -> wrapped Buffer; the key's bytes never reach JavaScript.
Napi::Value key_wrap_key(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    KeyMaterial& key = key_arg(info, 2, "key").material();
    return wrap_bytes(info.Env(), kek.material().key_wrap(padded, true), padded, key.data(), key.size());
  });
}

// Unwraps into secure memory, trimmed to the recovered length.
SecureBytes unwrap_secure(KeySlot& kek, bool padded, Bytes wrapped) {
  SecureBytes scratch(key_unwrap_max_output_size(padded, wrapped.size));
  size_t recovered = kek.material().key_wrap(padded, false).unwrap(wrapped.data, wrapped.size, scratch.data());
  return SecureBytes(scratch.data(), recovered);
}

// keyUnwrap(kek, padded, wrapped) -> Buffer; ERR_NATIVE_UNWRAP on an integrity failure.
Napi::Value key_unwrap(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    Bytes wrapped = buffer_arg(info, 2, "wrapped");
    SecureBytes recovered = unwrap_secure(kek, padded, wrapped);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), recovered.data(), recovered.size());
  });
}

// keyUnwrapKey(kek, padded, wrapped) -> key handle; the bytes stay in native memory.
Napi::Value key_unwrap_key(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& kek = key_arg(info, 0, "kek");
    bool padded = bool_arg(info, 1, "padded");
    Bytes wrapped = buffer_arg(info, 2, "wrapped");
    SecureBytes recovered = unwrap_secure(kek, padded, wrapped);
    return new_key_handle(info.Env(), KeySlot(std::move(recovered)));
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
