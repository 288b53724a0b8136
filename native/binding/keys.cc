#include <optional>

#include "binding/addon.h"
#include "keys.h"
#include "secure_memory.h"

namespace hsmkit::binding {
namespace {

// Marks objects made by this addon, so a look-alike object is refused instead of unwrapped.
constexpr napi_type_tag kKeyTag = {0x6873'6d6b'6974'6b65ULL, 0x7973'6c6f'7431'0001ULL};

// The JavaScript face of a KeySlot. Made only from C++ (the constructor takes an External);
// the finalizer drops the slot, which cleanses the bytes once no operation holds them.
class NativeKey : public Napi::ObjectWrap<NativeKey> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeKey",
                       {
                           InstanceMethod<&NativeKey::destroy>("destroy"),
                           InstanceMethod<&NativeKey::export_bytes>("exportBytes"),
                           InstanceAccessor<&NativeKey::length>("length"),
                           InstanceAccessor<&NativeKey::destroyed>("destroyed"),
                       });
  }

  explicit NativeKey(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeKey>(info) {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw make_error(info.Env(), ErrorCode::InvalidArgument,
                       "NativeKey cannot be constructed directly; use importKey or generateKey");
    }
    KeySlot* pending = info[0].As<Napi::External<KeySlot>>().Data();
    slot_.emplace(std::move(*pending));
    info.This().As<Napi::Object>().TypeTag(&kKeyTag);
  }

  KeySlot& slot() { return *slot_; }

 private:
  // Every member, accessors included (check_receiver says why), before touching the slot.
  static void check_this(const Napi::CallbackInfo& info) {
    check_receiver(info, kKeyTag, "a key handle");
  }

  Napi::Value destroy(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      slot_->destroy();
      return info.Env().Undefined();
    });
  }

  Napi::Value export_bytes(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      KeyMaterial& material = slot_->material();
      return Napi::Buffer<uint8_t>::Copy(info.Env(), material.data(), material.size());
    });
  }

  Napi::Value length(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Number::New(info.Env(), static_cast<double>(slot_->size()));
    });
  }

  Napi::Value destroyed(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Boolean::New(info.Env(), slot_->destroyed());
    });
  }

  std::optional<KeySlot> slot_;
};

struct KeysData {
  Napi::FunctionReference constructor;
};

Napi::Value import_key(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Bytes bytes = buffer_arg(info, 0, "key");
    return new_key_handle(info.Env(), KeySlot::import(bytes.data, bytes.size));
  });
}

Napi::Value generate_key(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    uint32_t length = uint32_arg(info, 0, "length");
    return new_key_handle(info.Env(), KeySlot::generate(length));
  });
}

Napi::Value secure_memory_stats_binding(const Napi::CallbackInfo& info) {
  SecureMemoryStats stats = secure_memory_stats();
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("bytesInUse", static_cast<double>(stats.bytes_in_use));
  result.Set("bytesReserved", static_cast<double>(stats.bytes_reserved));
  result.Set("locked", stats.locked);
  return result;
}

}  // namespace

KeySlot& key_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  // One tag check (which also refuses non-objects) and one unwrap: this runs on every call.
  bool tagged = false;
  napi_status status = napi_check_object_type_tag(info.Env(), info[index], &kKeyTag, &tagged);
  if (status != napi_ok || !tagged) {
    // For null and undefined the check's ToObject has thrown a TypeError, which would stay
    // pending and reach the caller in place of our coded error: drop it first.
    if (status != napi_ok) {
      napi_value pending = nullptr;
      napi_get_and_clear_last_exception(info.Env(), &pending);
    }
    throw_invalid(std::string(name) + " must be a key handle from importKey, generateKey or keyUnwrapKey");
  }
  void* wrapped = nullptr;
  if (napi_unwrap(info.Env(), info[index], &wrapped) != napi_ok || wrapped == nullptr) {
    throw_invalid(std::string(name) + " is not a live key handle");
  }
  return static_cast<NativeKey*>(wrapped)->slot();
}

Napi::Object new_key_handle(Napi::Env env, KeySlot slot) {
  KeysData* data = env.GetInstanceData<KeysData>();
  return data->constructor.New({Napi::External<KeySlot>::New(env, &slot)});
}

void init_keys(Napi::Env env, Napi::Object exports) {
  auto* data = new KeysData();
  data->constructor = Napi::Persistent(NativeKey::define(env));
  env.SetInstanceData<KeysData>(data);
  exports.Set("importKey", Napi::Function::New(env, import_key, "importKey"));
  exports.Set("generateKey", Napi::Function::New(env, generate_key, "generateKey"));
  exports.Set("secureMemoryStats", Napi::Function::New(env, secure_memory_stats_binding, "secureMemoryStats"));
}

}  // namespace hsmkit::binding
