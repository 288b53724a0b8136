#include "pkey.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

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

}  // namespace hsmkit
