// Memory for key bytes: page-locked where the OS allows (mlock), excluded from core dumps
// (MADV_DONTDUMP), and cleansed with OPENSSL_cleanse on free. Small blocks come from
// size-class slabs so that thousands of keys do not each pin a page.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hsmkit {

// Throws ErrorCode::OutOfMemory. Returned memory is zeroed.
uint8_t* secure_alloc(size_t size);
// Cleanses `size` bytes, then releases them. `size` must be the size passed to secure_alloc.
void secure_free(uint8_t* data, size_t size) noexcept;

struct SecureMemoryStats {
  size_t bytes_in_use;    // sum of live allocation sizes
  size_t bytes_reserved;  // pages mapped for secure memory
  bool locked;            // every mapped page is mlock()ed
};
SecureMemoryStats secure_memory_stats() noexcept;

// Owns one secure allocation. Movable, not copyable.
class SecureBytes {
 public:
  SecureBytes() = default;
  explicit SecureBytes(size_t size) : data_(secure_alloc(size)), size_(size) {}
  SecureBytes(const uint8_t* bytes, size_t size);
  SecureBytes(SecureBytes&& other) noexcept : data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
  }
  SecureBytes& operator=(SecureBytes&& other) noexcept;
  SecureBytes(const SecureBytes&) = delete;
  SecureBytes& operator=(const SecureBytes&) = delete;
  ~SecureBytes() { reset(); }

  uint8_t* data() noexcept { return data_; }
  const uint8_t* data() const noexcept { return data_; }
  size_t size() const noexcept { return size_; }
  void reset() noexcept;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hsmkit
