#include "pkey.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "error.h"

namespace hsmkit {
namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

void require_ec(const EVP_PKEY* key, const char* what) {
  if (key == nullptr || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
    ERR_clear_error();
    throw_invalid(std::string(what) + " is not an EC key");
  }
}

}  // namespace

std::vector<uint8_t> ecdsa_sign_digest(const uint8_t* pkcs8, size_t pkcs8_len, const uint8_t* digest,
                                       size_t digest_len) {
  if (digest_len == 0) throw_invalid("ECDSA needs a non-empty digest");
  const unsigned char* cursor = pkcs8;
  // d2i_AutoPrivateKey reads PKCS#8 PrivateKeyInfo as well as the traditional forms.
  Pkey key(d2i_AutoPrivateKey(nullptr, &cursor, static_cast<long>(pkcs8_len)));
  require_ec(key.get(), "private key");
  PkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1) throw_openssl("EVP_PKEY_sign_init");
  size_t length = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &length, digest, digest_len) != 1) throw_openssl("EVP_PKEY_sign (size)");
  std::vector<uint8_t> signature(length);
  if (EVP_PKEY_sign(ctx.get(), signature.data(), &length, digest, digest_len) != 1) throw_openssl("EVP_PKEY_sign");
  signature.resize(length);
  return signature;
}

bool ecdsa_verify_digest(const uint8_t* spki, size_t spki_len, const uint8_t* digest, size_t digest_len,
                         const uint8_t* der_signature, size_t signature_len) {
  const unsigned char* cursor = spki;
  Pkey key(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(spki_len)));
  require_ec(key.get(), "public key");
  PkeyCtx ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) throw_openssl("EVP_PKEY_verify_init");
  int verdict = EVP_PKEY_verify(ctx.get(), der_signature, signature_len, digest, digest_len);
  ERR_clear_error();  // a bad signature leaves reasons on the queue; it is an answer, not an error
  return verdict == 1;
}

std::vector<uint8_t> generate_key_pair_pkcs8(const std::string& kind, const std::string& param, const uint8_t* exponent,
                                             size_t exponent_len) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, kind.c_str(), nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    ERR_clear_error();
    throw_invalid("no key generation for " + kind);
  }
  if (kind == "RSA") {
    char* end = nullptr;
    unsigned long bits = std::strtoul(param.c_str(), &end, 10);
    if (end == param.c_str() || *end != '\0' || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), static_cast<int>(bits)) != 1) {
      ERR_clear_error();
      throw_invalid("RSA modulus of " + param + " bits");
    }
    if (exponent_len > 0) {
      std::unique_ptr<BIGNUM, decltype(&BN_free)> e(BN_bin2bn(exponent, static_cast<int>(exponent_len), nullptr), &BN_free);
      if (!e || EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx.get(), e.get()) != 1) {
        ERR_clear_error();
        throw_invalid("RSA public exponent");
      }
    }
  } else if (kind == "EC") {
    if (EVP_PKEY_CTX_set_group_name(ctx.get(), param.c_str()) != 1) {
      ERR_clear_error();
      throw_invalid("EC curve " + param);
    }
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1) {
    ERR_clear_error();
    throw_invalid(kind + " key generation failed" + (param.empty() ? std::string() : " (" + param + ")"));
  }
  Pkey key(raw);
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)> info(EVP_PKEY2PKCS8(key.get()), &PKCS8_PRIV_KEY_INFO_free);
  if (!info) throw_openssl("EVP_PKEY2PKCS8");
  int length = i2d_PKCS8_PRIV_KEY_INFO(info.get(), nullptr);
  if (length <= 0) throw_openssl("i2d_PKCS8_PRIV_KEY_INFO");
  std::vector<uint8_t> der(static_cast<size_t>(length));
  unsigned char* cursor = der.data();
  if (i2d_PKCS8_PRIV_KEY_INFO(info.get(), &cursor) != length) throw_openssl("i2d_PKCS8_PRIV_KEY_INFO");
  return der;
}

}  // namespace hsmkit
