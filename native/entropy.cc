#include "entropy.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cmath>
#include <cstring>

#include "error.h"
#include "health_tests.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HSMKIT_X86 1
#endif

namespace hsmkit::entropy {

// What each source claims. Two numbers per source, because they answer different questions:
//
//  H       min-entropy per 8-bit sample that the source's output has when the source works,
//          the input to the 90B cutoffs (health_tests.h). All four sources deliver conditioned
//          output (RDSEED: the DRNG's conditioner; RDRAND: a DRBG; getrandom: the kernel's CRNG;
//          /dev/hwrng: whatever the driver delivers), so a working source looks uniform (8 bits).
//          We claim one bit less, H = 7, so that the cutoffs leave slack for a source marginally
//          below full entropy; the failures these tests exist for (stuck output, one value
//          dominating) are still caught within 7 samples (RCT) or one 512-sample window (APT).
//          /dev/hwrng gets H = 4: the kernel's hw_random drivers (virtio-rng here; TPMs and
//          vendor TRNGs elsewhere) may pass on less-than-full-entropy output, and the kernel
//          itself credits many of them below 8 bits per byte.
//  credit  bits of entropy credited per byte toward a DRBG seed (random.cc asks gather() for
//          256 bits of entropy input and 128 bits of nonce). Never more than H: a seed is not
//          credited with more entropy than the health tests assume. So credit = H, except:
//          rdrand    1/64: RDRAND is the output of a CTR_DRBG inside the DRNG. Intel's guidance
//                    for seeds from RDRAND (DRNG Software Implementation Guide, "Generating
//                    Seeds from RDRAND") is a 512:1 reduction: the DRNG reseeds at least once
//                    per 512 128-bit outputs, so 512 x 16 bytes carry at least 128 fresh bits.
//                    We credit exactly that and let Block_Cipher_df do the reduction: a 256-bit
//                    entropy input is 16 KiB of RDRAND output (~40 us at 430 MB/s).
//
//  source     hardware  H  credit  bytes per 256-bit entropy input (+ per 128-bit nonce)
//  rdseed     yes       7  7       37 (+19)   vendor: full-entropy conditioned output
//  rdrand     yes       7  1/64    16384 (+8192)
//  hwrng      yes       4  4       64 (+32)   read only in such small amounts (~9.5 kB/s)
//  getrandom  no        7  7       37 (+19)   kernel CRNG; getrandom(2) blocks until seeded
//  replay     no        7  7       tests only; stands in for a conditioned hardware source
namespace {

struct Claim {
  bool hardware;
  double min_entropy;  // H
  double seed_credit;
};

constexpr Claim kRdSeedClaim{true, 7.0, 7.0};
constexpr Claim kRdRandClaim{true, 7.0, 1.0 / 64.0};
constexpr Claim kHwRngClaim{true, 4.0, 4.0};
constexpr Claim kGetRandomClaim{false, 7.0, 7.0};
constexpr Claim kReplayClaim{false, 7.0, 7.0};

// RDSEED: attempts per 64-bit word before this draw falls back to the next source. Measured
// here (baselines §7.1): RDSEED fails ~46% of calls when both cores use it at once, and
// almost never otherwise. 32 attempts (with _mm_pause between) make a fallback under that
// contention about 0.46^32 ~ 2^-36 per word, and bound the spin to ~25 us per word.
constexpr int kRdSeedAttempts = 32;

// RDRAND: Intel's guidance is to retry 10 times; 10 failures in a row do not happen to a working
// DRNG (contention only delays RDRAND), so they are reported as a hardware failure.
constexpr int kRdRandAttempts = 10;

const char* const kHwRngPath = "/dev/hwrng";

struct SourceFailure {
  std::string reason;
  bool health;  // counted as a health failure (as opposed to an I/O error)
};

}  // namespace

class Source {
 public:
  Source(SourceId id, const Claim& claim)
      : id_(id), claim_(claim), tests_(claim.min_entropy) {}
  virtual ~Source() = default;

  // Reads up to `length` raw bytes into `out`. Returns how many were delivered; fewer than
  // `length` means the source ran dry for now (contention), not that it failed. Throws
  // SourceFailure when the source has failed.
  virtual size_t read(uint8_t* out, size_t length) = 0;

