#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aead.h"
#include "binding/addon.h"
#include "keys.h"

namespace hsmkit::binding {
namespace {

void check_output(size_t have, size_t need) {
  if (have < need) {
    throw_invalid("output buffer holds " + std::to_string(have) + " bytes but " + std::to_string(need) +
                  " are needed");
  }
}

// GCM's keystream runs forward over the input, so an output that starts inside the input
// overwrites bytes before they are read: the seal comes out wrong, the open fails its tag. In
// place (the same start) is fine; the IV and AAD are consumed before anything is written.
void check_in_place_or_disjoint(const uint8_t* out, size_t written, Bytes input) {
  if (out != input.data && overlap(out, written, input.data, input.size)) {
    throw_invalid("out must be the input buffer itself or not overlap it");
  }
}

// gcmSeal(key, iv, aad|null, plaintext, tagLength, out) -> bytes written
Napi::Value gcm_seal(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    Bytes iv = buffer_arg(info, 1, "iv");
    Bytes aad = optional_buffer_arg(info, 2, "aad");
    Bytes plaintext = buffer_arg(info, 3, "plaintext");
    uint32_t tag_len = uint32_arg(info, 4, "tagLength");
    auto [out, out_len] = output_buffer_arg(info, 5, "out");
    check_output(out_len, plaintext.size + tag_len);
    check_in_place_or_disjoint(out, plaintext.size + tag_len, plaintext);
    key.material().gcm(true).seal(iv.data, iv.size, aad.data, aad.size, plaintext.data, plaintext.size, tag_len, out);
    return Napi::Number::New(info.Env(), static_cast<double>(plaintext.size + tag_len));
  });
}

// gcmOpen(key, iv, aad|null, sealed, tagLength, out) -> bytes written; ERR_NATIVE_AUTH_TAG on mismatch
Napi::Value gcm_open(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    Bytes iv = buffer_arg(info, 1, "iv");
    Bytes aad = optional_buffer_arg(info, 2, "aad");
    Bytes sealed = buffer_arg(info, 3, "sealed");
    uint32_t tag_len = uint32_arg(info, 4, "tagLength");
    auto [out, out_len] = output_buffer_arg(info, 5, "out");
    check_gcm_parameters(iv.size, tag_len);
    if (sealed.size < tag_len) throw_invalid("GCM input is shorter than its tag");
    check_output(out_len, sealed.size - tag_len);
    check_in_place_or_disjoint(out, sealed.size - tag_len, sealed);
    if (!key.material().gcm(false).open(iv.data, iv.size, aad.data, aad.size, sealed.data, sealed.size, tag_len, out)) {
      throw Error(ErrorCode::AuthTag, "GCM authentication failed");
    }
    return Napi::Number::New(info.Env(), static_cast<double>(sealed.size - tag_len));
  });
}

struct BatchArgs {
  GcmBatch batch;
  uint8_t* out;
  size_t out_len;
  size_t need;
  // The buffers the batch reads, message by message, while it writes out (and ok).
  Bytes inputs[3];

  // Message i's output lands at another offset than its input, so even out == data would
  // overwrite later messages, IVs or AAD before they are read.
  void check_disjoint(const uint8_t* buffer, size_t length, const char* what) const {
    for (const Bytes& input : inputs) {
      if (overlap(buffer, length, input.data, input.size)) {
        throw_invalid(std::string(what) + " must not overlap the batch's data, IVs or AAD");
      }
    }
  }
};

// (key, ivs, ivLength, aads|null, aadLengths|null, data, lengths, tagLength, out, ...)
BatchArgs batch_args(const Napi::CallbackInfo& info, bool seal) {
  Bytes ivs = buffer_arg(info, 1, "ivs");
  uint32_t iv_len = uint32_arg(info, 2, "ivLength");
  Bytes aads = optional_buffer_arg(info, 3, "aads");
  std::pair<const uint32_t*, size_t> aad_lengths{nullptr, 0};
  if (aads.data != nullptr) aad_lengths = uint32_array_arg(info, 4, "aadLengths");
  Bytes data = buffer_arg(info, 5, "data");
  auto [lengths, count] = uint32_array_arg(info, 6, "lengths");
  uint32_t tag_len = uint32_arg(info, 7, "tagLength");
  auto [out, out_len] = output_buffer_arg(info, 8, "out");
  if (aads.data != nullptr && aad_lengths.second != count) {
    throw_invalid("batch has " + std::to_string(count) + " messages but " + std::to_string(aad_lengths.second) +
                  " AAD lengths");
  }
  GcmBatch batch{ivs.data, iv_len, aads.data, aad_lengths.first, data.data, lengths, count, tag_len};
  size_t need = gcm_batch_output_size(batch, data.size, ivs.size, aads.size, seal);
  check_output(out_len, need);
  BatchArgs args{batch, out, out_len, need, {data, ivs, aads}};
  args.check_disjoint(out, need, "out");
  return args;
}

Napi::Value gcm_seal_batch_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    BatchArgs args = batch_args(info, true);
    gcm_seal_batch(key.material().gcm(true), args.batch, args.out);
    return Napi::Number::New(info.Env(), static_cast<double>(args.need));
  });
}

// ... ok: Uint8Array(count) receives 1 per verified message; returns how many verified.
Napi::Value gcm_open_batch_binding(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    BatchArgs args = batch_args(info, false);
    auto [ok, ok_len] = output_buffer_arg(info, 9, "ok");
    if (ok_len < args.batch.count) throw_invalid("ok must have one byte per message");
    // ok[i] is written after message i is opened, before message i + 1 is read.
    args.check_disjoint(ok, args.batch.count, "ok");
    if (overlap(ok, args.batch.count, args.out, args.need)) throw_invalid("ok must not overlap out");
    size_t verified = gcm_open_batch(key.material().gcm(false), args.batch, args.out, ok);
    return Napi::Number::New(info.Env(), static_cast<double>(verified));
  });
}

