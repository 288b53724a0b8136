#include "health_tests.h"

#include <cmath>
#include <cstdio>

#include "error.h"

namespace hsmkit::health {

namespace {

void check_min_entropy(double min_entropy) {
  if (!(min_entropy > 0.0 && min_entropy <= 8.0)) throw_invalid("min-entropy per 8-bit sample must be in (0, 8]");
}

void check_log2_alpha(double log2_alpha) {
  // 90B's recommended range is [-40, -20]; accept anything that is a probability below 1/2.
  if (!(log2_alpha < -1.0 && log2_alpha >= -1000.0)) throw_invalid("log2(alpha) must be in [-1000, -1)");
}

// log(exp(a) + exp(b)) without overflow or underflow.
double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  double hi = a > b ? a : b;
  double lo = a > b ? b : a;
  return hi + std::log1p(std::exp(lo - hi));
}

}  // namespace

uint32_t repetition_count_cutoff(double min_entropy, double log2_alpha) {
  check_min_entropy(min_entropy);
  check_log2_alpha(log2_alpha);
  // Divide first, then round up; the epsilon keeps an exact quotient such as 40/8 = 5 from
  // becoming 6 through floating-point noise.
  double quotient = -log2_alpha / min_entropy;
  return 1 + static_cast<uint32_t>(std::ceil(quotient - 1e-9));
}

uint32_t critbinom(uint32_t n, double p, double log2_alpha) {
  if (n == 0) throw_invalid("critbinom: n must be positive");
  if (!(p > 0.0 && p < 1.0)) throw_invalid("critbinom: p must be in (0, 1)");
  check_log2_alpha(log2_alpha);
  const double log_alpha = log2_alpha * std::log(2.0);
  const double log_p = std::log(p);
  const double log_q = std::log1p(-p);
  const double log_n_factorial = std::lgamma(static_cast<double>(n) + 1.0);
  auto log_pmf = [&](uint32_t k) {
    return log_n_factorial - std::lgamma(static_cast<double>(k) + 1.0) -
           std::lgamma(static_cast<double>(n - k) + 1.0) + k * log_p + (n - k) * log_q;
  };
  // tail(k) = P(X > k) = sum_{j=k+1}^{n} pmf(j). tail(n) = 0 <= alpha, so walk k downwards from
  // n while the tail stays within alpha; the answer is the last k that still satisfied it.
  double log_tail = -INFINITY;  // tail(n)
  uint32_t k = n;
  while (k > 0) {
    double log_tail_below = log_add(log_tail, log_pmf(k));  // tail(k - 1)
    if (log_tail_below > log_alpha) break;
    log_tail = log_tail_below;
    --k;
  }
  return k;
}

uint32_t adaptive_proportion_cutoff(double min_entropy, uint32_t window, double log2_alpha) {
  check_min_entropy(min_entropy);
  return 1 + critbinom(window, std::exp2(-min_entropy), log2_alpha);
}

bool RepetitionCountTest::feed(uint8_t sample) {
  if (run_ >= cutoff_) return false;
  if (run_ != 0 && sample == last_) {
    ++run_;
  } else {
    last_ = sample;
    run_ = 1;
  }
  return run_ < cutoff_;
}

bool AdaptiveProportionTest::feed(uint8_t sample) {
  if (count_ >= cutoff_) return false;
  if (position_ == 0) {
    reference_ = sample;
    count_ = 1;
  } else if (sample == reference_) {
    ++count_;
  }
  if (++position_ == window_) position_ = 0;
  if (count_ >= cutoff_) return false;
  if (position_ == 0) count_ = 0;
  return true;
}

ContinuousHealthTests::ContinuousHealthTests(double min_entropy, double log2_alpha)
    : min_entropy_(min_entropy),
      log2_alpha_(log2_alpha),
      rct_(repetition_count_cutoff(min_entropy, log2_alpha)),
      apt_(kAptWindow, adaptive_proportion_cutoff(min_entropy, kAptWindow, log2_alpha)) {}

std::optional<std::string> ContinuousHealthTests::feed(const uint8_t* samples, size_t count) {
  if (failure_) return failure_;
  for (size_t i = 0; i < count; ++i) {
    const bool rct_ok = rct_.feed(samples[i]);
    const bool apt_ok = apt_.feed(samples[i]);
    if (rct_ok && apt_ok) continue;
    char reason[256];
    if (!rct_ok) {
      std::snprintf(reason, sizeof reason,
                    "SP 800-90B repetition count test failed: one value repeated %u times in a row "
                    "(cutoff %u for H=%g bits/sample, alpha=2^%g)",
                    rct_.cutoff(), rct_.cutoff(), min_entropy_, log2_alpha_);
    } else {
      std::snprintf(reason, sizeof reason,
                    "SP 800-90B adaptive proportion test failed: one value occurred %u times in a "
                    "%u-sample window (cutoff %u for H=%g bits/sample, alpha=2^%g)",
                    apt_.cutoff(), apt_.window(), apt_.cutoff(), min_entropy_, log2_alpha_);
    }
    failure_ = std::string(reason);
    return failure_;
  }
  return std::nullopt;
}

}  // namespace hsmkit::health
