#include "random.h"

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "drbg.h"
#include "error.h"

namespace hsmkit::random {

namespace {

// Security strength 256: 256 bits of entropy input, and a random nonce of half that (§8.6.7).
constexpr double kEntropyBits = 256.0;
constexpr double kNonceBits = 128.0;
constexpr char kPersonalization[] = "hsmkit process-wide CTR_DRBG (AES-256, derivation function)";
constexpr char kForkLabel[] = "hsmkit reseed after fork, pid ";

std::vector<entropy::SourceId> parse_names(const std::vector<std::string>& names) {
  std::vector<entropy::SourceId> order;
  for (const std::string& name : names) {
    std::optional<entropy::SourceId> id = entropy::real_source_from_name(name);
    if (!id) throw_invalid("unknown entropy source \"" + name + "\" (expected rdseed, rdrand, hwrng or getrandom)");
    for (entropy::SourceId seen : order) {
      if (seen == *id) throw_invalid("entropy source listed twice: " + name);
    }
    order.push_back(*id);
  }
  return order;
}

std::vector<entropy::SourceId> parse_order(const std::vector<std::string>& names) {
  if (names.empty()) throw_invalid("the entropy source list must name at least one source");
  return parse_names(names);
}

std::vector<std::string> split_names(const char* text) {
  std::vector<std::string> names;
  std::string current;
  for (const char* p = text;; ++p) {
    if (*p == ',' || *p == '\0') {
      size_t begin = current.find_first_not_of(" \t");
      size_t end = current.find_last_not_of(" \t");
      names.push_back(begin == std::string::npos ? std::string() : current.substr(begin, end - begin + 1));
      current.clear();
      if (*p == '\0') break;
    } else {
      current += *p;
    }
  }
  return names;
}

class Generator {
 public:
  Generator() {
    const char* env = std::getenv("HSMKIT_ENTROPY_SOURCES");
    if (env != nullptr && *env != '\0') {
      try {
        sources_.set_order(parse_order(split_names(env)));
      } catch (const Error& e) {
        configuration_error_ = std::string("HSMKIT_ENTROPY_SOURCES: ") + e.what();
      }
    }
    drbg_.set_reseed_interval(kDefaultReseedInterval);
  }

  void generate(uint8_t* out, size_t len, const uint8_t* additional, size_t additional_len) {
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      check_configuration();
      if (!drbg_.instantiated()) {
        instantiate();
      } else if (::getpid() != seeded_pid_) {
        reseed_after_fork();
      }
      for (size_t done = 0; done < len;) {
        size_t chunk = len - done;
        if (chunk > drbg::CtrDrbg::kMaxRequestBytes) chunk = drbg::CtrDrbg::kMaxRequestBytes;
        const uint8_t* request_additional = additional;
        size_t request_additional_len = additional_len;
        if (prediction_resistance_) {
          // §9.3.1 steps 7-7.4: prediction resistance is a property of each Generate request, so
          // every 64 KiB request reseeds, not just the first of a call. The additional input goes
          // into the reseed, and the generate that follows takes none.
          reseed_locked(additional, additional_len);
          request_additional = nullptr;
          request_additional_len = 0;
        }
        if (drbg_.generate(out + done, chunk, request_additional, request_additional_len) ==
            drbg::GenerateResult::ReseedRequired) {
          reseed_locked(nullptr, 0);
          if (drbg_.generate(out + done, chunk, request_additional, request_additional_len) !=
              drbg::GenerateResult::Ok) {
            throw Error(ErrorCode::Entropy, "CTR_DRBG still requires a reseed after reseeding");
          }
        }
        done += chunk;
      }
    } catch (...) {
      if (len > 0) OPENSSL_cleanse(out, len);
      throw;
    }
    ++generate_calls_;
    bytes_generated_ += len;
  }

  void reseed(const uint8_t* additional, size_t additional_len) {
    std::lock_guard<std::mutex> lock(mutex_);
    check_configuration();
    if (!drbg_.instantiated()) {
      instantiate(additional, additional_len);
    } else {
      reseed_locked(additional, additional_len);
    }
  }

