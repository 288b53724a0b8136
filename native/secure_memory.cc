#include "secure_memory.h"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <mutex>
#include <vector>

#include "error.h"

namespace hsmkit {
namespace {

// Size classes cover AES keys (16–32 B), HMAC and generic secrets up to 1 KiB; anything
// larger gets pages of its own.
constexpr std::array<size_t, 6> kClassSizes = {32, 64, 128, 256, 512, 1024};
constexpr size_t kSlabBytes = 64 * 1024;

struct FreeBlock {
  FreeBlock* next;
};

class Arena {
 public:
  uint8_t* allocate(size_t size) {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t cls = class_for(size);
    uint8_t* block;
    if (cls == kClassSizes.size()) {
      block = map_pages(round_to_pages(size));
    } else {
      if (free_[cls] == nullptr) refill(cls);
      FreeBlock* head = free_[cls];
      free_[cls] = head->next;
      block = reinterpret_cast<uint8_t*>(head);
      std::memset(block, 0, kClassSizes[cls]);
    }
    in_use_ += size;
    return block;
  }

  void release(uint8_t* block, size_t size) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t cls = class_for(size);
    if (cls == kClassSizes.size()) {
      OPENSSL_cleanse(block, size);
      size_t pages = round_to_pages(size);
      munlock(block, pages);
      munmap(block, pages);
      reserved_ -= pages;
    } else {
      OPENSSL_cleanse(block, kClassSizes[cls]);
      auto* node = reinterpret_cast<FreeBlock*>(block);
      node->next = free_[cls];
      free_[cls] = node;
    }
    in_use_ -= size;
  }

  SecureMemoryStats stats() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return SecureMemoryStats{in_use_, reserved_, all_locked_};
  }

 private:
  static size_t class_for(size_t size) {
    for (size_t i = 0; i < kClassSizes.size(); i++) {
      if (size <= kClassSizes[i]) return i;
    }
    return kClassSizes.size();
  }

  static size_t round_to_pages(size_t size) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (size + page - 1) / page * page;
  }

  uint8_t* map_pages(size_t bytes) {
    void* pages = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED) throw Error(ErrorCode::OutOfMemory, "secure memory: mmap failed");
    // Locking can fail under RLIMIT_MEMLOCK; the memory is still usable, and stats() says so.
    if (mlock(pages, bytes) != 0) all_locked_ = false;
#ifdef MADV_DONTDUMP
    madvise(pages, bytes, MADV_DONTDUMP);
#endif
    reserved_ += bytes;
    return static_cast<uint8_t*>(pages);
  }

  void refill(size_t cls) {
    uint8_t* slab = map_pages(kSlabBytes);
    size_t block = kClassSizes[cls];
    for (size_t offset = 0; offset + block <= kSlabBytes; offset += block) {
      auto* node = reinterpret_cast<FreeBlock*>(slab + offset);
      node->next = free_[cls];
      free_[cls] = node;
    }
  }

  std::mutex mutex_;
  std::array<FreeBlock*, kClassSizes.size()> free_{};
  size_t in_use_ = 0;
  size_t reserved_ = 0;
  bool all_locked_ = true;
};

Arena& arena() {
  // Never destroyed: finalizers of key objects may run during process teardown.
  static Arena* instance = new Arena();
  return *instance;
}

}  // namespace

uint8_t* secure_alloc(size_t size) { return arena().allocate(size == 0 ? 1 : size); }

void secure_free(uint8_t* data, size_t size) noexcept {
  if (data != nullptr) arena().release(data, size == 0 ? 1 : size);
}

SecureMemoryStats secure_memory_stats() noexcept { return arena().stats(); }

SecureBytes::SecureBytes(const uint8_t* bytes, size_t size) : data_(secure_alloc(size)), size_(size) {
  if (size > 0) std::memcpy(data_, bytes, size);
}

SecureBytes& SecureBytes::operator=(SecureBytes&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void SecureBytes::reset() noexcept {
  secure_free(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace hsmkit
