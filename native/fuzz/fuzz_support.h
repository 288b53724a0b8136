// Helpers shared by the libFuzzer targets in this folder: a reader that splits the fuzzer's
// input into fields, heap copies sized exactly (so ASan's redzones sit right after them), output
// buffers followed by a canary, and a CHECK that reports a broken invariant and aborts.
//
// Why canaries as well as ASan: the crypto core's writes go through OpenSSL, which is not built
// with ASan here (the system libcrypto), so an OpenSSL write past the end of a buffer we handed
// it is invisible to ASan. The canary after every output buffer catches those writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "error.h"

#define FUZZ_CHECK(condition, ...)                                                     \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      std::fprintf(stderr, "\n==== invariant broken at %s:%d: %s\n", __FILE__, __LINE__, \
                   #condition);                                                        \
      std::fprintf(stderr, "     " __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                                      \
      std::abort();                                                                    \
    }                                                                                  \
  } while (0)

namespace hsmkit::fuzz {

// Consumes the fuzzer input front to back.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  size_t remaining() const { return size_ - offset_; }
  bool byte(uint8_t& out) {
    if (remaining() < 1) return false;
    out = data_[offset_++];
    return true;
  }
  // An exactly-sized heap copy of the next n bytes.
  bool bytes(size_t n, std::vector<uint8_t>& out) {
    if (remaining() < n) return false;
    out.assign(data_ + offset_, data_ + offset_ + n);
    offset_ += n;
    return true;
  }
  std::vector<uint8_t> rest() {
    std::vector<uint8_t> out(data_ + offset_, data_ + size_);
    offset_ = size_;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t offset_ = 0;
};

constexpr size_t kAesKeySizes[4] = {16, 24, 32, 32};

// An output buffer of `size` bytes, prefilled with `fill`, followed by kCanary canary bytes.
class Guarded {
 public:
  static constexpr size_t kCanary = 32;
  static constexpr uint8_t kCanaryByte = 0xCB;

  explicit Guarded(size_t size, uint8_t fill = 0xA5) : size_(size), bytes_(size + kCanary, kCanaryByte) {
    std::memset(bytes_.data(), fill, size);
  }
  uint8_t* data() { return bytes_.data(); }
  size_t size() const { return size_; }
  bool canary_intact() const {
    for (size_t i = size_; i < bytes_.size(); i++) {
      if (bytes_[i] != kCanaryByte) return false;
    }
    return true;
  }
  // Index of the first canary byte that changed, for the report.
  size_t first_canary_damage() const {
    for (size_t i = size_; i < bytes_.size(); i++) {
      if (bytes_[i] != kCanaryByte) return i - size_;
    }
    return kCanary;
  }
  // True when the first n bytes still hold the fill they were given.
  bool untouched(size_t n, uint8_t fill = 0xA5) const {
    for (size_t i = 0; i < n && i < size_; i++) {
      if (bytes_[i] != fill) return false;
    }
    return true;
  }
  bool zero(size_t n) const {
    for (size_t i = 0; i < n; i++) {
      if (bytes_[i] != 0) return false;
    }
    return true;
  }
  bool equals(const uint8_t* other, size_t n) const { return n == 0 || std::memcmp(bytes_.data(), other, n) == 0; }

 private:
  size_t size_;
  std::vector<uint8_t> bytes_;
};

inline const char* code_name(const Error& e) { return error_code_name(e.code()); }

}  // namespace hsmkit::fuzz
