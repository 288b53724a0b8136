// AES-ECB/CBC/CBC-PAD/CTR: NIST SP 800-38A known answers, differential against node:crypto
// (single- and multi-part, every key size), CBC-PAD at every length 0..100 and with every
// kind of bad padding, CTR counters at the edge of their counter bits, and the error model.
import test from "ava";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { addon } from "../../src/crypto/addon.js";
import { generateKey, importKey } from "../../src/crypto/keys.js";
import {
  AES_BLOCK_SIZE, aesDecrypt, aesDecryptInit, aesEncrypt, aesEncryptInit, aesOutputSize,
  type AesMode, type AesModeParams, type AesOperation,
} from "../../src/crypto/modes.js";

const MODES: readonly AesMode[] = ["ecb", "cbc", "cbc-pad", "ctr"];
const hex = (value: string): Buffer => Buffer.from(value.replace(/\s+/g, ""), "hex");

// ---------------------------------------------------------------------------------------------
// NIST SP 800-38A (2001), Appendix F. All examples encrypt the same four-block plaintext; the
// decryption examples (F.1.2, F.1.6, F.2.2, F.2.6, F.5.2, F.5.6) are the same data reversed.
// ---------------------------------------------------------------------------------------------
const SP800_38A = {
  plaintext: hex(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                  30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`),
  key128: hex("2b7e151628aed2a6abf7158809cf4f3c"),
  key256: hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4"),
  iv: hex("000102030405060708090a0b0c0d0e0f"), // F.2: CBC
  counter: hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"), // F.5: initial counter block
};

const KNOWN_ANSWERS: Array<{ section: string; mode: AesMode; key: Buffer; params: AesModeParams; ciphertext: Buffer }> = [
  {
    section: "F.1.1 ECB-AES128", mode: "ecb", key: SP800_38A.key128, params: {},
    ciphertext: hex(`3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf
                     43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4`),
  },
  {
    section: "F.1.5 ECB-AES256", mode: "ecb", key: SP800_38A.key256, params: {},
    ciphertext: hex(`f3eed1bdb5d2a03c064b5a7e3db181f8 591ccb10d410ed26dc5ba74a31362870
                     b6ed21b99ca6f4f9f153e7b1beafed1d 23304b7a39f9f3ff067d8d8f9e24ecc7`),
  },
  {
    section: "F.2.1 CBC-AES128", mode: "cbc", key: SP800_38A.key128, params: { iv: SP800_38A.iv },
    ciphertext: hex(`7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
                     73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7`),
  },
  {
    section: "F.2.5 CBC-AES256", mode: "cbc", key: SP800_38A.key256, params: { iv: SP800_38A.iv },
    ciphertext: hex(`f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
                     39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b`),
  },
  {
    section: "F.5.1 CTR-AES128", mode: "ctr", key: SP800_38A.key128, params: { iv: SP800_38A.counter },
    ciphertext: hex(`874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
                     5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee`),
  },
  {
    section: "F.5.5 CTR-AES256", mode: "ctr", key: SP800_38A.key256, params: { iv: SP800_38A.counter },
    ciphertext: hex(`601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
                     2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6`),
  },
];

for (const kat of KNOWN_ANSWERS) {
  test(`NIST SP 800-38A ${kat.section}: encrypt and decrypt, single-part and block by block`, (t) => {
    const key = importKey(kat.key);
    const { plaintext } = SP800_38A;
    t.true(aesEncrypt(key, kat.mode, plaintext, kat.params).equals(kat.ciphertext), "single-part encrypt");
    t.true(aesDecrypt(key, kat.mode, kat.ciphertext, kat.params).equals(plaintext), "single-part decrypt");
    for (const [direction, input, expected] of [["encrypt", plaintext, kat.ciphertext], ["decrypt", kat.ciphertext, plaintext]] as const) {
      const op = direction === "encrypt" ? aesEncryptInit(key, kat.mode, kat.params) : aesDecryptInit(key, kat.mode, kat.params);
      const parts: Buffer[] = [];
      for (let i = 0; i < input.length; i += AES_BLOCK_SIZE) parts.push(op.update(input.subarray(i, i + AES_BLOCK_SIZE)));
      parts.push(op.final());
      t.true(Buffer.concat(parts).equals(expected), `multi-part ${direction}`);
    }
    if (kat.mode === "ctr") {
      // The counter block ends in ...fcfdfeff: 32 or 64 counter bits leave room for the four
      // blocks and give the same answer; 8 counter bits (0xff) leave room for one block only.
      for (const counterBits of [32, 64, 127]) {
        t.true(aesEncrypt(key, "ctr", plaintext, { ...kat.params, counterBits }).equals(kat.ciphertext), `${counterBits} bits`);
      }
      t.true(aesEncrypt(key, "ctr", plaintext.subarray(0, 16), { ...kat.params, counterBits: 8 }).equals(kat.ciphertext.subarray(0, 16)));
      t.throws(() => aesEncrypt(key, "ctr", plaintext, { ...kat.params, counterBits: 8 }), { code: "ERR_NATIVE_COUNTER_OVERFLOW" });
    }
    key.destroy();
  });
}

// ---------------------------------------------------------------------------------------------
// Differential against node:crypto
// ---------------------------------------------------------------------------------------------
function nodeCrypt(mode: AesMode, key: Buffer, iv: Buffer | null, encrypt: boolean, data: Buffer): Buffer {
  const name = `aes-${key.length * 8}-${mode === "cbc-pad" ? "cbc" : mode}`;
  const cipher = encrypt ? createCipheriv(name, key, mode === "ecb" ? null : iv) : createDecipheriv(name, key, mode === "ecb" ? null : iv);
  cipher.setAutoPadding(mode === "cbc-pad");
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

const keyBytes = fc.constantFrom(16, 24, 32).map((n) => randomBytes(n));

/** A length the mode takes for plaintext: whole blocks for ECB and CBC, anything otherwise. */
function plaintextLength(mode: AesMode, raw: number): number {
  return mode === "ecb" || mode === "cbc" ? raw - (raw % AES_BLOCK_SIZE) : raw;
}

function paramsFor(mode: AesMode, iv: Buffer): AesModeParams {
  return mode === "ecb" ? {} : { iv };
}

test("single-part equals node:crypto for every mode and key size, sizes up to 8 KiB", (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...MODES), keyBytes, fc.integer({ min: 0, max: 8192 }), (mode, raw, rawLength) => {
      const iv = randomBytes(16);
      const plaintext = randomBytes(plaintextLength(mode, rawLength));
      const key = importKey(raw);
      const ours = aesEncrypt(key, mode, plaintext, paramsFor(mode, iv));
      const theirs = nodeCrypt(mode, raw, iv, true, plaintext);
      const back = aesDecrypt(key, mode, ours, paramsFor(mode, iv));
      key.destroy();
      if (!ours.equals(theirs)) throw new Error(`${mode} AES-${raw.length * 8}, ${plaintext.length} bytes: encryption differs from node:crypto`);
      if (!back.equals(plaintext)) throw new Error(`${mode} AES-${raw.length * 8}, ${plaintext.length} bytes: decryption did not round-trip`);
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test("single-part equals node:crypto at large sizes up to 1 MiB", (t) => {
  fc.assert(
    fc.property(fc.constantFrom(...MODES), keyBytes, fc.integer({ min: 65536, max: 1 << 20 }), (mode, raw, rawLength) => {
      const iv = randomBytes(16);
      const plaintext = randomBytes(plaintextLength(mode, rawLength));
      const key = importKey(raw);
      const ours = aesEncrypt(key, mode, plaintext, paramsFor(mode, iv));
      const ok = ours.equals(nodeCrypt(mode, raw, iv, true, plaintext)) && aesDecrypt(key, mode, ours, paramsFor(mode, iv)).equals(plaintext);
      key.destroy();
      return ok;
    }),
    { numRuns: 16 },
  );
  t.pass();
});

/** Runs `op` over `input` cut at `cuts`, checking every update against outputSize() first. */
function runParts(op: AesOperation, input: Buffer, cuts: readonly number[]): Buffer {
  const points = [...new Set(cuts.map((c) => (input.length === 0 ? 0 : c % (input.length + 1))))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const to of [...points, input.length]) {
    const part = input.subarray(from, to);
    const predicted = op.outputSize(part.length);
    const written = op.update(part);
    if (written.length !== predicted) throw new Error(`update wrote ${written.length} bytes, outputSize said ${predicted}`);
    parts.push(written);
    from = to;
  }
  const bound = op.finalOutputSize();
  const last = op.final();
  if (last.length > bound) throw new Error(`final wrote ${last.length} bytes, finalOutputSize said ${bound}`);
  const exact = !(op.mode === "cbc-pad" && op.direction === "decrypt");
  if (exact && last.length !== bound) throw new Error(`final wrote ${last.length} bytes, finalOutputSize said ${bound}`);
  if (!op.ended) throw new Error("final did not end the operation");
  return Buffer.concat([...parts, last]);
}

test("multi-part with random split points equals node:crypto, and outputSize predicts every update", (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(...MODES), keyBytes, fc.integer({ min: 0, max: 2048 }),
      fc.array(fc.nat(), { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 12 }),
      (mode, raw, rawLength, encryptCuts, decryptCuts) => {
        const iv = randomBytes(16);
        const plaintext = randomBytes(plaintextLength(mode, rawLength));
        const key = importKey(raw);
        const ciphertext = runParts(aesEncryptInit(key, mode, paramsFor(mode, iv)), plaintext, encryptCuts);
        const back = runParts(aesDecryptInit(key, mode, paramsFor(mode, iv)), ciphertext, decryptCuts);
        key.destroy();
        if (!ciphertext.equals(nodeCrypt(mode, raw, iv, true, plaintext))) {
          throw new Error(`${mode} AES-${raw.length * 8}, ${plaintext.length} bytes cut at ${encryptCuts.join(",")}: differs from node:crypto`);
        }
        if (!back.equals(plaintext)) throw new Error(`${mode}: multi-part decryption did not round-trip`);
        return true;
      },
    ),
    { numRuns: 500 },
  );
  t.pass();
});

test("CBC-PAD at every length 0..100, every key size: node:crypto's PKCS#7, single- and multi-part", (t) => {
  for (const keyLength of [16, 24, 32]) {
    const raw = randomBytes(keyLength);
    const key = importKey(raw);
    for (let length = 0; length <= 100; length++) {
      const iv = randomBytes(16);
      const plaintext = randomBytes(length);
      const expected = nodeCrypt("cbc-pad", raw, iv, true, plaintext);
      t.is(expected.length, (Math.floor(length / 16) + 1) * 16);
      t.is(aesOutputSize("cbc-pad", "encrypt", length), expected.length);
      t.is(aesOutputSize("cbc-pad", "decrypt", expected.length), expected.length - 1);
      const ours = aesEncrypt(key, "cbc-pad", plaintext, { iv });
      if (!ours.equals(expected)) t.fail(`AES-${keyLength * 8} length ${length}: encryption differs`);
      if (!aesDecrypt(key, "cbc-pad", ours, { iv }).equals(plaintext)) t.fail(`AES-${keyLength * 8} length ${length}: decryption differs`);
      const byteByByte = Array.from({ length }, (_, i) => i);
      if (!runParts(aesEncryptInit(key, "cbc-pad", { iv }), plaintext, byteByByte).equals(expected)) t.fail(`length ${length}: multi-part encryption`);
      const cuts = Array.from({ length: expected.length }, (_, i) => i);
      if (!runParts(aesDecryptInit(key, "cbc-pad", { iv }), ours, cuts).equals(plaintext)) t.fail(`length ${length}: multi-part decryption`);
    }
    key.destroy();
  }
});

// ---------------------------------------------------------------------------------------------
// CTR counter bits (CK_AES_CTR_PARAMS.ulCounterBits)
// ---------------------------------------------------------------------------------------------
/** `nonce` with its low `bits` bits replaced by `value`. */
function counterBlock(nonce: Buffer, bits: number, value: bigint): Buffer {
  const mask = (1n << BigInt(bits)) - 1n;
  const whole = (BigInt("0x" + nonce.toString("hex")) & ~mask) | (value & mask);
  return Buffer.from(whole.toString(16).padStart(32, "0"), "hex");
}

/** CTR by its definition (SP 800-38A §6.5 with the increment of §B.1 on the low `bits` bits), via AES-ECB. */
function referenceCtr(key: Buffer, cb: Buffer, bits: number, data: Buffer): Buffer {
  const start = BigInt("0x" + cb.toString("hex")) & ((1n << BigInt(bits)) - 1n);
  const blocks = Math.ceil(data.length / 16);
  const counters = Buffer.concat(Array.from({ length: blocks }, (_, i) => {
    const value = start + BigInt(i);
    if (value >= 1n << BigInt(bits)) throw new Error("reference asked to wrap the counter");
    return counterBlock(cb, bits, value);
  }));
  const ecb = createCipheriv(`aes-${key.length * 8}-ecb`, key, null).setAutoPadding(false);
  const stream = Buffer.concat([ecb.update(counters), ecb.final()]);
  return Buffer.from(data.map((byte, i) => byte ^ stream[i]!));
}

test("CTR near the wrap point, for counter bits 1..128: the last blocks work, one byte more is refused", (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 128 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 15 }), keyBytes,
      fc.array(fc.nat(), { maxLength: 6 }),
      (bits, wantedRemaining, shortBy, raw, cuts) => {
        const remaining = Math.min(wantedRemaining, 2 ** bits); // blocks left before the counter would wrap
        const cb = counterBlock(randomBytes(16), bits, (1n << BigInt(bits)) - BigInt(remaining));
        const params = { iv: cb, counterBits: bits };
        const key = importKey(raw);
        const fits = randomBytes(remaining * 16 - (shortBy % 16));
        const expected = referenceCtr(raw, cb, bits, fits);
        // Single-part, up to the last counter value.
        if (!aesEncrypt(key, "ctr", fits, params).equals(expected)) throw new Error(`${bits} bits, ${remaining} blocks: differs from the reference`);
        if (!aesDecrypt(key, "ctr", expected, params).equals(fits)) throw new Error(`${bits} bits: decryption differs`);
        // Multi-part, cut anywhere, up to the last counter value.
        const op = aesEncryptInit(key, "ctr", params);
        if (!runParts(op, fits, cuts).equals(expected)) throw new Error(`${bits} bits: multi-part differs`);
        // One byte past the last block: refused before anything is written.
        const tooLong = randomBytes(remaining * 16 + 1);
        const out = Buffer.alloc(tooLong.length, 0xaa);
        let code: unknown;
        try {
          aesEncrypt(key, "ctr", tooLong, params, out);
        } catch (error) {
          code = (error as { code?: unknown }).code;
        }
        if (code !== "ERR_NATIVE_COUNTER_OVERFLOW") throw new Error(`${bits} bits, ${remaining} blocks: one byte more gave ${String(code)}`);
        if (!out.equals(Buffer.alloc(out.length, 0xaa))) throw new Error("output written before the refusal");
        // Multi-part: the update that would pass the last counter value is refused and ends the operation.
        const streaming = aesDecryptInit(key, "ctr", params);
        streaming.update(tooLong.subarray(0, remaining * 16));
        try {
          streaming.update(tooLong.subarray(remaining * 16));
          code = undefined;
        } catch (error) {
          code = (error as { code?: unknown }).code;
        }
        if (code !== "ERR_NATIVE_COUNTER_OVERFLOW" || !streaming.ended) throw new Error(`${bits} bits: multi-part overflow not refused`);
        key.destroy();
        return true;
      },
    ),
    { numRuns: 400 },
  );
  t.pass();
});

test("CTR counter bits: the PKCS#11 example and fixed edges", (t) => {
  const key = generateKey(16);
  const nonce = randomBytes(16);
  const overflow = { code: "ERR_NATIVE_COUNTER_OVERFLOW" };
  // PKCS#11 "AES with Counter Encryption / Decryption": ulCounterBits = 2 and the counter bits
  // starting as 1, only 3 blocks of data can be processed.
  const example = { iv: counterBlock(nonce, 2, 1n), counterBits: 2 };
  t.is(aesEncrypt(key, "ctr", Buffer.alloc(48), example).length, 48);
  t.throws(() => aesEncrypt(key, "ctr", Buffer.alloc(49), example), overflow);
  // 1 counter bit: two blocks from 0, one from 1.
  t.is(aesEncrypt(key, "ctr", Buffer.alloc(32), { iv: counterBlock(nonce, 1, 0n), counterBits: 1 }).length, 32);
  t.throws(() => aesEncrypt(key, "ctr", Buffer.alloc(33), { iv: counterBlock(nonce, 1, 0n), counterBits: 1 }), overflow);
  t.throws(() => aesEncrypt(key, "ctr", Buffer.alloc(17), { iv: counterBlock(nonce, 1, 1n), counterBits: 1 }), overflow);
  // All-ones counters: exactly one block, whatever the width.
  for (const counterBits of [8, 32, 63, 64, 65, 127, 128]) {
    const params = { iv: counterBlock(nonce, counterBits, (1n << BigInt(counterBits)) - 1n), counterBits };
    t.is(aesEncrypt(key, "ctr", Buffer.alloc(16), params).length, 16, `${counterBits} bits`);
    t.throws(() => aesEncrypt(key, "ctr", Buffer.alloc(17), params), overflow, `${counterBits} bits`);
  }
  // Empty input never overflows; a zero counter with 128 bits has room for anything.
  t.is(aesEncrypt(key, "ctr", Buffer.alloc(0), { iv: counterBlock(nonce, 1, 1n), counterBits: 1 }).length, 0);
  t.is(aesEncrypt(key, "ctr", Buffer.alloc(1 << 20), { iv: Buffer.alloc(16), counterBits: 128 }).length, 1 << 20);
  // 64 counter bits from 2^64 - 2^20: exactly 2^20 blocks (16 MiB) fit, and the fixed upper
  // half of the block is never touched (compare with node:crypto, which increments all 128 bits,
  // on the part that does not carry).
  const cb = counterBlock(nonce, 64, (1n << 64n) - (1n << 20n));
  const big = Buffer.alloc(16 << 20, 0);
  t.is(aesEncrypt(key, "ctr", big, { iv: cb, counterBits: 64 }).length, big.length);
  t.throws(() => aesEncrypt(key, "ctr", Buffer.alloc(big.length + 1), { iv: cb, counterBits: 64 }), overflow);
});

test("CTR with 128 counter bits equals node:crypto's aes-*-ctr for random counter blocks", (t) => {
  fc.assert(
    fc.property(keyBytes, fc.integer({ min: 0, max: 4096 }), (raw, length) => {
      const cb = randomBytes(16);
      cb[0] = 0x7f; // keep clear of the 2^128 wrap, which node:crypto would take silently
      const data = randomBytes(length);
      const key = importKey(raw);
      const ok = aesEncrypt(key, "ctr", data, { iv: cb }).equals(nodeCrypt("ctr", raw, cb, true, data));
      key.destroy();
      return ok;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// CBC-PAD padding checks
// ---------------------------------------------------------------------------------------------
/** PKCS#7 as the reference reads it: the pad length, or 0 when the block is not validly padded. */
function referencePad(block: Buffer): number {
  const pad = block[15]!;
  if (pad < 1 || pad > 16) return 0;
  for (let i = 16 - pad; i < 16; i++) if (block[i] !== pad) return 0;
  return pad;
}

/** CBC without padding through node:crypto: lets a test choose the last plaintext block freely. */
function rawCbc(key: Buffer, iv: Buffer, plaintext: Buffer): Buffer {
  return nodeCrypt("cbc", key, iv, true, plaintext);
}

test("CBC-PAD decryption accepts exactly the valid PKCS#7 endings (every last byte, crafted and random blocks)", (t) => {
  const raw = randomBytes(32);
  const key = importKey(raw);
  const iv = randomBytes(16);
  const blocks: Buffer[] = [];
  for (let v = 0; v < 256; v++) {
    blocks.push(Buffer.alloc(16, v)); // valid exactly for 1..16
    const lastOnly = Buffer.alloc(16, v ^ 0x80);
    lastOnly[15] = v; // valid exactly for v = 1
    blocks.push(lastOnly);
  }
  for (let pad = 2; pad <= 16; pad++) {
    for (let wrong = 16 - pad; wrong < 15; wrong++) {
      const block = Buffer.alloc(16, pad);
      block[wrong] = pad ^ 1; // one wrong byte inside the padding
      blocks.push(block);
    }
  }
  for (let pad = 1; pad <= 16; pad++) {
    for (let i = 0; i < 20; i++) {
      const block = randomBytes(16);
      block.fill(pad, 16 - pad); // valid: random data, then pad bytes of value pad
      blocks.push(block);
    }
  }
  for (let i = 0; i < 500; i++) {
    const block = randomBytes(16);
    block[15] = 1 + (block[15]! % 16); // a plausible last byte over random bytes: mostly invalid
    blocks.push(block);
  }
  let valid = 0;
  for (const last of blocks) {
    const body = randomBytes(16 * (last[0]! % 3));
    const ciphertext = rawCbc(raw, iv, Buffer.concat([body, last]));
    const pad = referencePad(last);
    const expected = Buffer.concat([body, last.subarray(0, 16 - pad)]);
    for (const multiPart of [false, true]) {
      const out = Buffer.alloc(ciphertext.length, 0xaa);
      let result: Buffer | undefined;
      let code: unknown;
      try {
        if (multiPart) {
          const op = aesDecryptInit(key, "cbc-pad", { iv });
          result = Buffer.concat([op.update(ciphertext.subarray(0, 7)), op.update(ciphertext.subarray(7)), op.final()]);
        } else {
          result = aesDecrypt(key, "cbc-pad", ciphertext, { iv }, out);
        }
      } catch (error) {
        code = (error as { code?: unknown }).code;
      }
      const where = `${multiPart ? "multi" : "single"}-part, last block ${last.toString("hex")}`;
      if (pad === 0) {
        t.is(code, "ERR_NATIVE_BAD_PADDING", where);
        if (!multiPart) t.true(out.subarray(0, body.length).equals(Buffer.alloc(body.length)), `${where}: output cleansed`);
      } else {
        t.is(code, undefined, where);
        t.true(result?.equals(expected), where);
      }
    }
    if (pad !== 0) valid++;
  }
  t.log(`checked ${blocks.length} last blocks, ${valid} validly padded`);
});

test("bad padding is one opaque error, and it ends a multi-part operation", (t) => {
  const raw = randomBytes(16);
  const key = importKey(raw);
  const iv = randomBytes(16);
  const ciphertext = rawCbc(raw, iv, Buffer.alloc(32, 0));
  const error = t.throws(() => aesDecrypt(key, "cbc-pad", ciphertext, { iv }), { code: "ERR_NATIVE_BAD_PADDING" });
  t.is(error?.message, "AES-CBC-PAD decryption failed: invalid padding");
  const op = aesDecryptInit(key, "cbc-pad", { iv });
  t.is(op.update(ciphertext).length, 16, "the last block is held back");
  t.throws(() => op.final(), { code: "ERR_NATIVE_BAD_PADDING" });
  t.true(op.ended);
  t.throws(() => op.final(), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
});

// ---------------------------------------------------------------------------------------------
// Lengths, keys, parameters, buffers
// ---------------------------------------------------------------------------------------------
test("lengths a mode cannot take are ERR_NATIVE_INVALID_ARGUMENT, single-part, multi-part and in aesOutputSize", (t) => {
  const key = generateKey(32);
  const iv = randomBytes(16);
  const invalid = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  for (const mode of ["ecb", "cbc"] as const) {
    for (const length of [1, 8, 15, 17, 31, 33, 100]) {
      const data = Buffer.alloc(length);
      const e1 = t.throws(() => aesEncrypt(key, mode, data, paramsFor(mode, iv)), invalid);
      t.regex(e1?.message ?? "", /plaintext must be a whole number of 16-byte blocks; got \d+ bytes?/);
      const e2 = t.throws(() => aesDecrypt(key, mode, data, paramsFor(mode, iv)), invalid);
      t.regex(e2?.message ?? "", /ciphertext must be a whole number of 16-byte blocks/);
      t.throws(() => aesOutputSize(mode, "encrypt", length), invalid);
      for (const init of [aesEncryptInit, aesDecryptInit]) {
        const op = init(key, mode, paramsFor(mode, iv));
        t.is(op.update(data).length, length - (length % 16));
        t.throws(() => op.final(), invalid);
        t.true(op.ended);
      }
    }
    t.is(aesEncrypt(key, mode, Buffer.alloc(0), paramsFor(mode, iv)).length, 0, "no blocks is a whole number of blocks");
  }
  for (const length of [0, 1, 15, 17, 47]) {
    t.throws(() => aesDecrypt(key, "cbc-pad", Buffer.alloc(length), { iv }), invalid);
    t.throws(() => aesOutputSize("cbc-pad", "decrypt", length), invalid);
    const op = aesDecryptInit(key, "cbc-pad", { iv });
    op.update(Buffer.alloc(length));
    t.throws(() => op.final(), invalid);
  }
  t.is(aesOutputSize("ecb", "decrypt", 48), 48);
  t.is(aesOutputSize("ctr", "decrypt", 5), 5);
  t.is(aesOutputSize("cbc-pad", "encrypt", 0), 16);
  t.is(aesOutputSize("cbc-pad", "encrypt", 16), 32);
});

test("keys that are not 16, 24 or 32 bytes are refused for every mode", (t) => {
  for (const length of [1, 8, 15, 17, 20, 31, 33, 64]) {
    const key = importKey(randomBytes(length));
    for (const mode of MODES) {
      const params = paramsFor(mode, randomBytes(16));
      t.throws(() => aesEncrypt(key, mode, Buffer.alloc(16), params), { code: "ERR_NATIVE_INVALID_ARGUMENT" }, `${mode} key ${length}`);
      t.throws(() => aesDecrypt(key, mode, Buffer.alloc(16), params), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
      t.throws(() => aesEncryptInit(key, mode, params), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
    }
  }
});

test("a destroyed key is refused; an operation begun before the destroy finishes correctly", (t) => {
  const raw = randomBytes(24);
  const key = importKey(raw);
  const iv = randomBytes(16);
  const plaintext = randomBytes(77);
  const op = aesEncryptInit(key, "cbc-pad", { iv });
  const first = op.update(plaintext.subarray(0, 40));
  key.destroy();
  for (const mode of MODES) {
    t.throws(() => aesEncrypt(key, mode, Buffer.alloc(16), paramsFor(mode, iv)), { code: "ERR_NATIVE_KEY_DESTROYED" });
    t.throws(() => aesDecryptInit(key, mode, paramsFor(mode, iv)), { code: "ERR_NATIVE_KEY_DESTROYED" });
  }
  const rest = Buffer.concat([first, op.update(plaintext.subarray(40)), op.final()]);
  t.true(rest.equals(nodeCrypt("cbc-pad", raw, iv, true, plaintext)));
});

test("an operation holds the key's bytes only until it ends (checked in a fresh process)", (t) => {
  // Secure memory is per process and ava runs files side by side in worker threads, so the
  // byte counts are read in a process of their own.
  const module = (name: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/crypto/${name}.js`, import.meta.url)));
  const script = `
    const { importKey, secureMemoryStats } = await import(${module("keys")});
    const { aesEncryptInit } = await import(${module("modes")});
    const { hmacInit } = await import(${module("hmac")});
    const inUse = () => secureMemoryStats().bytesInUse;
    const base = inUse();
    const key = importKey(Buffer.alloc(1000, 7));
    const aesKey = importKey(Buffer.alloc(32, 1));
    const aes = aesEncryptInit(aesKey, "ctr", { iv: Buffer.alloc(16) });
    const mac = hmacInit(key, "sha256").update(Buffer.from("x"));
    const aborted = hmacInit(key, "sha1");
    key.destroy();
    aesKey.destroy();
    const held = inUse() - base;
    mac.sign();
    const afterSign = inUse() - base;
    aborted.abort();
    const afterAbort = inUse() - base;
    aes.update(Buffer.alloc(5));
    aes.final();
    const afterFinal = inUse() - base;
    console.log(JSON.stringify({ held, afterSign, afterAbort, afterFinal }));
  `;
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  t.is(run.status, 0, run.stderr);
  // Both keys destroyed while operations hold them: the 1000-byte HMAC key is released when its
  // last operation ends (the abort), the 32-byte AES key when its operation finishes.
  t.deepEqual(JSON.parse(run.stdout), { held: 1032, afterSign: 1032, afterAbort: 32, afterFinal: 0 });
});

