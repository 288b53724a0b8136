// N-API glue for the audit chain (audit_chain.h). Shapes are checked in src/crypto/audit-chain.ts
// first; the checks here keep the native side safe when called directly.
#include <string>

#include "audit_chain.h"
#include "binding/addon.h"

namespace hsmkit::binding {
namespace {

// auditChain(previous, framed, count, firstSeq, bodiesOut, hashesOut) -> bytes written to bodiesOut
Napi::Value audit_chain(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Bytes previous = buffer_arg(info, 0, "previous");
    if (previous.size != kChainHashSize) throw_invalid("previous must be a 32-byte chain value");
    Bytes framed = buffer_arg(info, 1, "framed");
    uint32_t count = uint32_arg(info, 2, "count");
    if (info.Length() <= 3 || !info[3].IsNumber()) throw_invalid("firstSeq must be a number");
    double first = info[3].As<Napi::Number>().DoubleValue();
    // seq values stay below 2^53 (JavaScript's safe integers, as the store reads them back).
    constexpr double kMaxSeq = 9007199254740991.0;
    if (!(first >= 1) || first != static_cast<double>(static_cast<uint64_t>(first)) || first + count > kMaxSeq) {
      throw_invalid("firstSeq must be an integer in [1, 2^53 - count)");
    }
    auto [bodies, bodies_cap] = output_buffer_arg(info, 4, "bodiesOut");
    auto [hashes, hashes_cap] = output_buffer_arg(info, 5, "hashesOut");
    size_t written = chain_records(previous.data, framed.data, framed.size, count, static_cast<uint64_t>(first), bodies, bodies_cap,
                                   hashes, hashes_cap);
    return Napi::Number::New(info.Env(), static_cast<double>(written));
  });
}

template <typename T>
std::pair<const T*, size_t> typed_array_arg(const Napi::CallbackInfo& info, size_t index, const char* name, napi_typedarray_type want) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), info[index], &type, &length, &data, nullptr, nullptr) != napi_ok || type != want) {
    throw_invalid(std::string(name) + " has the wrong type");
  }
  return {static_cast<const T*>(data), length};
}

// auditFrame(fields Uint32Array, times Float64Array, strs Uint8Array, offsets Uint32Array, count) -> Buffer
Napi::Value audit_frame(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto [fields, fields_len] = typed_array_arg<uint32_t>(info, 0, "fields", napi_uint32_array);
    auto [times, times_len] = typed_array_arg<double>(info, 1, "times", napi_float64_array);
    Bytes strs = buffer_arg(info, 2, "strs");
    auto [offsets, offsets_len] = typed_array_arg<uint32_t>(info, 3, "offsets", napi_uint32_array);
    uint32_t count = uint32_arg(info, 4, "count");
    if (fields_len / kFrameFields < count || times_len < count) throw_invalid("audit records: fewer fields or times than records");
    if (offsets_len == 0) throw_invalid("audit records: offsets must have strings + 1 entries");
    SealedRecords records{fields, times, count, strs.data, strs.size, offsets, offsets_len - 1};
    size_t size = frame_records_size(records);
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(info.Env(), size);
    frame_records(records, out.Data(), size);
    return out;
  });
}

}  // namespace

void init_audit_chain(Napi::Env env, Napi::Object exports) {
  exports.Set("auditChain", Napi::Function::New(env, audit_chain, "auditChain"));
  exports.Set("auditFrame", Napi::Function::New(env, audit_frame, "auditFrame"));
}

}  // namespace hsmkit::binding