  SourceId id() const { return id_; }
  const Claim& claim() const { return claim_; }
  health::ContinuousHealthTests& tests() { return tests_; }
  const health::ContinuousHealthTests& tests() const { return tests_; }

  bool available = false;
  bool in_service = true;
  std::string failure;
  uint64_t bytes_drawn = 0;
  uint64_t retries = 0;
  uint64_t fallbacks = 0;
  uint64_t health_failures = 0;

 private:
  SourceId id_;
  Claim claim_;
  health::ContinuousHealthTests tests_;
};

namespace {

#if HSMKIT_X86
bool cpu_has_rdrand() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & bit_RDRND) != 0;
}

bool cpu_has_rdseed() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ebx & bit_RDSEED) != 0;
}

#if defined(__x86_64__)
using Word = unsigned long long;
inline int rdseed_step(Word* word) { return _rdseed64_step(word); }
inline int rdrand_step(Word* word) { return _rdrand64_step(word); }
#else
using Word = unsigned int;
inline int rdseed_step(Word* word) { return _rdseed32_step(word); }
inline int rdrand_step(Word* word) { return _rdrand32_step(word); }
#endif

// Fills `out` word by word from an RDSEED/RDRAND step, retrying a word up to `attempts` times
// with a pause between tries (counted in `retries`). Returns the bytes written: all of them, or
// fewer when a word's attempts ran out — what that means is the caller's to say.
template <typename Step>
size_t fill_from_steps(uint8_t* out, size_t length, int attempts, uint64_t& retries, Step step) {
  size_t done = 0;
  while (done < length) {
    Word word = 0;
    int tries = 1;
    while (step(&word) == 0) {
      if (tries == attempts) return done;
      ++tries;
      ++retries;
      _mm_pause();
    }
    size_t take = length - done < sizeof word ? length - done : sizeof word;
    std::memcpy(out + done, &word, take);
    OPENSSL_cleanse(&word, sizeof word);
    done += take;
  }
  return done;
}
#endif

class RdSeedSource final : public Source {
 public:
  RdSeedSource() : Source(SourceId::RdSeed, kRdSeedClaim) {
#if HSMKIT_X86
    available = cpu_has_rdseed();
#endif
  }

  size_t read(uint8_t* out, size_t length) override {
#if HSMKIT_X86
    // Exhausted attempts mean contention (about 46 % failures with both cores on RDSEED here):
    // the partial draw is returned and the next source finishes it.
    return fill_from_steps(out, length, kRdSeedAttempts, retries, rdseed_step);
#else
    (void)out;
    (void)length;
    return 0;
#endif
  }
};

class RdRandSource final : public Source {
 public:
  RdRandSource() : Source(SourceId::RdRand, kRdRandClaim) {
#if HSMKIT_X86
    available = cpu_has_rdrand();
#endif
  }

  size_t read(uint8_t* out, size_t length) override {
#if HSMKIT_X86
    size_t done = fill_from_steps(out, length, kRdRandAttempts, retries, rdrand_step);
    if (done < length) {
      throw SourceFailure{"RDRAND returned no data in 10 consecutive attempts (Intel's DRNG guidance: "
                          "the hardware has failed)",
                          true};
    }
    return done;
#else
    (void)out;
    (void)length;
    return 0;
#endif
  }
};

// /dev/hwrng: root-only, and slow when read in bulk (~9.5 kB/s sustained here, baselines §7.2),
// so it is read only in the small amounts a seed needs.
class HwRngSource final : public Source {
 public:
  HwRngSource() : Source(SourceId::HwRng, kHwRngClaim) {
    fd_ = ::open(kHwRngPath, O_RDONLY | O_CLOEXEC);
    available = fd_ >= 0;
  }
  ~HwRngSource() override {
    if (fd_ >= 0) ::close(fd_);
  }

  size_t read(uint8_t* out, size_t length) override {
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::read(fd_, out + done, length - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        int error = n == 0 ? 0 : errno;
        throw SourceFailure{std::string("read(") + kHwRngPath + ") failed: " +
                                (error == 0 ? "end of file" : std::strerror(error)),
                            false};
      }
    }
    return done;
  }

 private:
  int fd_ = -1;
};

