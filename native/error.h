// The one error model of the native core. Crypto code throws hsmkit::Error; the
// binding layer turns it into a JavaScript Error whose `code` is error_code_name().
// Messages never contain key material or plaintext.
#pragma once

#include <exception>
#include <string>

namespace hsmkit {

enum class ErrorCode {
  InvalidArgument,  // ERR_NATIVE_INVALID_ARGUMENT: a length, size or type the operation cannot take
  AuthTag,          // ERR_NATIVE_AUTH_TAG: GCM open failed; deliberately says nothing more
  Unwrap,           // ERR_NATIVE_UNWRAP: KW/KWP integrity check failed; deliberately says nothing more
  OpenSSL,          // ERR_NATIVE_OPENSSL: OpenSSL reported a failure we did not expect
  Entropy,          // ERR_NATIVE_ENTROPY: no healthy entropy source, or the DRBG is not seeded
  KeyDestroyed,     // ERR_NATIVE_KEY_DESTROYED: the key slot was destroyed
  OutOfMemory,      // ERR_NATIVE_OUT_OF_MEMORY: secure memory could not be allocated
  BadPadding,       // ERR_NATIVE_BAD_PADDING: CBC-PAD decryption found no valid PKCS#7 padding
  CounterOverflow,  // ERR_NATIVE_COUNTER_OVERFLOW: AES-CTR would wrap its counter bits (PKCS#11 forbids it)
};

const char* error_code_name(ErrorCode code) noexcept;

class Error : public std::exception {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ErrorCode code() const noexcept { return code_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  ErrorCode code_;
  std::string message_;
};

// Throws ErrorCode::OpenSSL naming the failed step, with OpenSSL's reason strings
// appended; clears OpenSSL's thread-local error queue so later calls start clean.
[[noreturn]] void throw_openssl(const char* step);

// Throws ErrorCode::InvalidArgument.
[[noreturn]] void throw_invalid(std::string message);

}  // namespace hsmkit
