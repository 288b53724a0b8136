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

// generateKeyPairPkcs8(kind, param, exponent|null) -> DER PrivateKeyInfo (the caller wipes it)
Napi::Value generate_key_pair_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString()) throw_invalid("generateKeyPairPkcs8(kind, param, exponent)");
    std::string kind = info[0].As<Napi::String>().Utf8Value();
    std::string param = info[1].As<Napi::String>().Utf8Value();
    Bytes exponent{nullptr, 0};
    if (!info[2].IsNull()) exponent = buffer_arg(info, 2, "exponent");
    std::vector<uint8_t> der = generate_key_pair_pkcs8(kind, param, exponent.data, exponent.size);
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(info.Env(), der.data(), der.size());
    OPENSSL_cleanse(der.data(), der.size());
    return out;
  });
}

}  // namespace

void init_pkey(Napi::Env env, Napi::Object exports) {
  exports.Set("generateKeyPairPkcs8", Napi::Function::New(env, generate_key_pair_binding, "generateKeyPairPkcs8"));
  exports.Set("ecdsaSignDigest", Napi::Function::New(env, ecdsa_sign_digest_binding, "ecdsaSignDigest"));
  exports.Set("ecdsaVerifyDigest", Napi::Function::New(env, ecdsa_verify_digest_binding, "ecdsaVerifyDigest"));
}

}  // namespace hsmkit::binding
