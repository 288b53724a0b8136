// Entropy sources for the process-wide DRBG (random.cc): RDSEED, RDRAND, /dev/hwrng and
// getrandom(2), tried in a configured order, each behind the SP 800-90B continuous health
// tests (health_tests.h); plus a "replay" source for tests that cycles a given byte pattern.
//
// What each source claims, and why, is the table at the top of entropy.cc.
//
// Failure model:
//  - Availability is probed once, when EntropySources is constructed (CPUID for RDSEED and
//    RDRAND, open(2) for /dev/hwrng, a non-blocking getrandom(2) call). An unavailable source
//    is skipped.
//  - Before a source's first use, the start-up test (90B §4.3) runs the continuous tests over
//    1024 samples, which are then discarded.
//  - A health-test failure (or a failure the hardware itself signals, such as RDRAND returning
//    nothing ten times in a row) takes the source out of service for the rest of the process.
//    The reason is kept for status(); the draw moves on to the next source in the order.
//  - RDSEED running dry under contention is not a failure: after a bounded retry the rest of
//    that draw comes from the next source, and the source's `fallbacks` counter increments.
//  - If the sources in the order cannot supply a draw, gather() throws ErrorCode::Entropy.
//
// Not thread-safe: random.cc serialises every call with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hsmkit::entropy {

// A growable byte buffer that is cleansed (OPENSSL_cleanse) whenever bytes are dropped:
// on shrinking, on reallocation and on destruction. For entropy input and nonces.
class CleansedBytes {
 public:
  CleansedBytes() = default;
  ~CleansedBytes();
  CleansedBytes(const CleansedBytes&) = delete;
  CleansedBytes& operator=(const CleansedBytes&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // New bytes are zero. Shrinking cleanses the dropped tail.
  void resize(size_t size);
  void append(const uint8_t* bytes, size_t length);

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

enum class SourceId : uint8_t { RdSeed, RdRand, HwRng, GetRandom, Replay };

// "rdseed", "rdrand", "hwrng", "getrandom", "replay".
const char* source_name(SourceId id);
// The four real sources by name; "replay" and anything else give nullopt.
std::optional<SourceId> real_source_from_name(std::string_view name);

// The default order: strongest hardware source first, the OS last.
inline constexpr SourceId kDefaultOrder[] = {SourceId::RdSeed, SourceId::RdRand, SourceId::HwRng,
                                             SourceId::GetRandom};

struct SourceStatus {
  std::string name;
  bool hardware;
  bool available;
  bool in_service;
  std::string failure;  // empty while in service
  uint64_t bytes_drawn;      // raw bytes read, including discarded start-up samples
  uint64_t retries;          // RDSEED/RDRAND steps that returned no data and were retried
  uint64_t fallbacks;        // draws this source could not finish (contention), finished by the next source
  uint64_t health_failures;  // 0 or 1: the failure that took it out of service
  double min_entropy;        // H per 8-bit sample, the basis of the health-test cutoffs
  double seed_credit;        // bits of entropy credited per byte toward a seed
  uint32_t rct_cutoff;
  uint32_t apt_cutoff;
};

class Source;

class EntropySources {
 public:
  // Probes the four real sources. The order starts as kDefaultOrder.
  EntropySources();
  ~EntropySources();
  EntropySources(const EntropySources&) = delete;
  EntropySources& operator=(const EntropySources&) = delete;

  // A non-empty list of distinct sources; Replay only through use_replay().
  void set_order(const std::vector<SourceId>& order);
  const std::vector<SourceId>& order() const { return order_; }

  // Installs a fresh replay source cycling `pattern` (health state and counters new) and makes
  // the order: the replay source, then `then` (distinct real sources, possibly none). For tests:
  // a stuck or biased pattern must trip the health tests, and the draw move on to `then`.
  void use_replay(const uint8_t* pattern, size_t length, const std::vector<SourceId>& then);

  // Appends raw source output carrying at least `bits` bits of credited entropy to `out`,
  // taking from the sources in order as described at the top of this file. On failure `out`
  // keeps its previous contents and ErrorCode::Entropy is thrown naming each source's state.
  void gather(double bits, CleansedBytes& out);

  // The source the next draw would start with: the first in the order that is available and
  // in service (its start-up test may still be pending). nullopt when there is none.
  std::optional<SourceId> active() const;
  bool is_hardware(SourceId id) const;

  // The four real sources, then the replay source if one was installed.
  std::vector<SourceStatus> status() const;
  // Health failures over the life of the process, including replaced replay sources.
  uint64_t health_failures() const { return health_failures_; }

 private:
  Source& source(SourceId id);
  const Source* find(SourceId id) const;
  void take_out_of_service(Source& source, const std::string& reason, bool health_failure);

  std::vector<std::unique_ptr<Source>> sources_;  // the real ones, in SourceId order
  std::unique_ptr<Source> replay_;
  std::vector<SourceId> order_;
  uint64_t health_failures_ = 0;
};

}  // namespace hsmkit::entropy
