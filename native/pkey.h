// Signatures over a caller-supplied digest (PKCS#11 CKM_ECDSA: the application hashes), through
// OpenSSL's EVP_PKEY_sign / EVP_PKEY_verify. node:crypto always hashes its input, so this is
// the path by which a raw ECDSA signature stays inside OpenSSL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hsmkit {

// Signs `digest` with the EC private key in `pkcs8` (DER PrivateKeyInfo). Returns the DER
// ECDSA-Sig-Value. Throws InvalidArgument for a key that is not an EC private key.
std::vector<uint8_t> ecdsa_sign_digest(const uint8_t* pkcs8, size_t pkcs8_len, const uint8_t* digest,
                                       size_t digest_len);

// Whether `der_signature` (DER ECDSA-Sig-Value) verifies for `digest` under the EC public key in
// `spki` (DER SubjectPublicKeyInfo). A malformed signature is simply false.
bool ecdsa_verify_digest(const uint8_t* spki, size_t spki_len, const uint8_t* digest, size_t digest_len,
                         const uint8_t* der_signature, size_t signature_len);

}  // namespace hsmkit