test("parameters are checked in TypeScript: IVs, counter bits, modes", (t) => {
  const key = generateKey(16);
  const data = Buffer.alloc(16);
  const value = { code: "ERR_INVALID_ARG_VALUE" };
  t.throws(() => aesEncrypt(key, "ecb", data, { iv: Buffer.alloc(16) }), value);
  for (const mode of ["cbc", "cbc-pad", "ctr"] as const) {
    t.throws(() => aesEncrypt(key, mode, data), value);
    t.throws(() => aesEncrypt(key, mode, data, { iv: Buffer.alloc(15) }), value);
    t.throws(() => aesEncrypt(key, mode, data, { iv: Buffer.alloc(17) }), value);
    t.throws(() => aesEncryptInit(key, mode, { iv: Buffer.alloc(8) }), value);
  }
  t.throws(() => aesEncrypt(key, "cbc", data, { iv: Buffer.alloc(16), counterBits: 32 }), value);
  t.throws(() => aesEncrypt(key, "ctr", data, { iv: Buffer.alloc(16), counterBits: 0 }), { code: "ERR_OUT_OF_RANGE" });
  t.throws(() => aesEncrypt(key, "ctr", data, { iv: Buffer.alloc(16), counterBits: 129 }), { code: "ERR_OUT_OF_RANGE" });
  t.throws(() => aesEncrypt(key, "ctr", data, { iv: Buffer.alloc(16), counterBits: 1.5 }), { code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => aesEncrypt(key, "cfb" as AesMode, data), value);
  t.throws(() => aesEncrypt(key, "constructor" as AesMode, data), value);
  t.throws(() => aesOutputSize("ecb", "sideways" as "encrypt", 16), value);
  t.throws(() => aesEncrypt(key, "ecb", "text" as unknown as Uint8Array), { code: "ERR_INVALID_ARG_TYPE" });
});

test("the native side checks parameters too (called directly)", (t) => {
  const key = generateKey(16);
  const invalid = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  const out = Buffer.alloc(64);
  const data = Buffer.alloc(16);
  t.throws(() => addon.aesCrypt(key, 4, true, null, 128, data, out), invalid);
  t.throws(() => addon.aesCrypt(key, 0, true, Buffer.alloc(16), 128, data, out), invalid);
  t.throws(() => addon.aesCrypt(key, 1, true, Buffer.alloc(15), 128, data, out), invalid);
  t.throws(() => addon.aesCrypt(key, 1, true, null, 128, data, out), invalid);
  t.throws(() => addon.aesCrypt(key, 3, true, Buffer.alloc(16), 0, data, out), invalid);
  t.throws(() => addon.aesCrypt(key, 3, true, Buffer.alloc(16), 129, data, out), invalid);
  t.throws(() => addon.aesCrypt(key, 2, true, Buffer.alloc(16), 128, data, Buffer.alloc(31)), invalid);
  t.throws(() => addon.aesCrypt({} as never, 0, true, null, 128, data, out), invalid);
  t.throws(() => new addon.AesOperation(key, 3, true, Buffer.alloc(16), 0), invalid);
  t.throws(() => addon.aesOutputSize(0, true, -1), invalid);
  t.throws(() => addon.aesOutputSize(0, true, 1.5), invalid);
  // A method of the operation called on some other object is refused, not unwrapped.
  t.throws(() => addon.AesOperation.prototype.update.call(key, data, out));
});

test("caller buffers: results land in out; in place is allowed, partial overlap is not", (t) => {
  const raw = randomBytes(32);
  const key = importKey(raw);
  const iv = randomBytes(16);
  for (const mode of MODES) {
    const plaintext = randomBytes(mode === "ecb" || mode === "cbc" ? 64 : 61);
    const expected = nodeCrypt(mode, raw, iv, true, plaintext);
    // In place: the buffer holds the plaintext at its start and is large enough for the result.
    const buffer = Buffer.alloc(80);
    plaintext.copy(buffer);
    const sealed = aesEncrypt(key, mode, buffer.subarray(0, plaintext.length), paramsFor(mode, iv), buffer);
    t.is(sealed.buffer, buffer.buffer, mode);
    t.true(sealed.equals(expected), `${mode} in place`);
    const opened = aesDecrypt(key, mode, sealed, paramsFor(mode, iv), buffer);
    t.true(opened.equals(plaintext), `${mode} in place back`);
    // Partial overlap is refused before anything is written.
    const shifted = Buffer.alloc(96);
    plaintext.copy(shifted);
    t.throws(() => aesEncrypt(key, mode, shifted.subarray(0, plaintext.length), paramsFor(mode, iv), shifted.subarray(8)), {
      code: "ERR_NATIVE_INVALID_ARGUMENT",
    });
  }
  t.throws(() => aesEncrypt(key, "cbc-pad", Buffer.alloc(16), { iv }, Buffer.alloc(31)), { code: "ERR_INVALID_ARG_VALUE" });
  const op = aesEncryptInit(key, "ctr", { iv });
  const shared = randomBytes(64);
  t.throws(() => op.update(shared.subarray(0, 32), shared.subarray(16)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => op.update(shared.subarray(0, 32), Buffer.alloc(31)), { code: "ERR_INVALID_ARG_VALUE" });
  t.false(op.ended, "a refused buffer does not end the operation");
  const out = Buffer.alloc(100);
  const written = op.update(shared.subarray(0, 32), out);
  t.is(written.buffer, out.buffer);
  t.true(written.equals(nodeCrypt("ctr", raw, iv, true, shared.subarray(0, 32))));
});

test("operations on one key are independent of each other and of single-part calls", (t) => {
  const raw = randomBytes(16);
  const key = importKey(raw);
  const iv1 = randomBytes(16);
  const iv2 = randomBytes(16);
  const p1 = randomBytes(50);
  const p2 = randomBytes(70);
  const a = aesEncryptInit(key, "cbc-pad", { iv: iv1 });
  const b = aesEncryptInit(key, "cbc-pad", { iv: iv2 });
  const c = aesDecryptInit(key, "cbc", { iv: iv2 });
  const outA = [a.update(p1.subarray(0, 20))];
  const outB = [b.update(p2.subarray(0, 33))];
  t.true(aesEncrypt(key, "cbc", Buffer.alloc(32), { iv: iv1 }).equals(nodeCrypt("cbc", raw, iv1, true, Buffer.alloc(32))));
  outA.push(a.update(p1.subarray(20)), a.final());
  outB.push(b.update(p2.subarray(33)), b.final());
  t.true(Buffer.concat(outA).equals(nodeCrypt("cbc-pad", raw, iv1, true, p1)));
  t.true(Buffer.concat(outB).equals(nodeCrypt("cbc-pad", raw, iv2, true, p2)));
  const block = nodeCrypt("cbc", raw, iv2, true, Buffer.alloc(16, 3));
  t.true(Buffer.concat([c.update(block), c.final()]).equals(Buffer.alloc(16, 3)));
});

test("an ended operation refuses further calls; abort ends it and is harmless twice", (t) => {
  const key = generateKey(32);
  const ended = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  const op = aesEncryptInit(key, "cbc-pad", { iv: randomBytes(16) });
  op.update(Buffer.alloc(10));
  op.abort();
  t.true(op.ended);
  op.abort();
  t.throws(() => op.update(Buffer.alloc(1)), ended);
  t.throws(() => op.final(), ended);
  t.throws(() => op.outputSize(1), ended);
  t.throws(() => op.finalOutputSize(), ended);
  const done = aesEncryptInit(key, "ecb");
  t.is(done.final().length, 0);
  t.throws(() => done.update(Buffer.alloc(16)), ended);
  t.is(done.mode, "ecb");
  t.is(done.direction, "encrypt");
});
