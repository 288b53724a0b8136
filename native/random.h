// The process-wide random generator: one SP 800-90A CTR_DRBG (AES-256, derivation function)
// behind a mutex, seeded and reseeded from the entropy sources (entropy.h).
//
// Seeding (security_strength = 256 bits):
//  - Instantiate: entropy_input = source output credited with >= 256 bits (bytes per source:
//    the table in entropy.cc, e.g. 37 from RDSEED, 16 KiB from RDRAND); nonce = source output
//    credited with >= 128 bits (SP 800-90A §8.6.7: a random nonce of at least
//    security_strength/2 bits) followed by the wall-clock time in ns, an instantiation counter
//    and the pid, so the nonce never repeats even if a source did; personalization_string = a
//    fixed label.
//  - Reseed: entropy_input credited with >= 256 bits, plus the caller's additional input.
//  - Reseeds happen: when the DRBG's reseed_counter exceeds reseed_interval (§9.3.1); on the
//    first call after fork() (the child must not repeat the parent's output); before every
//    SP 800-90A request (each 64 KiB of a call) when prediction resistance is on (§9.3.1: the
//    additional input then goes to the reseed and the generate that follows takes none); on
//    reseed().
//  - A call that needs entropy and cannot get it from a healthy source uninstantiates the DRBG
//    (Key and V cleansed) and throws ErrorCode::Entropy. Output is never produced without a
//    seed from a source that passed its health tests.
//
// Requests are split into SP 800-90A requests of at most 2^16 bytes (max_number_of_bits_per_
// request = 2^19); each counts once toward reseed_interval.
//
// Configuration: at first use the source order is read from HSMKIT_ENTROPY_SOURCES (comma-
// separated names, e.g. "rdrand,getrandom"; an invalid value makes every call throw Entropy
// naming the problem until configure() is called); configure() replaces it at any time.
//
// Every function here is thread-safe: the addon is loaded by several worker_threads of one
// process at once and they share this state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "entropy.h"

namespace hsmkit::random {

// reseed_interval default, in SP 800-90A Generate requests (each <= 64 KiB): 2^16, the value
// OpenSSL 3 uses for its public and private DRBGs. With 32-byte requests that is a reseed every
// 2 MiB; with 64 KiB requests every 4 GiB. A reseed costs microseconds (tens with RDRAND).
inline constexpr uint64_t kDefaultReseedInterval = uint64_t{1} << 16;

// Fills out[0, len) with output of the process-wide DRBG. Throws hsmkit::Error with
// ErrorCode::Entropy when no healthy entropy source can seed it (out is then zeroed).
void generate(uint8_t* out, size_t len);

// As generate(), with SP 800-90A additional input (not secret; may be empty).
void generate_with_additional_input(uint8_t* out, size_t len, const uint8_t* additional, size_t additional_len);

// Reseeds now with optional additional input; if not seeded, instantiates instead (the
// additional input then joins the personalization string). Throws Entropy as generate() does.
void reseed(const uint8_t* additional, size_t additional_len);

// Replaces the configuration. `sources`: a non-empty list of distinct names from "rdseed",
// "rdrand", "hwrng", "getrandom", tried in that order. reseed_interval: 1 .. 2^48 requests.
// Throws InvalidArgument (and changes nothing) for anything else. If the order changes, the
// DRBG is uninstantiated and the next call instantiates it from the new order; a previous
// HSMKIT_ENTROPY_SOURCES error is cleared.
void configure(const std::vector<std::string>& sources, bool prediction_resistance, uint64_t reseed_interval);

// Tests only: installs a replay source cycling `pattern` as the first source, followed by the
// real sources named in `then` (possibly none), and uninstantiates the DRBG. Throws
// InvalidArgument for an empty pattern or bad names. Restore with configure().
void use_replay_source_for_testing(const uint8_t* pattern, size_t len, const std::vector<std::string>& then);

struct Status {
  std::optional<std::string> active_source;  // entropy::EntropySources::active()
  bool hardware;                              // whether active_source is a hardware source
  bool seeded;
  bool prediction_resistance;
  uint64_t reseed_interval;
  uint64_t instantiations;
  uint64_t reseeds;          // reseeds of an instantiated DRBG (interval, fork, PR, explicit)
  uint64_t generate_calls;   // successful calls of generate()/generate_with_additional_input()
  uint64_t bytes_generated;
  uint64_t health_failures;  // over the life of the process
  std::vector<std::string> source_order;
  std::string configuration_error;  // from HSMKIT_ENTROPY_SOURCES; empty when none
  std::vector<entropy::SourceStatus> sources;
};

Status status();

}  // namespace hsmkit::random
