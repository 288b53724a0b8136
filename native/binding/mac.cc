// N-API glue for HMAC (mac.h): single-part sign/verify with the key slot's prepared contexts,
// and HmacOperation, the multi-part operation object. Shapes and ranges are checked in
// src/crypto/hmac.ts first; the checks here keep the native side safe when called directly.
// Hashes: 0 SHA-1, 1 SHA-224, 2 SHA-256, 3 SHA-384, 4 SHA-512.
#include <memory>
#include <string>

#include "binding/addon.h"
#include "keys.h"
#include "mac.h"

namespace hsmkit::binding {
namespace {

// Marks HmacOperation objects, so a look-alike `this` is refused instead of unwrapped.
constexpr napi_type_tag kHmacOperationTag = {0x6873'6d6b'6974'686dULL, 0x6163'6f70'6572'0001ULL};

// hmacSign(key, hash, data, tagLength, out) -> bytes written (tagLength)
Napi::Value hmac_sign(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    HmacHash hash = hmac_hash_from(uint32_arg(info, 1, "hash"));
    Bytes data = buffer_arg(info, 2, "data");
    uint32_t tag_len = uint32_arg(info, 3, "tagLength");
    auto [out, out_len] = output_buffer_arg(info, 4, "out");
    check_hmac_tag_length(hash, tag_len);
    if (out_len < tag_len) {
      throw_invalid("output buffer holds " + std::to_string(out_len) + " bytes but " + std::to_string(tag_len) +
                    " are needed");
    }
    key.material().hmac(hash).sign(data.data, data.size, out, tag_len);
    return Napi::Number::New(info.Env(), tag_len);
  });
}

// hmacVerify(key, hash, data, tag, tagLength) -> boolean; false for a tag of another length.
Napi::Value hmac_verify(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    KeySlot& key = key_arg(info, 0, "key");
    HmacHash hash = hmac_hash_from(uint32_arg(info, 1, "hash"));
    Bytes data = buffer_arg(info, 2, "data");
    Bytes tag = buffer_arg(info, 3, "tag");
    uint32_t tag_len = uint32_arg(info, 4, "tagLength");
    bool good = key.material().hmac(hash).verify(data.data, data.size, tag.data, tag.size, tag_len);
    return Napi::Boolean::New(info.Env(), good);
  });
}

// new HmacOperation(key, hash, tagLength): one multi-part sign or verify. It holds its own copy
// of the keyed state and a reference to the key material (dropped when the operation ends by
// sign, verify, abort or an error), so destroying the key slot meanwhile is safe.
class HmacOperation : public Napi::ObjectWrap<HmacOperation> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "HmacOperation",
                       {
                           InstanceMethod<&HmacOperation::update>("update"),
                           InstanceMethod<&HmacOperation::sign>("sign"),
                           InstanceMethod<&HmacOperation::verify>("verify"),
                           InstanceMethod<&HmacOperation::abort>("abort"),
                           InstanceAccessor<&HmacOperation::tag_length>("tagLength"),
                           InstanceAccessor<&HmacOperation::ended>("ended"),
                       });
  }

  explicit HmacOperation(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HmacOperation>(info) {
    guarded(info, [&] {
      KeySlot& key = key_arg(info, 0, "key");
      HmacHash hash = hmac_hash_from(uint32_arg(info, 1, "hash"));
      uint32_t tag_len = uint32_arg(info, 2, "tagLength");
      check_hmac_tag_length(hash, tag_len);
      material_ = key.share();
      stream_ = std::make_unique<HmacStream>(material_->hmac(hash), tag_len);
    });
    info.This().As<Napi::Object>().TypeTag(&kHmacOperationTag);
  }

 private:
  // Drops the key reference once the stream has ended, however the call leaves.
  struct ReleaseWhenEnded {
    HmacOperation* self;
    ~ReleaseWhenEnded() {
      if (self->stream_->ended()) self->material_.reset();
    }
  };

  static void check_this(const Napi::CallbackInfo& info) {
    check_receiver(info, kHmacOperationTag, "an HmacOperation");
  }

  // update(data): void
  Napi::Value update(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      Bytes data = buffer_arg(info, 0, "data");
      ReleaseWhenEnded release{this};
      stream_->update(data.data, data.size);
      return info.Env().Undefined();
    });
  }

  // sign(out) -> bytes written (tagLength). Ends the operation.
  Napi::Value sign(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      auto [out, out_len] = output_buffer_arg(info, 0, "out");
      stream_->check_open();
      if (out_len < stream_->tag_length()) {
        throw_invalid("output buffer holds " + std::to_string(out_len) + " bytes but " +
                      std::to_string(stream_->tag_length()) + " are needed");
      }
      ReleaseWhenEnded release{this};
      size_t written = stream_->sign(out);
      return Napi::Number::New(info.Env(), static_cast<double>(written));
    });
  }

  // verify(tag) -> boolean. Ends the operation.
  Napi::Value verify(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      Bytes tag = buffer_arg(info, 0, "tag");
      ReleaseWhenEnded release{this};
      return Napi::Boolean::New(info.Env(), stream_->verify(tag.data, tag.size));
    });
  }

  // abort(): ends the operation; harmless when it has ended already.
  Napi::Value abort(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      ReleaseWhenEnded release{this};
      stream_->abort();
      return info.Env().Undefined();
    });
  }

  Napi::Value tag_length(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Number::New(info.Env(), static_cast<double>(stream_->tag_length()));
    });
  }

  Napi::Value ended(const Napi::CallbackInfo& info) {
    return guarded(info, [&]() -> Napi::Value {
      check_this(info);
      return Napi::Boolean::New(info.Env(), stream_->ended());
    });
  }

  std::shared_ptr<KeyMaterial> material_;
  std::unique_ptr<HmacStream> stream_;
};

}  // namespace

void init_mac(Napi::Env env, Napi::Object exports) {
  exports.Set("hmacSign", Napi::Function::New(env, hmac_sign, "hmacSign"));
  exports.Set("hmacVerify", Napi::Function::New(env, hmac_verify, "hmacVerify"));
  exports.Set("HmacOperation", HmacOperation::define(env));
}

}  // namespace hsmkit::binding
