// N-API glue for the random generator (random.h) and the bare CTR_DRBG (drbg.h).
// Validation of shapes and ranges happens in src/crypto/random.ts first; the checks here keep
// the native side safe when it is called directly.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "binding/addon.h"
#include "drbg.h"
#include "random.h"

namespace hsmkit::binding {

namespace {

// A whole number from 1 to 2^48 (SP 800-90A's largest reseed_interval).
uint64_t reseed_interval_arg(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) throw_invalid(std::string(name) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 1 && number <= static_cast<double>(drbg::CtrDrbg::kMaxReseedInterval)) ||
      std::floor(number) != number) {
    throw_invalid(std::string(name) + " must be an integer from 1 to 2^48");
  }
  return static_cast<uint64_t>(number);
}

// randomFill(out: Uint8Array, additional: Uint8Array | null): void
Napi::Value random_fill(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto [out, length] = output_buffer_arg(info, 0, "out");
    Bytes additional = optional_buffer_arg(info, 1, "additional");
    random::generate_with_additional_input(out, length, additional.data, additional.size);
    return info.Env().Undefined();
  });
}

// randomReseed(additional: Uint8Array | null): void
Napi::Value random_reseed(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Bytes additional = optional_buffer_arg(info, 0, "additional");
    random::reseed(additional.data, additional.size);
    return info.Env().Undefined();
  });
}

Napi::Object source_status_object(Napi::Env env, const entropy::SourceStatus& source) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("name", source.name);
  object.Set("hardware", source.hardware);
  object.Set("available", source.available);
  object.Set("inService", source.in_service);
  object.Set("failure", source.failure.empty() ? env.Null() : Napi::String::New(env, source.failure));
  object.Set("bytesDrawn", static_cast<double>(source.bytes_drawn));
  object.Set("retries", static_cast<double>(source.retries));
  object.Set("fallbacks", static_cast<double>(source.fallbacks));
  object.Set("healthFailures", static_cast<double>(source.health_failures));
  object.Set("minEntropy", source.min_entropy);
  object.Set("seedCredit", source.seed_credit);
  object.Set("rctCutoff", source.rct_cutoff);
  object.Set("aptCutoff", source.apt_cutoff);
  return object;
}

// randomStatus(): RandomStatusBinding
Napi::Value random_status(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    random::Status status = random::status();
    Napi::Object object = Napi::Object::New(env);
    object.Set("activeSource", status.active_source ? Napi::Value(Napi::String::New(env, *status.active_source))
                                                    : env.Null());
    object.Set("hardware", status.hardware);
    object.Set("seeded", status.seeded);
    object.Set("predictionResistance", status.prediction_resistance);
    object.Set("reseedInterval", static_cast<double>(status.reseed_interval));
    object.Set("instantiations", static_cast<double>(status.instantiations));
    object.Set("reseeds", static_cast<double>(status.reseeds));
    object.Set("generateCalls", static_cast<double>(status.generate_calls));
    object.Set("bytesGenerated", static_cast<double>(status.bytes_generated));
    object.Set("healthFailures", static_cast<double>(status.health_failures));
    Napi::Array order = Napi::Array::New(env, status.source_order.size());
    for (uint32_t i = 0; i < status.source_order.size(); ++i) order.Set(i, status.source_order[i]);
    object.Set("sourceOrder", order);
    object.Set("configurationError", status.configuration_error.empty()
                                         ? env.Null()
                                         : Napi::Value(Napi::String::New(env, status.configuration_error)));
    Napi::Array sources = Napi::Array::New(env, status.sources.size());
    for (uint32_t i = 0; i < status.sources.size(); ++i) sources.Set(i, source_status_object(env, status.sources[i]));
    object.Set("sources", sources);
    return object;
  });
}

std::vector<std::string> names_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsArray()) throw_invalid(std::string(name) + " must be an array of entropy source names");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> names;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    Napi::Value element = array.Get(i);
    if (!element.IsString()) throw_invalid(std::string(name) + " must be an array of entropy source names");
    names.push_back(element.As<Napi::String>().Utf8Value());
  }
  return names;
}

// randomConfigure(sources: string[], predictionResistance: boolean, reseedInterval: number): void
Napi::Value random_configure(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    std::vector<std::string> names = names_arg(info, 0, "sources");
    bool prediction_resistance = bool_arg(info, 1, "predictionResistance");
    uint64_t reseed_interval = reseed_interval_arg(info[2], "reseedInterval");
    random::configure(names, prediction_resistance, reseed_interval);
    return info.Env().Undefined();
  });
}

// randomUseReplaySourceForTesting(pattern: Uint8Array, then: string[]): void
Napi::Value random_use_replay_source_for_testing(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Bytes pattern = buffer_arg(info, 0, "pattern");
    std::vector<std::string> then = names_arg(info, 1, "then");
    random::use_replay_source_for_testing(pattern.data, pattern.size, then);
    return info.Env().Undefined();
  });
}

