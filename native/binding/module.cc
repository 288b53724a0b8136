#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "binding/addon.h"

namespace hsmkit::binding {

Napi::Error make_error(Napi::Env env, ErrorCode code, const char* message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, error_code_name(code)));
  return error;
}

void check_receiver(const Napi::CallbackInfo& info, const napi_type_tag& tag, const char* what) {
  bool tagged = false;
  if (napi_check_object_type_tag(info.Env(), info.This(), &tag, &tagged) != napi_ok || !tagged) {
    throw_invalid(std::string("not ") + what);
  }
}

bool overlap(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len) {
  auto a0 = reinterpret_cast<uintptr_t>(a);
  auto b0 = reinterpret_cast<uintptr_t>(b);
  return a_len > 0 && b_len > 0 && a0 < b0 + b_len && b0 < a0 + a_len;
}

// Argument readers use napi_get_typedarray_info and friends directly: one N-API call per
// argument instead of node-addon-api's three (is-typed-array, type, data), which is a
// measurable share of a 64-byte seal.
Bytes buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_status status = napi_get_typedarray_info(info.Env(), info[index], &type, &length, &data, nullptr, nullptr);
  if (status != napi_ok || type != napi_uint8_array) {
    throw_invalid(std::string(name) + " must be a Buffer or Uint8Array");
  }
  return Bytes{static_cast<const uint8_t*>(data), length};
}

Bytes optional_buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (value.IsUndefined() || value.IsNull()) return Bytes{nullptr, 0};
  return buffer_arg(info, index, name);
}

std::pair<uint8_t*, size_t> output_buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Bytes bytes = buffer_arg(info, index, name);
  return {const_cast<uint8_t*>(bytes.data), bytes.size};
}

uint32_t uint32_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  double number = 0;
  if (napi_get_value_double(info.Env(), info[index], &number) != napi_ok) {
    throw_invalid(std::string(name) + " must be a number");
  }
  if (!(number >= 0 && number <= 4294967295.0) || number != static_cast<double>(static_cast<uint32_t>(number))) {
    throw_invalid(std::string(name) + " must be an integer from 0 to 2^32-1");
  }
  return static_cast<uint32_t>(number);
}

bool bool_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsBoolean()) throw_invalid(std::string(name) + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

std::pair<const uint32_t*, size_t> uint32_array_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw_invalid(std::string(name) + " must be a Uint32Array");
  }
  Napi::Uint32Array array = value.As<Napi::Uint32Array>();
  return {array.Data(), array.ElementLength()};
}

namespace {

Napi::Value openssl_version(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("compiledAgainst", OPENSSL_VERSION_TEXT);
  result.Set("runtime", OpenSSL_version(OPENSSL_VERSION));
  return result;
}

// mallocArenaMax(n) -> whether the allocator took it. glibc gives each thread that allocates
// while another holds an arena a new arena, up to 8 per core, and memory freed in one stays
// there: with the event loop, the store's writer thread and V8's helpers that is tens of MB of
// resident memory holding nothing. Arenas made before the call stay.
Napi::Value malloc_arena_max(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    uint32_t count = uint32_arg(info, 0, "count");
    if (count < 1 || count > 64) throw_invalid("count must be 1..64");
#if defined(__GLIBC__)
    return Napi::Boolean::New(info.Env(), mallopt(M_ARENA_MAX, static_cast<int>(count)) == 1);
#else
    return Napi::Boolean::New(info.Env(), false);
#endif
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("opensslVersion", Napi::Function::New(env, openssl_version, "opensslVersion"));
  exports.Set("mallocArenaMax", Napi::Function::New(env, malloc_arena_max, "mallocArenaMax"));
  init_keys(env, exports);
  init_aead(env, exports);
  init_keywrap(env, exports);
  init_pkey(env, exports);
  init_random(env, exports);
  init_block_modes(env, exports);
  init_mac(env, exports);
  init_audit_chain(env, exports);
  return exports;
}

}  // namespace
}  // namespace hsmkit::binding

static Napi::Object InitHsmkit(Napi::Env env, Napi::Object exports) { return hsmkit::binding::init(env, exports); }

NODE_API_MODULE(hsmkit, InitHsmkit)
