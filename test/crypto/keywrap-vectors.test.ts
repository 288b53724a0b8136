// Every Wycheproof KW (RFC 3394) and KWP (RFC 5649) vector through the native core.
import test from "ava";
import { isNativeError } from "../../src/crypto/errors.js";
import { importKey } from "../../src/crypto/keys.js";
import { keyUnwrap, keyUnwrapKey, keyWrap, type KeyWrapMode } from "../../src/crypto/keywrap.js";
import { loadKeywrap, type KeywrapVector } from "../vectors/wycheproof.js";

const files: Array<[KeyWrapMode, string, number]> = [
  ["kw", "aes_wrap_test.json", 165],
  ["kwp", "aes_kwp_test.json", 254],
];

const label = (v: KeywrapVector): string => `tcId ${v.tcId} (${v.flags.join(",")}; ${v.comment})`;

/** Either refusal is right for an invalid vector: a length no wrap produces, or a failed integrity check. */
const rejected = (error: unknown): boolean =>
  isNativeError(error, "ERR_NATIVE_UNWRAP") || isNativeError(error, "ERR_NATIVE_INVALID_ARGUMENT");

for (const [mode, file, total] of files) {
  const vectors = loadKeywrap(file);

  test(`${file}: all ${total} vectors present`, (t) => {
    t.is(vectors.length, total);
  });

  test(`${file}: valid vectors wrap to exactly ct and unwrap to msg (as bytes and into a key slot)`, (t) => {
    const failures: string[] = [];
    const valid = vectors.filter((v) => v.result === "valid");
    for (const v of valid) {
      const kek = importKey(v.key);
      try {
        if (!keyWrap(kek, mode, v.msg).equals(v.ct)) failures.push(label(v) + ": wrap differs");
        if (!keyUnwrap(kek, mode, v.ct).equals(v.msg)) failures.push(label(v) + ": unwrap differs");
        const slot = keyUnwrapKey(kek, mode, v.ct);
        if (!slot.exportBytes().equals(v.msg)) failures.push(label(v) + ": unwrap into a slot differs");
        slot.destroy();
      } catch (error) {
        failures.push(label(v) + ": threw " + String(error));
      }
      kek.destroy();
    }
    t.log(`ran ${valid.length} valid ${mode.toUpperCase()} vectors`);
    t.true(valid.length > 0);
    t.deepEqual(failures, []);
  });

  test(`${file}: invalid vectors are rejected on unwrap, and inputs KW cannot take are refused on wrap`, (t) => {
    const failures: string[] = [];
    const invalid = vectors.filter((v) => v.result === "invalid");
    for (const v of invalid) {
      const kek = importKey(v.key);
      try {
        keyUnwrap(kek, mode, v.ct);
        failures.push(label(v) + ": unwrap accepted");
      } catch (error) {
        if (!rejected(error)) failures.push(label(v) + ": unwrap wrong error " + String(error));
      }
      // WrongDataSize / EmptyKey / ShortKey: the message itself is one KW must not wrap.
      if (v.flags.some((f) => ["WrongDataSize", "EmptyKey", "ShortKey"].includes(f))) {
        try {
          keyWrap(kek, mode, v.msg);
          failures.push(label(v) + ": wrap of an unwrappable size accepted");
        } catch (error) {
          if (!isNativeError(error, "ERR_NATIVE_INVALID_ARGUMENT")) failures.push(label(v) + ": wrap wrong error " + String(error));
        }
      }
      kek.destroy();
    }
    t.log(`ran ${invalid.length} invalid ${mode.toUpperCase()} vectors`);
    t.true(invalid.length > 0);
    t.deepEqual(failures, []);
  });

  // "acceptable" exists only for KW: ShortKey, an 8-byte key that RFC 3394 §2 would wrap as one
  // AES block but SP 800-38F does not define. We follow SP 800-38F (and OpenSSL): KW needs at
  // least two semiblocks, so we refuse to wrap 8 bytes and refuse to unwrap a 16-byte KW input.
  test(`${file}: acceptable vectors follow our documented choice (SP 800-38F: no 8-byte KW)`, (t) => {
    const acceptable = vectors.filter((v) => v.result === "acceptable");
    for (const v of acceptable) {
      t.deepEqual(v.flags, ["ShortKey"], label(v));
      const kek = importKey(v.key);
      t.throws(() => keyWrap(kek, mode, v.msg), { code: "ERR_NATIVE_INVALID_ARGUMENT" }, label(v));
      t.throws(() => keyUnwrap(kek, mode, v.ct), { code: "ERR_NATIVE_INVALID_ARGUMENT" }, label(v));
      kek.destroy();
    }
    t.log(`ran ${acceptable.length} acceptable ${mode.toUpperCase()} vectors`);
    t.is(acceptable.length, mode === "kw" ? 3 : 0);
  });
}