class GetRandomSource final : public Source {
 public:
  GetRandomSource() : Source(SourceId::GetRandom, kGetRandomClaim) {
    uint8_t probe = 0;
    // EAGAIN only means the kernel CRNG is not seeded yet: the source exists, and a blocking
    // call will wait for it.
    available = ::getrandom(&probe, 1, GRND_NONBLOCK) == 1 || errno == EAGAIN;
    OPENSSL_cleanse(&probe, 1);
  }

  size_t read(uint8_t* out, size_t length) override {
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::getrandom(out + done, length - done, 0);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        throw SourceFailure{std::string("getrandom(2) failed: ") + std::strerror(n < 0 ? errno : EIO), false};
      }
    }
    return done;
  }
};

class ReplaySource final : public Source {
 public:
  ReplaySource(const uint8_t* pattern, size_t length)
      : Source(SourceId::Replay, kReplayClaim), pattern_(pattern, pattern + length) {
    available = true;
  }

  size_t read(uint8_t* out, size_t length) override {
    for (size_t i = 0; i < length; ++i) {
      out[i] = pattern_[position_];
      position_ = (position_ + 1) % pattern_.size();
    }
    return length;
  }

 private:
  std::vector<uint8_t> pattern_;
  size_t position_ = 0;
};

}  // namespace

// ---- CleansedBytes ----

CleansedBytes::~CleansedBytes() {
  if (data_ != nullptr) {
    OPENSSL_cleanse(data_, capacity_);
    delete[] data_;
  }
}

void CleansedBytes::resize(size_t size) {
  if (size <= size_) {
    OPENSSL_cleanse(data_ + size, size_ - size);
    size_ = size;
    return;
  }
  if (size > capacity_) {
    size_t capacity = capacity_ == 0 ? 64 : capacity_;
    while (capacity < size) capacity *= 2;
    uint8_t* grown = new uint8_t[capacity];
    if (size_ > 0) std::memcpy(grown, data_, size_);
    if (data_ != nullptr) {
      OPENSSL_cleanse(data_, capacity_);
      delete[] data_;
    }
    data_ = grown;
    capacity_ = capacity;
  }
  std::memset(data_ + size_, 0, size - size_);
  size_ = size;
}

void CleansedBytes::append(const uint8_t* bytes, size_t length) {
  size_t at = size_;
  resize(size_ + length);
  if (length > 0) std::memcpy(data_ + at, bytes, length);
}

// ---- names ----

const char* source_name(SourceId id) {
  switch (id) {
    case SourceId::RdSeed: return "rdseed";
    case SourceId::RdRand: return "rdrand";
    case SourceId::HwRng: return "hwrng";
    case SourceId::GetRandom: return "getrandom";
    case SourceId::Replay: return "replay";
  }
  return "unknown";
}

std::optional<SourceId> real_source_from_name(std::string_view name) {
  for (SourceId id : kDefaultOrder) {
    if (name == source_name(id)) return id;
  }
  return std::nullopt;
}

// ---- EntropySources ----

EntropySources::EntropySources() {
  sources_.push_back(std::make_unique<RdSeedSource>());
  sources_.push_back(std::make_unique<RdRandSource>());
  sources_.push_back(std::make_unique<HwRngSource>());
  sources_.push_back(std::make_unique<GetRandomSource>());
  order_.assign(std::begin(kDefaultOrder), std::end(kDefaultOrder));
}

EntropySources::~EntropySources() = default;

Source& EntropySources::source(SourceId id) {
  if (id == SourceId::Replay) {
    if (!replay_) throw_invalid("no replay source is installed");
    return *replay_;
  }
  return *sources_[static_cast<size_t>(id)];
}

const Source* EntropySources::find(SourceId id) const {
  if (id == SourceId::Replay) return replay_.get();
  return sources_[static_cast<size_t>(id)].get();
}

namespace {

void check_real_and_distinct(const std::vector<SourceId>& order) {
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] == SourceId::Replay) throw_invalid("the replay source is installed only by use_replay()");
    for (size_t j = 0; j < i; ++j) {
      if (order[j] == order[i]) throw_invalid(std::string("entropy source listed twice: ") + source_name(order[i]));
    }
  }
}

}  // namespace

void EntropySources::set_order(const std::vector<SourceId>& order) {
  if (order.empty()) throw_invalid("the entropy source order must name at least one source");
  check_real_and_distinct(order);
  order_ = order;
}

