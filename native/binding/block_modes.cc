// N-API glue for the AES block modes (block_modes.h): single-part calls that use the key slot's
// prepared contexts, and AesOperation, the multi-part operation object. Shapes and ranges are
// checked in src/crypto/modes.ts first; the checks here keep the native side safe when called
// directly. Modes: 0 ECB, 1 CBC, 2 CBC-PAD, 3 CTR.
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "binding/addon.h"
#include "block_modes.h"
#include "keys.h"

namespace hsmkit::binding {
namespace {

// Marks AesOperation objects, so a look-alike `this` is refused instead of unwrapped.
constexpr napi_type_tag kAesOperationTag = {0x6873'6d6b'6974'6165ULL, 0x736f'7065'7261'0001ULL};

void check_output(size_t have, size_t need) {
  if (have < need) {
    throw_invalid("output buffer holds " + std::to_string(have) + " bytes but " + std::to_string(need) +
                  " are needed");
  }
}

// A byte count: a whole number from 0 to 2^53.
size_t length_arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) throw_invalid(std::string(name) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0 && number <= 9007199254740992.0) || std::floor(number) != number) {
    throw_invalid(std::string(name) + " must be an integer from 0 to 2^53");
  }
  return static_cast<size_t>(number);
}

// (…, iv: Uint8Array | null, counterBits: number, …)
BlockModeParams params_arg(const Napi::CallbackInfo& info, size_t iv_index, size_t bits_index) {
  Bytes iv = optional_buffer_arg(info, iv_index, "iv");
  BlockModeParams params;
  params.iv = iv.data;
  params.iv_len = iv.size;
  params.counter_bits = uint32_arg(info, bits_index, "counterBits");
  return params;
}

// aesOutputSize(mode, encrypt, inLength) -> bytes a single-part call writes (CBC-PAD decryption:
// at most). ERR_NATIVE_INVALID_ARGUMENT for a length the mode cannot take.
Napi::Value aes_output_size(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    BlockMode mode = block_mode_from(uint32_arg(info, 0, "mode"));
    bool encrypt = bool_arg(info, 1, "encrypt");
    size_t in_len = length_arg(info, 2, "inLength");
    return Napi::Number::New(info.Env(), static_cast<double>(block_mode_output_size(mode, encrypt, in_len)));
  });
}

// aesCrypt(key, mode, encrypt, iv | null, counterBits, data, out) -> bytes written. out needs
// aesOutputSize(mode, encrypt, data.length) bytes and may be data itself (not a part of it).
Napi::Value aes_crypt(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    BlockMode mode = block_mode_from(uint32_arg(info, 1, "mode"));
    bool encrypt = bool_arg(info, 2, "encrypt");
    BlockModeParams params = params_arg(info, 3, 4);
    Bytes data = buffer_arg(info, 5, "data");
    auto [out, out_len] = output_buffer_arg(info, 6, "out");
    check_block_mode_params(mode, params);
    check_output(out_len, block_mode_output_size(mode, encrypt, data.size));
    if (out != data.data && overlap(out, out_len, data.data, data.size)) {
      throw_invalid("out must be the input buffer itself or not overlap it");
    }
    AesModeContext& cipher = key.material().aes_mode(chaining_of(mode), encrypt);
    size_t written = block_mode_crypt(cipher, mode, params, data.data, data.size, out);
    return Napi::Number::New(info.Env(), static_cast<double>(written));
  });
}

// new AesOperation(key, mode, encrypt, iv | null, counterBits): one multi-part encryption or
// decryption. It holds its own copy of the key schedule and a reference to the key material, so
// destroying the key slot meanwhile is safe and the operation can finish; the reference is
// dropped when the operation ends (final, abort or an error), so the slot's bytes are cleansed
// then if the slot was destroyed.
class AesOperation : public Napi::ObjectWrap<AesOperation> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "AesOperation",
                       {
                           InstanceMethod<&AesOperation::update>("update"),
                           InstanceMethod<&AesOperation::finish>("final"),
                           InstanceMethod<&AesOperation::output_size>("outputSize"),
                           InstanceMethod<&AesOperation::final_output_size>("finalOutputSize"),
                           InstanceMethod<&AesOperation::abort>("abort"),
                           InstanceAccessor<&AesOperation::ended>("ended"),
                       });
  }

  explicit AesOperation(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AesOperation>(info) {
    guarded(info, [&] {
      KeySlot& key = key_arg(info, 0, "key");
      BlockMode mode = block_mode_from(uint32_arg(info, 1, "mode"));
      bool encrypt = bool_arg(info, 2, "encrypt");
      BlockModeParams params = params_arg(info, 3, 4);
      check_block_mode_params(mode, params);
      material_ = key.share();
      stream_ = std::make_unique<BlockModeStream>(material_->aes_mode(chaining_of(mode), encrypt), mode, params);
    });
    info.This().As<Napi::Object>().TypeTag(&kAesOperationTag);
  }

 private:
  // Drops the key reference once the stream has ended, however the call leaves.
  struct ReleaseWhenEnded {
    AesOperation* self;
    ~ReleaseWhenEnded() {
      if (self->stream_->ended()) self->material_.reset();
    }
  };

  static void check_this(const Napi::CallbackInfo& info) {
    check_receiver(info, kAesOperationTag, "an AesOperation");
  }

  // update(data, out) -> bytes written (exactly outputSize(data.length)); out must not overlap data.
  Napi::Value update(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      Bytes data = buffer_arg(info, 0, "data");
      auto [out, out_len] = output_buffer_arg(info, 1, "out");
      size_t need = stream_->update_size(data.size);
      check_output(out_len, need);
      if (overlap(out, need, data.data, data.size)) throw_invalid("out must not overlap data");
      ReleaseWhenEnded release{this};
      size_t written = stream_->update(data.data, data.size, out);
      return Napi::Number::New(info.Env(), static_cast<double>(written));
    });
  }

  // final(out) -> bytes written; out needs finalOutputSize() bytes. Ends the operation.
  Napi::Value finish(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      auto [out, out_len] = output_buffer_arg(info, 0, "out");
      check_output(out_len, stream_->final_size());
      ReleaseWhenEnded release{this};
      size_t written = stream_->finish(out);
      return Napi::Number::New(info.Env(), static_cast<double>(written));
    });
  }

  // outputSize(inLength) -> bytes update() writes for inLength more bytes.
  Napi::Value output_size(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      size_t in_len = length_arg(info, 0, "inLength");
      return Napi::Number::New(info.Env(), static_cast<double>(stream_->update_size(in_len)));
    });
  }

  // finalOutputSize() -> bytes final() needs (CBC-PAD decryption: an upper bound, 15).
  Napi::Value final_output_size(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Number::New(info.Env(), static_cast<double>(stream_->final_size()));
    });
  }

  // abort(): ends the operation without output; harmless when it has ended already.
  Napi::Value abort(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      ReleaseWhenEnded release{this};
      stream_->abort();
      return info.Env().Undefined();
    });
  }

  Napi::Value ended(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Boolean::New(info.Env(), stream_->ended());
    });
  }

  std::shared_ptr<KeyMaterial> material_;
  std::unique_ptr<BlockModeStream> stream_;
};

}  // namespace

void init_block_modes(Napi::Env env, Napi::Object exports) {
  exports.Set("aesOutputSize", Napi::Function::New(env, aes_output_size, "aesOutputSize"));
  exports.Set("aesCrypt", Napi::Function::New(env, aes_crypt, "aesCrypt"));
  exports.Set("AesOperation", AesOperation::define(env));
}

}  // namespace hsmkit::binding
