// Shared glue for the N-API binding files. Only files under native/binding/ include napi.h:
// the crypto files beside them are plain C++ over OpenSSL, so they can be fuzzed and
// sanitized without Node.
#pragma once

#include <napi.h>

#include <cstdint>
#include <utility>

#include "error.h"
#include "keys.h"

namespace hsmkit::binding {

// A JavaScript Error with a stable `code`, built here rather than parsed out of a string.
Napi::Error make_error(Napi::Env env, ErrorCode code, const char* message);

// Runs `body`, turning hsmkit::Error and std::bad_alloc into JavaScript errors with codes.
template <typename Body>
auto guarded(const Napi::CallbackInfo& info, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    throw make_error(info.Env(), e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw make_error(info.Env(), ErrorCode::OutOfMemory, "native allocation failed");
  }
}

// Argument readers: they throw ERR_NATIVE_INVALID_ARGUMENT naming the argument.
struct Bytes {
  const uint8_t* data;
  size_t size;
};
Bytes buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* name);
// A Buffer, or null/undefined meaning "no bytes".
Bytes optional_buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* name);
// Writable view of a Buffer argument (caller-provided output).
std::pair<uint8_t*, size_t> output_buffer_arg(const Napi::CallbackInfo& info, size_t index, const char* name);
uint32_t uint32_arg(const Napi::CallbackInfo& info, size_t index, const char* name);
bool bool_arg(const Napi::CallbackInfo& info, size_t index, const char* name);
// A Uint32Array argument.
std::pair<const uint32_t*, size_t> uint32_array_arg(const Napi::CallbackInfo& info, size_t index, const char* name);

// Whether [a, a + a_len) and [b, b + b_len) share a byte. OpenSSL works in place when out is in,
// but leaves partially overlapping buffers undefined (EVP_EncryptUpdate(3)); the bindings that
// take caller buffers refuse them with this.
bool overlap(const uint8_t* a, size_t a_len, const uint8_t* b, size_t b_len);

// Throws InvalidArgument naming `what` unless `this` is an object tagged `tag` by its class's
// constructor. Every member of a wrapped class calls it: V8 checks the receiver of a prototype
// method but not of an accessor, and a getter or setter called on another wrapped object would
// read or write that object's native state as its own.
void check_receiver(const Napi::CallbackInfo& info, const napi_type_tag& tag, const char* what);

// The key slot behind a NativeKey handle argument; throws InvalidArgument for anything else.
KeySlot& key_arg(const Napi::CallbackInfo& info, size_t index, const char* name);
// Wraps a slot into a new NativeKey handle.
Napi::Object new_key_handle(Napi::Env env, KeySlot slot);

// Registration entry points, one per binding file.
void init_keys(Napi::Env env, Napi::Object exports);
void init_aead(Napi::Env env, Napi::Object exports);
void init_keywrap(Napi::Env env, Napi::Object exports);
void init_pkey(Napi::Env env, Napi::Object exports);
void init_random(Napi::Env env, Napi::Object exports);
void init_block_modes(Napi::Env env, Napi::Object exports);
void init_mac(Napi::Env env, Napi::Object exports);
void init_audit_chain(Napi::Env env, Napi::Object exports);

}  // namespace hsmkit::binding