void EntropySources::use_replay(const uint8_t* pattern, size_t length, const std::vector<SourceId>& then) {
  if (length == 0) throw_invalid("the replay pattern must not be empty");
  check_real_and_distinct(then);
  replay_ = std::make_unique<ReplaySource>(pattern, length);
  order_.assign(1, SourceId::Replay);
  order_.insert(order_.end(), then.begin(), then.end());
}

void EntropySources::take_out_of_service(Source& source, const std::string& reason, bool health_failure) {
  source.in_service = false;
  source.failure = reason;
  if (health_failure) {
    ++source.health_failures;
    ++health_failures_;
  }
}

std::optional<SourceId> EntropySources::active() const {
  for (SourceId id : order_) {
    const Source* source = find(id);
    if (source != nullptr && source->available && source->in_service) return id;
  }
  return std::nullopt;
}

bool EntropySources::is_hardware(SourceId id) const {
  const Source* source = find(id);
  return source != nullptr && source->claim().hardware;
}

void EntropySources::gather(double bits, CleansedBytes& out) {
  const size_t start = out.size();
  double credited = 0.0;
  std::string states;  // for the error message: why each source could not finish the draw
  auto note = [&states](const Source& source, const std::string& why) {
    states += states.empty() ? "" : "; ";
    states += source_name(source.id());
    states += ": ";
    states += why;
  };

  for (SourceId id : order_) {
    Source& source = this->source(id);
    if (!source.available) {
      note(source, "not available on this machine");
      continue;
    }
    if (!source.in_service) {
      note(source, "out of service (" + source.failure + ")");
      continue;
    }
    const size_t mark = out.size();
    try {
      // Start-up test (90B §4.3): 1024 samples through both tests before any output is used.
      // The samples are discarded.
      if (!source.tests().startup_passed()) {
        uint8_t samples[health::kStartupSamples];
        size_t got = source.read(samples, sizeof samples);
        source.bytes_drawn += got;
        std::optional<std::string> failure = source.tests().feed(samples, got);
        OPENSSL_cleanse(samples, sizeof samples);
        if (failure) {
          take_out_of_service(source, "start-up test: " + *failure, true);
          note(source, "out of service (" + source.failure + ")");
          continue;
        }
        source.tests().count_startup_samples(got);
        if (got < sizeof samples) {
          ++source.fallbacks;
          note(source, "ran dry during its start-up test (contention)");
          continue;
        }
      }

      const double missing = bits - credited;
      const size_t want = static_cast<size_t>(std::ceil(missing / source.claim().seed_credit));
      out.resize(mark + want);
      size_t got = source.read(out.data() + mark, want);
      source.bytes_drawn += got;
      if (std::optional<std::string> failure = source.tests().feed(out.data() + mark, got)) {
        out.resize(mark);  // 90B: output that failed a health test is never used
        take_out_of_service(source, *failure, true);
        note(source, "out of service (" + source.failure + ")");
        continue;
      }
      out.resize(mark + got);
      credited += static_cast<double>(got) * source.claim().seed_credit;
      if (got < want) {
        ++source.fallbacks;
        note(source, "ran dry (contention)");
        continue;
      }
      return;
    } catch (const SourceFailure& failure) {
      out.resize(mark);
      take_out_of_service(source, failure.reason, failure.health);
      note(source, "out of service (" + source.failure + ")");
    }
  }
  out.resize(start);
  throw Error(ErrorCode::Entropy, "no healthy entropy source could supply " + std::to_string(static_cast<int>(bits)) +
                                      " bits (" + (states.empty() ? "no sources configured" : states) + ")");
}

std::vector<SourceStatus> EntropySources::status() const {
  std::vector<SourceStatus> result;
  auto describe = [&result](const Source& source) {
    result.push_back(SourceStatus{source_name(source.id()), source.claim().hardware, source.available,
                                  source.in_service, source.failure, source.bytes_drawn, source.retries,
                                  source.fallbacks, source.health_failures, source.claim().min_entropy,
                                  source.claim().seed_credit, source.tests().rct_cutoff(),
                                  source.tests().apt_cutoff()});
  };
  for (const auto& source : sources_) describe(*source);
  if (replay_) describe(*replay_);
  return result;
}

}  // namespace hsmkit::entropy
