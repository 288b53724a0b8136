// KW/KWP beyond the vectors: differential against node:crypto, key-slot wrap/unwrap, errors.
import test from "ava";
import fc from "fast-check";
import { createCipheriv, randomBytes } from "node:crypto";
import { MAX_KEY_BYTES, generateKey, importKey } from "../../src/crypto/keys.js";
import { keyUnwrap, keyUnwrapKey, keyWrap, keyWrapKey } from "../../src/crypto/keywrap.js";

// RFC 3394 §2.2.3.1 and RFC 5649 §3 default initial values, which node:crypto needs spelled out.
const KW_IV = Buffer.from("a6a6a6a6a6a6a6a6", "hex");
const KWP_IV = Buffer.from("a65959a6", "hex");

function nodeWrap(kek: Buffer, padded: boolean, data: Buffer): Buffer {
  const name = `id-aes${kek.length * 8}-wrap${padded ? "-pad" : ""}`;
  const cipher = createCipheriv(name, kek, padded ? KWP_IV : KW_IV);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

const kekBytes = fc.constantFrom(16, 24, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

test("KW equals node:crypto id-aesN-wrap for random KEKs and whole-semiblock inputs", (t) => {
  fc.assert(
    fc.property(kekBytes, fc.integer({ min: 2, max: 128 }), (rawKek, semiblocks) => {
      const kekBuffer = Buffer.from(rawKek);
      const data = randomBytes(semiblocks * 8);
      const kek = importKey(kekBuffer);
      const wrapped = keyWrap(kek, "kw", data);
      const ok = wrapped.equals(nodeWrap(kekBuffer, false, data)) && keyUnwrap(kek, "kw", wrapped).equals(data);
      kek.destroy();
      return ok;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("KWP equals node:crypto id-aesN-wrap-pad for random KEKs and every input length 1..300", (t) => {
  fc.assert(
    fc.property(kekBytes, fc.integer({ min: 1, max: 300 }), (rawKek, length) => {
      const kekBuffer = Buffer.from(rawKek);
      const data = randomBytes(length);
      const kek = importKey(kekBuffer);
      const wrapped = keyWrap(kek, "kwp", data);
      const ok = wrapped.equals(nodeWrap(kekBuffer, true, data)) && keyUnwrap(kek, "kwp", wrapped).equals(data);
      kek.destroy();
      return ok;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("RFC 3394 §4.6: 256-bit key wrapped under a 256-bit KEK", (t) => {
  const kek = importKey(Buffer.from("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "hex"));
  const data = Buffer.from("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F", "hex");
  const expected = Buffer.from("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21", "hex");
  t.true(keyWrap(kek, "kw", data).equals(expected));
});

test("RFC 5649 §6: 20-byte and 7-byte keys under a 192-bit KEK", (t) => {
  const kek = importKey(Buffer.from("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", "hex"));
  t.is(keyWrap(kek, "kwp", Buffer.from("c37b7e6492584340bed12207808941155068f738", "hex")).toString("hex"),
    "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
  t.is(keyWrap(kek, "kwp", Buffer.from("466f7250617369", "hex")).toString("hex"), "afbeb0f07dfbf5419200f2ccb50bb24f");
});

test("a key wraps and unwraps slot to slot without its bytes entering JavaScript", (t) => {
  const kek = generateKey(32);
  const key = generateKey(32);
  for (const mode of ["kw", "kwp"] as const) {
    const wrapped = keyWrapKey(kek, mode, key);
    t.is(wrapped.length, 40);
    const unwrapped = keyUnwrapKey(kek, mode, wrapped);
    t.is(unwrapped.length, 32);
    t.true(unwrapped.exportBytes().equals(key.exportBytes()));
  }
  const odd = importKey(randomBytes(20));
  t.throws(() => keyWrapKey(kek, "kw", odd), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.is(keyUnwrapKey(kek, "kwp", keyWrapKey(kek, "kwp", odd)).length, 20);
});

test("any flipped bit makes unwrap fail with the one opaque error", (t) => {
  const kek = generateKey(32);
  for (const mode of ["kw", "kwp"] as const) {
    const wrapped = keyWrap(kek, mode, randomBytes(32));
    for (let bit = 0; bit < wrapped.length * 8; bit++) {
      const bad = Buffer.from(wrapped);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const error = t.throws(() => keyUnwrap(kek, mode, bad), { code: "ERR_NATIVE_UNWRAP" });
      t.is(error?.message, "key unwrap failed: integrity check");
      t.throws(() => keyUnwrapKey(kek, mode, bad), { code: "ERR_NATIVE_UNWRAP" });
    }
  }
});

test("lengths KW/KWP cannot take are argument errors; unknown modes and destroyed KEKs are refused", (t) => {
  const kek = generateKey(32);
  const invalid = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  t.throws(() => keyWrap(kek, "kw", Buffer.alloc(0)), invalid);
  t.throws(() => keyWrap(kek, "kw", Buffer.alloc(8)), invalid);
  t.throws(() => keyWrap(kek, "kw", Buffer.alloc(17)), invalid);
  t.throws(() => keyWrap(kek, "kwp", Buffer.alloc(0)), invalid);
  t.throws(() => keyUnwrap(kek, "kw", Buffer.alloc(16)), invalid);
  t.throws(() => keyUnwrap(kek, "kw", Buffer.alloc(25)), invalid);
  t.throws(() => keyUnwrap(kek, "kwp", Buffer.alloc(8)), invalid);
  t.throws(() => keyWrap(kek, "kwx" as "kw", Buffer.alloc(16)), { code: "ERR_INVALID_ARG_VALUE" });
  t.throws(() => keyWrap(importKey(randomBytes(31)), "kw", Buffer.alloc(16)), invalid);
  kek.destroy();
  t.throws(() => keyWrap(kek, "kw", Buffer.alloc(16)), { code: "ERR_NATIVE_KEY_DESTROYED" });
});

test("a failed unwrap writes nothing past its output (OpenSSL cleanses in_len bytes; found by the keywrap fuzzer)", (t) => {
  const kek = importKey(Buffer.alloc(32, 0x11));
  for (const mode of ["kw", "kwp"] as const) {
    for (const length of [24, 40, 48, 64]) {
      const out = Buffer.alloc(length, 0xcc);
      t.throws(() => keyUnwrap(kek, mode, Buffer.alloc(length, 0x5c), out.subarray(0, length - 8)), { code: "ERR_NATIVE_UNWRAP" });
      t.true(out.subarray(length - 8).equals(Buffer.alloc(8, 0xcc)), `${mode} ${length}: bytes past the output untouched`);
    }
  }
  // A neighbouring key in secure memory keeps its bytes however many unwraps fail beside it.
  const neighbours = Array.from({ length: 64 }, (_, i) => importKey(Buffer.alloc(32, i + 1)));
  for (let i = 0; i < 500; i++) t.throws(() => keyUnwrapKey(kek, "kwp", Buffer.alloc(40, 0x5c)), { code: "ERR_NATIVE_UNWRAP" });
  neighbours.forEach((key, i) => t.true(key.exportBytes().equals(Buffer.alloc(32, i + 1)), `neighbour ${i} intact`));
});

test("unwrapping into a key slot takes keys up to MAX_KEY_BYTES, as importKey does, and refuses longer ones", (t) => {
  const kek = generateKey(32);
  for (const mode of ["kw", "kwp"] as const) {
    const largest = randomBytes(MAX_KEY_BYTES);
    const slot = keyUnwrapKey(kek, mode, keyWrap(kek, mode, largest));
    t.true(slot.exportBytes().equals(largest), `${mode}: ${MAX_KEY_BYTES} bytes`);
    slot.destroy();
    // Bytes of any length still unwrap to bytes; only a key slot has the bound.
    const over = MAX_KEY_BYTES + (mode === "kw" ? 8 : 1);
    const longer = keyWrap(kek, mode, randomBytes(over));
    t.is(keyUnwrap(kek, mode, longer).length, over);
    t.throws(() => keyUnwrapKey(kek, mode, longer), { code: "ERR_NATIVE_INVALID_ARGUMENT", message: /more than the 8192 bytes a key slot holds/ }, mode);
  }
  t.throws(() => importKey(randomBytes(MAX_KEY_BYTES + 1)), { code: "ERR_OUT_OF_RANGE" });
});