// Marks CtrDrbg objects, so a look-alike `this` is refused instead of unwrapped.
constexpr napi_type_tag kCtrDrbgTag = {0x6873'6d6b'6974'6472ULL, 0x6267'6374'7264'0001ULL};

// new CtrDrbg(keyLength: 16 | 24 | 32, useDerivationFunction: boolean): the bare SP 800-90A
// mechanism, for known-answer tests and deterministic test fixtures. Never seeded by itself.
class CtrDrbgWrap : public Napi::ObjectWrap<CtrDrbgWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "CtrDrbg",
                       {
                           InstanceMethod<&CtrDrbgWrap::instantiate>("instantiate"),
                           InstanceMethod<&CtrDrbgWrap::reseed>("reseed"),
                           InstanceMethod<&CtrDrbgWrap::generate>("generate"),
                           InstanceMethod<&CtrDrbgWrap::uninstantiate>("uninstantiate"),
                           InstanceAccessor<&CtrDrbgWrap::reseed_counter>("reseedCounter"),
                           InstanceAccessor<&CtrDrbgWrap::instantiated>("instantiated"),
                           InstanceAccessor<&CtrDrbgWrap::reseed_interval, &CtrDrbgWrap::set_reseed_interval>(
                               "reseedInterval"),
                       });
  }

  explicit CtrDrbgWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CtrDrbgWrap>(info) {
    guarded(info, [&] {
      uint32_t key_length = uint32_arg(info, 0, "keyLength");
      bool use_df = bool_arg(info, 1, "useDerivationFunction");
      drbg_ = std::make_unique<drbg::CtrDrbg>(key_length, use_df);
    });
    info.This().As<Napi::Object>().TypeTag(&kCtrDrbgTag);
  }

 private:
  // Every member, accessors included (check_receiver says why), before touching the DRBG.
  static void check_this(const Napi::CallbackInfo& info) {
    check_receiver(info, kCtrDrbgTag, "a CtrDrbg");
  }

  // instantiate(entropy: Uint8Array, nonce: Uint8Array | null, personalization: Uint8Array | null): void
  Napi::Value instantiate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      Bytes entropy = buffer_arg(info, 0, "entropy");
      Bytes nonce = optional_buffer_arg(info, 1, "nonce");
      Bytes personalization = optional_buffer_arg(info, 2, "personalization");
      drbg_->instantiate(entropy.data, entropy.size, nonce.data, nonce.size, personalization.data,
                         personalization.size);
      return info.Env().Undefined();
    });
  }

  // reseed(entropy: Uint8Array, additional: Uint8Array | null): void
  Napi::Value reseed(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      Bytes entropy = buffer_arg(info, 0, "entropy");
      Bytes additional = optional_buffer_arg(info, 1, "additional");
      drbg_->reseed(entropy.data, entropy.size, additional.data, additional.size);
      return info.Env().Undefined();
    });
  }

  // generate(out: Uint8Array, additional: Uint8Array | null): void. Throws ERR_NATIVE_ENTROPY
  // when not instantiated or when reseed_counter has passed reseedInterval.
  Napi::Value generate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      auto [out, length] = output_buffer_arg(info, 0, "out");
      Bytes additional = optional_buffer_arg(info, 1, "additional");
      if (drbg_->generate(out, length, additional.data, additional.size) == drbg::GenerateResult::ReseedRequired) {
        throw Error(ErrorCode::Entropy, "CTR_DRBG reseed required: reseed_counter exceeds reseed_interval");
      }
      return info.Env().Undefined();
    });
  }

  Napi::Value uninstantiate(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      drbg_->uninstantiate();
      return info.Env().Undefined();
    });
  }

  Napi::Value reseed_counter(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Number::New(info.Env(), static_cast<double>(drbg_->reseed_counter()));
    });
  }

  Napi::Value instantiated(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Boolean::New(info.Env(), drbg_->instantiated());
    });
  }

  Napi::Value reseed_interval(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Number::New(info.Env(), static_cast<double>(drbg_->reseed_interval()));
    });
  }

  void set_reseed_interval(const Napi::CallbackInfo& info, const Napi::Value& value) {
    guarded(info, [&] {
      check_this(info);
      drbg_->set_reseed_interval(reseed_interval_arg(value, "reseedInterval"));
    });
  }

  std::unique_ptr<drbg::CtrDrbg> drbg_;
};

}  // namespace

void init_random(Napi::Env env, Napi::Object exports) {
  exports.Set("randomFill", Napi::Function::New(env, random_fill, "randomFill"));
  exports.Set("randomReseed", Napi::Function::New(env, random_reseed, "randomReseed"));
  exports.Set("randomStatus", Napi::Function::New(env, random_status, "randomStatus"));
  exports.Set("randomConfigure", Napi::Function::New(env, random_configure, "randomConfigure"));
  exports.Set("randomUseReplaySourceForTesting",
              Napi::Function::New(env, random_use_replay_source_for_testing, "randomUseReplaySourceForTesting"));
  exports.Set("CtrDrbg", CtrDrbgWrap::define(env));
}

}  // namespace hsmkit::binding
