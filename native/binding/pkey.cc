#include <openssl/crypto.h>

#include "binding/addon.h"
#include "pkey.h"

namespace hsmkit::binding {
namespace {

// ecdsaSignDigest(pkcs8Der, digest) -> DER ECDSA-Sig-Value
Napi::Value ecdsa_sign_digest_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Bytes key = buffer_arg(info, 0, "pkcs8");
    Bytes digest = buffer_arg(info, 1, "digest");
    std::vector<uint8_t> signature = ecdsa_sign_digest(key.data, key.size, digest.data, digest.size);
    return Napi::Buffer<uint8_t>::Copy(info.Env(), signature.data(), signature.size());
  });
}

// ecdsaVerifyDigest(spkiDer, digest, derSignature) -> boolean
Napi::Value ecdsa_verify_digest_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Bytes key = buffer_arg(info, 0, "spki");
    Bytes digest = buffer_arg(info, 1, "digest");
    Bytes signature = buffer_arg(info, 2, "signature");
    return Napi::Boolean::New(
        info.Env(), ecdsa_verify_digest(key.data, key.size, digest.data, digest.size, signature.data, signature.size));
  });
}

}  // namespace

void init_pkey(Napi::Env env, Napi::Object exports) {
  exports.Set("ecdsaSignDigest", Napi::Function::New(env, ecdsa_sign_digest_binding, "ecdsaSignDigest"));
  exports.Set("ecdsaVerifyDigest", Napi::Function::New(env, ecdsa_verify_digest_binding, "ecdsaVerifyDigest"));
}

}  // namespace hsmkit::binding
