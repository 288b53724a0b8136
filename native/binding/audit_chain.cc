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

}  // namespace

void init_audit_chain(Napi::Env env, Napi::Object exports) {
  exports.Set("auditChain", Napi::Function::New(env, audit_chain, "auditChain"));
}

}  // namespace hsmkit::binding