  void configure(const std::vector<std::string>& names, bool prediction_resistance, uint64_t reseed_interval) {
    std::vector<entropy::SourceId> order = parse_order(names);
    if (reseed_interval < 1 || reseed_interval > drbg::CtrDrbg::kMaxReseedInterval) {
      throw_invalid("reseed interval must be from 1 to 2^48 requests");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (order != sources_.order()) {
      sources_.set_order(order);
      drbg_.uninstantiate();
    }
    configuration_error_.clear();
    prediction_resistance_ = prediction_resistance;
    reseed_interval_ = reseed_interval;
    drbg_.set_reseed_interval(reseed_interval);
  }

  void use_replay(const uint8_t* pattern, size_t len, const std::vector<std::string>& then) {
    std::vector<entropy::SourceId> rest = parse_names(then);
    std::lock_guard<std::mutex> lock(mutex_);
    sources_.use_replay(pattern, len, rest);
    configuration_error_.clear();
    drbg_.uninstantiate();
  }

  Status status() {
    std::lock_guard<std::mutex> lock(mutex_);
    Status status{};
    std::optional<entropy::SourceId> active = configuration_error_.empty() ? sources_.active() : std::nullopt;
    if (active) status.active_source = entropy::source_name(*active);
    status.hardware = active && sources_.is_hardware(*active);
    status.seeded = drbg_.instantiated();
    status.prediction_resistance = prediction_resistance_;
    status.reseed_interval = reseed_interval_;
    status.instantiations = instantiations_;
    status.reseeds = reseeds_;
    status.generate_calls = generate_calls_;
    status.bytes_generated = bytes_generated_;
    status.health_failures = sources_.health_failures();
    for (entropy::SourceId id : sources_.order()) status.source_order.emplace_back(entropy::source_name(id));
    status.configuration_error = configuration_error_;
    status.sources = sources_.status();
    return status;
  }

 private:
  void check_configuration() const {
    if (!configuration_error_.empty()) throw Error(ErrorCode::Entropy, configuration_error_);
  }

  // `extra` (reseed()'s additional input, when reseed() has to instantiate) is appended to the
  // personalization string, so it still enters the seed.
  void instantiate(const uint8_t* extra = nullptr, size_t extra_len = 0) {
    entropy::CleansedBytes entropy_input;
    entropy::CleansedBytes nonce;
    try {
      sources_.gather(kEntropyBits, entropy_input);
      sources_.gather(kNonceBits, nonce);
    } catch (...) {
      drbg_.uninstantiate();
      throw;
    }
    // The non-random part of the nonce: time, counter and pid (not secret).
    struct timespec now {};
    ::clock_gettime(CLOCK_REALTIME, &now);
    const uint64_t nanoseconds = static_cast<uint64_t>(now.tv_sec) * 1000000000u + static_cast<uint64_t>(now.tv_nsec);
    const uint64_t counter = instantiations_ + 1;
    const int32_t pid = static_cast<int32_t>(::getpid());
    nonce.append(reinterpret_cast<const uint8_t*>(&nanoseconds), sizeof nanoseconds);
    nonce.append(reinterpret_cast<const uint8_t*>(&counter), sizeof counter);
    nonce.append(reinterpret_cast<const uint8_t*>(&pid), sizeof pid);
    entropy::CleansedBytes personalization;
    personalization.append(reinterpret_cast<const uint8_t*>(kPersonalization), sizeof kPersonalization - 1);
    if (extra_len > 0) personalization.append(extra, extra_len);
    drbg_.instantiate(entropy_input.data(), entropy_input.size(), nonce.data(), nonce.size(), personalization.data(),
                      personalization.size());
    seeded_pid_ = ::getpid();
    ++instantiations_;
  }

  void reseed_locked(const uint8_t* additional, size_t additional_len) {
    entropy::CleansedBytes entropy_input;
    try {
      sources_.gather(kEntropyBits, entropy_input);
    } catch (...) {
      drbg_.uninstantiate();
      throw;
    }
    drbg_.reseed(entropy_input.data(), entropy_input.size(), additional, additional_len);
    seeded_pid_ = ::getpid();
    ++reseeds_;
  }

  void reseed_after_fork() {
    std::string label = kForkLabel + std::to_string(::getpid());
    reseed_locked(reinterpret_cast<const uint8_t*>(label.data()), label.size());
  }

  std::mutex mutex_;
  entropy::EntropySources sources_;
  drbg::CtrDrbg drbg_{32, true};
  bool prediction_resistance_ = false;
  uint64_t reseed_interval_ = kDefaultReseedInterval;
  pid_t seeded_pid_ = 0;
  uint64_t instantiations_ = 0;
  uint64_t reseeds_ = 0;
  uint64_t generate_calls_ = 0;
  uint64_t bytes_generated_ = 0;
  std::string configuration_error_;
};

// Created at first use and deliberately never destroyed: worker threads may still call in
// while the process exits, after static destructors would have run. Process exit releases it.
Generator& generator() {
  static Generator* const instance = new Generator();
  return *instance;
}

}  // namespace

void generate(uint8_t* out, size_t len) { generator().generate(out, len, nullptr, 0); }

void generate_with_additional_input(uint8_t* out, size_t len, const uint8_t* additional, size_t additional_len) {
  generator().generate(out, len, additional, additional_len);
}

void reseed(const uint8_t* additional, size_t additional_len) { generator().reseed(additional, additional_len); }

void configure(const std::vector<std::string>& sources, bool prediction_resistance, uint64_t reseed_interval) {
  generator().configure(sources, prediction_resistance, reseed_interval);
}

void use_replay_source_for_testing(const uint8_t* pattern, size_t len, const std::vector<std::string>& then) {
  generator().use_replay(pattern, len, then);
}

Status status() { return generator().status(); }

}  // namespace hsmkit::random
