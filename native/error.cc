#include "error.h"

#include <openssl/err.h>

namespace hsmkit {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::InvalidArgument: return "ERR_NATIVE_INVALID_ARGUMENT";
    case ErrorCode::AuthTag: return "ERR_NATIVE_AUTH_TAG";
    case ErrorCode::Unwrap: return "ERR_NATIVE_UNWRAP";
    case ErrorCode::OpenSSL: return "ERR_NATIVE_OPENSSL";
    case ErrorCode::Entropy: return "ERR_NATIVE_ENTROPY";
    case ErrorCode::KeyDestroyed: return "ERR_NATIVE_KEY_DESTROYED";
    case ErrorCode::OutOfMemory: return "ERR_NATIVE_OUT_OF_MEMORY";
    case ErrorCode::BadPadding: return "ERR_NATIVE_BAD_PADDING";
    case ErrorCode::CounterOverflow: return "ERR_NATIVE_COUNTER_OVERFLOW";
  }
  return "ERR_NATIVE_UNKNOWN";
}

void throw_openssl(const char* step) {
  std::string message = std::string(step) + " failed";
  char reason[256];
  unsigned long err;
  bool first = true;
  while ((err = ERR_get_error()) != 0) {
    ERR_error_string_n(err, reason, sizeof reason);
    message += first ? ": " : "; ";
    message += reason;
    first = false;
  }
  throw Error(ErrorCode::OpenSSL, message);
}

void throw_invalid(std::string message) { throw Error(ErrorCode::InvalidArgument, std::move(message)); }

}  // namespace hsmkit