// Seal or open on the libuv pool. The worker holds the key material (so destroy() during the
// call cannot pull it away) and references to the input and output Buffers, which the caller
// must not detach or transfer until the promise settles. It builds its own context: the slot's
// prepared contexts belong to the JavaScript thread.
class GcmWorker : public Napi::AsyncWorker {
 public:
  GcmWorker(const Napi::CallbackInfo& info, bool seal)
      : Napi::AsyncWorker(info.Env(), seal ? "hsmkit:gcmSealAsync" : "hsmkit:gcmOpenAsync"),
        deferred_(Napi::Promise::Deferred::New(info.Env())),
        seal_(seal) {
    material_ = key_arg(info, 0, "key").share();
    Bytes iv = buffer_arg(info, 1, "iv");
    Bytes aad = optional_buffer_arg(info, 2, "aad");
    input_ = buffer_arg(info, 3, seal ? "plaintext" : "sealed");
    tag_len_ = uint32_arg(info, 4, "tagLength");
    auto [out, out_len] = output_buffer_arg(info, 5, "out");
    check_gcm_parameters(iv.size, tag_len_);
    if (!seal && input_.size < tag_len_) throw_invalid("GCM input is shorter than its tag");
    result_len_ = seal ? input_.size + tag_len_ : input_.size - tag_len_;
    check_output(out_len, result_len_);
    check_in_place_or_disjoint(out, result_len_, input_);
    out_ = out;
    iv_.assign(iv.data, iv.data + iv.size);
    aad_.assign(aad.data, aad.data + aad.size);
    input_ref_ = Napi::Persistent(info[3].As<Napi::Object>());
    out_ref_ = Napi::Persistent(info[5].As<Napi::Object>());
  }

  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      GcmContext context(material_->data(), material_->size(), seal_);
      if (seal_) {
        context.seal(iv_.data(), iv_.size(), aad_.data(), aad_.size(), input_.data, input_.size, tag_len_, out_);
      } else if (!context.open(iv_.data(), iv_.size(), aad_.data(), aad_.size(), input_.data, input_.size, tag_len_,
                               out_)) {
        error_.emplace(ErrorCode::AuthTag, "GCM authentication failed");
      }
    } catch (const Error& e) {
      error_.emplace(e);
    } catch (const std::bad_alloc&) {
      error_.emplace(ErrorCode::OutOfMemory, "native allocation failed");
    }
  }

  void OnOK() override {
    material_.reset();
    if (error_) {
      deferred_.Reject(make_error(Env(), error_->code(), error_->what()).Value());
    } else {
      deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(result_len_)));
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  bool seal_;
  std::shared_ptr<KeyMaterial> material_;
  std::vector<uint8_t> iv_;
  std::vector<uint8_t> aad_;
  Bytes input_{nullptr, 0};
  uint8_t* out_ = nullptr;
  size_t tag_len_ = 0;
  size_t result_len_ = 0;
  Napi::ObjectReference input_ref_;
  Napi::ObjectReference out_ref_;
  std::optional<Error> error_;
};

Napi::Value gcm_async(const Napi::CallbackInfo& info, bool seal) {
  return guarded(info, [&]() -> Napi::Value {
    auto* worker = new GcmWorker(info, seal);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value gcm_seal_async(const Napi::CallbackInfo& info) { return gcm_async(info, true); }
Napi::Value gcm_open_async(const Napi::CallbackInfo& info) { return gcm_async(info, false); }

// gcmSealCeiling(key, messageLength, iterations): the per-message seal loop entirely in C++,
// no JavaScript boundary per message. Benchmarks time it as the in-process ceiling that
// the single-call and batch paths are compared against.
Napi::Value gcm_seal_ceiling(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    uint32_t length = uint32_arg(info, 1, "messageLength");
    uint32_t iterations = uint32_arg(info, 2, "iterations");
    std::vector<uint8_t> plaintext(length, 0x5a);
    std::vector<uint8_t> out(length + 16);
    uint8_t iv[12] = {0};
    GcmContext& context = key.material().gcm(true);
    for (uint32_t i = 0; i < iterations; i++) {
      iv[8] = static_cast<uint8_t>(i >> 24);
      iv[9] = static_cast<uint8_t>(i >> 16);
      iv[10] = static_cast<uint8_t>(i >> 8);
      iv[11] = static_cast<uint8_t>(i);
      context.seal(iv, sizeof iv, nullptr, 0, plaintext.data(), length, 16, out.data());
    }
    return Napi::Number::New(info.Env(), iterations);
  });
}

}  // namespace

void init_aead(Napi::Env env, Napi::Object exports) {
  exports.Set("gcmSeal", Napi::Function::New(env, gcm_seal, "gcmSeal"));
  exports.Set("gcmOpen", Napi::Function::New(env, gcm_open, "gcmOpen"));
  exports.Set("gcmSealBatch", Napi::Function::New(env, gcm_seal_batch_binding, "gcmSealBatch"));
  exports.Set("gcmOpenBatch", Napi::Function::New(env, gcm_open_batch_binding, "gcmOpenBatch"));
  exports.Set("gcmSealAsync", Napi::Function::New(env, gcm_seal_async, "gcmSealAsync"));
  exports.Set("gcmOpenAsync", Napi::Function::New(env, gcm_open_async, "gcmOpenAsync"));
  exports.Set("gcmSealCeiling", Napi::Function::New(env, gcm_seal_ceiling, "gcmSealCeiling"));
}

}  // namespace hsmkit::binding
