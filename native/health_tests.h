// SP 800-90B continuous health tests over 8-bit samples: the Repetition Count Test
// (§4.4.1) and the Adaptive Proportion Test (§4.4.2), plus the start-up test (§4.3).
//
// Both cutoffs are derived here from two numbers rather than copied from 90B's tables:
//   H      the min-entropy per sample (bits, 0 < H <= 8) that the source's output must have
//          when the source works. Each source states its own H in entropy.cc.
//   alpha  the false-positive probability per test evaluation that we accept.
//
// alpha = 2^-40 (kLog2Alpha). 90B §4.4 recommends 2^-40 <= alpha <= 2^-20; we take the
// low-false-alarm end because a failure here takes the source out of service for the rest of
// the process (entropy.cc), so a false alarm is costly while a real failure (a stuck or heavily
// biased source) is still caught within a handful of samples or one APT window.
//
// Plain C++, no OpenSSL and no N-API. Not thread-safe: the owner serialises access.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace hsmkit::health {

// log2(alpha): see the file comment.
inline constexpr double kLog2Alpha = -40.0;

// APT window for non-binary (8-bit) samples: SP 800-90B §4.4.2 fixes W = 512.
inline constexpr uint32_t kAptWindow = 512;

// Start-up test length: SP 800-90B §4.3 requires the continuous tests to run over at least
// 1024 consecutive samples before the first output is used. 1024 = two full APT windows.
inline constexpr size_t kStartupSamples = 1024;

// RCT cutoff, SP 800-90B §4.4.1: C = 1 + ceil(-log2(alpha) / H). The chance that a working
// source repeats one value C times in a row is at most 2^(-H(C-1)) <= alpha.
uint32_t repetition_count_cutoff(double min_entropy, double log2_alpha = kLog2Alpha);

// CRITBINOM(n, p, 1 - alpha): the smallest k with P(X <= k) >= 1 - alpha for X ~ Binomial(n, p).
// Computed in log space as the smallest k whose upper tail P(X > k) is at most alpha, summing the
// tail from the top with log-sum-exp so that 1 - alpha is never formed (it would round).
uint32_t critbinom(uint32_t n, double p, double log2_alpha);

// APT cutoff, SP 800-90B §4.4.2: C = 1 + CRITBINOM(W, 2^-H, 1 - alpha).
uint32_t adaptive_proportion_cutoff(double min_entropy, uint32_t window = kAptWindow,
                                    double log2_alpha = kLog2Alpha);

// Repetition Count Test: fails when one sample value occurs `cutoff` times in a row.
class RepetitionCountTest {
 public:
  explicit RepetitionCountTest(uint32_t cutoff) : cutoff_(cutoff) {}
  // Returns false (and stays failed) once the run length reaches the cutoff.
  bool feed(uint8_t sample);
  uint32_t cutoff() const { return cutoff_; }

 private:
  uint32_t cutoff_;
  uint32_t run_ = 0;  // 0: no sample seen yet
  uint8_t last_ = 0;
};

// Adaptive Proportion Test: the first sample of each W-sample window is A; fails when A occurs
// `cutoff` times within the window (A itself counts as the first occurrence, per 90B).
class AdaptiveProportionTest {
 public:
  AdaptiveProportionTest(uint32_t window, uint32_t cutoff) : window_(window), cutoff_(cutoff) {}
  bool feed(uint8_t sample);
  uint32_t cutoff() const { return cutoff_; }
  uint32_t window() const { return window_; }

 private:
  uint32_t window_;
  uint32_t cutoff_;
  uint32_t position_ = 0;  // samples seen in the current window; 0 = next sample starts a window
  uint32_t count_ = 0;
  uint8_t reference_ = 0;
};

// Both continuous tests for one source, with cutoffs derived from that source's H, and the
// start-up bookkeeping. Once a test fails the object stays failed: 90B requires the source's
// output to be withheld, and entropy.cc takes the source out of service.
class ContinuousHealthTests {
 public:
  explicit ContinuousHealthTests(double min_entropy, double log2_alpha = kLog2Alpha);

  // Runs both tests over the samples. Returns nullopt while healthy, or the failure reason
  // (which test, cutoff, H, alpha; never the sample values).
  std::optional<std::string> feed(const uint8_t* samples, size_t count);

  bool failed() const { return failure_.has_value(); }
  const std::optional<std::string>& failure() const { return failure_; }

  // Start-up test (§4.3): true once kStartupSamples consecutive samples passed both tests.
  bool startup_passed() const { return startup_samples_ >= kStartupSamples && !failed(); }
  void count_startup_samples(size_t count) { startup_samples_ += count; }

  double min_entropy() const { return min_entropy_; }
  uint32_t rct_cutoff() const { return rct_.cutoff(); }
  uint32_t apt_cutoff() const { return apt_.cutoff(); }

 private:
  double min_entropy_;
  double log2_alpha_;
  RepetitionCountTest rct_;
  AdaptiveProportionTest apt_;
  size_t startup_samples_ = 0;
  std::optional<std::string> failure_;
};

}  // namespace hsmkit::health
