// HMAC beyond the Wycheproof vectors: RFC known answers for every hash, differential against
// node:crypto (single- and multi-part, truncated tags), verification edge cases, errors.
import test from "ava";
import fc from "fast-check";
import { createHmac, randomBytes } from "node:crypto";
import { addon } from "../../src/crypto/addon.js";
import {
  HMAC_MIN_TAG_LENGTH, hmacInit, hmacLength, hmacSign, hmacVerify, type HmacHash,
} from "../../src/crypto/hmac.js";
import { generateKey, importKey } from "../../src/crypto/keys.js";

const HASHES: readonly HmacHash[] = ["sha1", "sha224", "sha256", "sha384", "sha512"];
const hex = (value: string): Buffer => Buffer.from(value, "hex");

// RFC 2202 §3 test case 1 (HMAC-SHA-1) and RFC 4231 §4.2 test case 1 (HMAC-SHA-2):
// key = 0x0b x 20, data = "Hi There".
const CASE_1: Record<HmacHash, string> = {
  sha1: "b617318655057264e28bc0b6fb378c8ef146be00",
  sha224: "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
  sha256: "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
  sha384: "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
  sha512: "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
};

// RFC 4231 §4.6 test case 5: key = 0x0c x 20, data = "Test With Truncation", tags truncated to 128 bits.
const CASE_5: Partial<Record<HmacHash, string>> = {
  sha224: "0e2aea68a90c8d37c988bcdb9fca6fa8",
  sha256: "a3b6167473100ee06e0c796c2955552b",
  sha384: "3abf34c3503b2a23a46efc619baef897",
  sha512: "415fad6271580a531d4179bc891d87a6",
};

test("RFC 2202 §3 / RFC 4231 §4.2 test case 1 for every hash, single- and multi-part", (t) => {
  const key = importKey(Buffer.alloc(20, 0x0b));
  const data = Buffer.from("Hi There");
  for (const hash of HASHES) {
    const expected = hex(CASE_1[hash]);
    t.is(hmacLength(hash), expected.length, hash);
    t.true(hmacSign(key, hash, data).equals(expected), hash);
    t.true(hmacVerify(key, hash, data, expected), hash);
    t.true(hmacInit(key, hash).update(data.subarray(0, 3)).update(data.subarray(3)).sign().equals(expected), hash);
  }
});

test("RFC 4231 §4.6 test case 5: 128-bit truncated tags", (t) => {
  const key = importKey(Buffer.alloc(20, 0x0c));
  const data = Buffer.from("Test With Truncation");
  for (const [hash, tag] of Object.entries(CASE_5) as Array<[HmacHash, string]>) {
    const expected = hex(tag);
    t.true(hmacSign(key, hash, data, { tagLength: 16 }).equals(expected), hash);
    t.true(hmacVerify(key, hash, data, expected, { tagLength: 16 }), hash);
    t.false(hmacVerify(key, hash, data, expected), `${hash}: a 16-byte tag against the full length`);
  }
});

const keyLength = fc.oneof(fc.integer({ min: 1, max: 200 }), fc.constantFrom(1, 63, 64, 65, 127, 128, 129, 8192));

test("sign and verify equal node:crypto for every hash, key lengths 1..8192, data to 4 KiB, every tag length", (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(...HASHES), keyLength, fc.integer({ min: 0, max: 4096 }), fc.nat(),
      (hash, keyBytes, size, pick) => {
        const raw = randomBytes(keyBytes);
        const data = randomBytes(size);
        const full = hmacLength(hash);
        const tagLength = HMAC_MIN_TAG_LENGTH + (pick % (full - HMAC_MIN_TAG_LENGTH + 1));
        const expected = createHmac(hash, raw).update(data).digest();
        const key = importKey(raw);
        const ours = hmacSign(key, hash, data);
        const truncated = hmacSign(key, hash, data, { tagLength });
        const ok =
          ours.equals(expected) &&
          truncated.equals(expected.subarray(0, tagLength)) &&
          hmacVerify(key, hash, data, expected) &&
          hmacVerify(key, hash, data, truncated, { tagLength });
        key.destroy();
        if (!ok) throw new Error(`${hash}, key ${keyBytes} bytes, data ${size} bytes, tag ${tagLength}: differs from node:crypto`);
        return true;
      },
    ),
    { numRuns: 400 },
  );
  t.pass();
});

test("multi-part equals single-part for random split points", (t) => {
  fc.assert(
    fc.property(
      fc.constantFrom(...HASHES), keyLength, fc.integer({ min: 0, max: 3000 }), fc.array(fc.nat(), { maxLength: 8 }),
      (hash, keyBytes, size, cuts) => {
        const raw = randomBytes(keyBytes);
        const data = randomBytes(size);
        const points = [...new Set(cuts.map((c) => (size === 0 ? 0 : c % (size + 1))))].sort((a, b) => a - b);
        const key = importKey(raw);
        const signer = hmacInit(key, hash);
        const verifier = hmacInit(key, hash);
        let from = 0;
        for (const to of [...points, size]) {
          signer.update(data.subarray(from, to));
          verifier.update(data.subarray(from, to));
          from = to;
        }
        const expected = createHmac(hash, raw).update(data).digest();
        const tag = signer.sign();
        const ok = tag.equals(expected) && verifier.verify(expected) && signer.ended && verifier.ended;
        key.destroy();
        return ok;
      },
    ),
    { numRuns: 300 },
  );
  t.pass();
});

test("verification is false for any flipped bit, and for tags of another length", (t) => {
  const key = generateKey(32);
  const data = randomBytes(100);
  for (const hash of HASHES) {
    const tag = hmacSign(key, hash, data);
    for (let bit = 0; bit < tag.length * 8; bit++) {
      const bad = Buffer.from(tag);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      if (hmacVerify(key, hash, data, bad)) t.fail(`${hash}: bit ${bit} flipped still verified`);
    }
    t.false(hmacVerify(key, hash, data, tag.subarray(0, tag.length - 1)), `${hash}: one byte short`);
    t.false(hmacVerify(key, hash, data, tag.subarray(0, 16)), `${hash}: 16-byte prefix against the full length`);
    t.false(hmacVerify(key, hash, data, Buffer.concat([tag, Buffer.alloc(1)])), `${hash}: one byte long`);
    t.false(hmacVerify(key, hash, data, Buffer.alloc(0)), `${hash}: empty tag`);
    t.false(hmacVerify(key, hash, data, tag, { tagLength: 16 }), `${hash}: full tag against a 16-byte expectation`);
    t.true(hmacVerify(key, hash, data, tag.subarray(0, 16), { tagLength: 16 }), hash);
    t.false(hmacVerify(key, hash, Buffer.concat([data, Buffer.alloc(1)]), tag), `${hash}: other data`);
    t.false(hmacInit(key, hash).update(data).verify(tag.subarray(0, tag.length - 4)), `${hash}: multi-part, short tag`);
  }
});

test("one key serves every hash, and HMAC keys may be any slot length (not only AES lengths)", (t) => {
  for (const length of [1, 7, 20, 33, 100, 8192]) {
    const raw = randomBytes(length);
    const key = importKey(raw);
    for (const hash of HASHES) {
      t.true(hmacSign(key, hash, Buffer.from("abc")).equals(createHmac(hash, raw).update("abc").digest()), `${hash} key ${length}`);
    }
    key.destroy();
  }
});

test("caller buffers: out receives the tag; a too-small out is refused", (t) => {
  const key = generateKey(32);
  const out = Buffer.alloc(80, 0xee);
  const tag = hmacSign(key, "sha384", Buffer.from("x"), { tagLength: 24 }, out);
  t.is(tag.length, 24);
  t.is(tag.buffer, out.buffer);
  t.true(out.subarray(24).equals(Buffer.alloc(56, 0xee)));
  t.throws(() => hmacSign(key, "sha256", Buffer.from("x"), {}, Buffer.alloc(31)), { code: "ERR_INVALID_ARG_VALUE" });
  t.throws(() => addon.hmacSign(key, 2, Buffer.from("x"), 32, Buffer.alloc(31)), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  const op = hmacInit(key, "sha256");
  t.throws(() => op.sign(Buffer.alloc(31)), { code: "ERR_INVALID_ARG_VALUE" });
  t.false(op.ended, "a refused output buffer does not end the operation");
  t.is(op.sign(out).length, 32);
});

test("tag lengths outside 4..digest size and unknown hashes are refused, in TypeScript and natively", (t) => {
  const key = generateKey(32);
  const data = Buffer.from("data");
  for (const hash of HASHES) {
    t.throws(() => hmacSign(key, hash, data, { tagLength: HMAC_MIN_TAG_LENGTH - 1 }), { code: "ERR_OUT_OF_RANGE" });
    t.throws(() => hmacSign(key, hash, data, { tagLength: hmacLength(hash) + 1 }), { code: "ERR_OUT_OF_RANGE" });
    t.throws(() => hmacVerify(key, hash, data, Buffer.alloc(3), { tagLength: 3 }), { code: "ERR_OUT_OF_RANGE" });
    t.throws(() => hmacInit(key, hash, { tagLength: 0 }), { code: "ERR_OUT_OF_RANGE" });
    t.is(hmacSign(key, hash, data, { tagLength: HMAC_MIN_TAG_LENGTH }).length, HMAC_MIN_TAG_LENGTH);
  }
  t.throws(() => hmacSign(key, "md5" as HmacHash, data), { code: "ERR_INVALID_ARG_VALUE" });
  t.throws(() => hmacSign(key, "toString" as HmacHash, data), { code: "ERR_INVALID_ARG_VALUE" });
  const invalid = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  t.throws(() => addon.hmacSign(key, 2, data, 3, Buffer.alloc(32)), invalid);
  t.throws(() => addon.hmacSign(key, 2, data, 33, Buffer.alloc(64)), invalid);
  t.throws(() => addon.hmacSign(key, 5, data, 32, Buffer.alloc(64)), invalid);
  t.throws(() => addon.hmacVerify(key, 2, data, Buffer.alloc(3), 3), invalid);
  t.throws(() => new addon.HmacOperation(key, 2, 65), invalid);
  t.throws(() => new addon.HmacOperation({} as never, 2, 32), invalid);
});

test("a destroyed key is refused; an operation begun before the destroy finishes", (t) => {
  const raw = randomBytes(48);
  const key = importKey(raw);
  const op = hmacInit(key, "sha512").update(Buffer.from("part one, "));
  key.destroy();
  t.throws(() => hmacSign(key, "sha256", Buffer.from("x")), { code: "ERR_NATIVE_KEY_DESTROYED" });
  t.throws(() => hmacVerify(key, "sha256", Buffer.from("x"), Buffer.alloc(32)), { code: "ERR_NATIVE_KEY_DESTROYED" });
  t.throws(() => hmacInit(key, "sha256"), { code: "ERR_NATIVE_KEY_DESTROYED" });
  op.update(Buffer.from("part two"));
  t.true(op.sign().equals(createHmac("sha512", raw).update("part one, part two").digest()));
});

test("an ended operation refuses further calls; abort ends it", (t) => {
  const key = generateKey(32);
  const ended = { code: "ERR_NATIVE_INVALID_ARGUMENT" };
  const signed = hmacInit(key, "sha256");
  signed.sign();
  t.true(signed.ended);
  t.throws(() => signed.update(Buffer.from("x")), ended);
  t.throws(() => signed.sign(), ended);
  t.throws(() => signed.verify(Buffer.alloc(32)), ended);
  const verified = hmacInit(key, "sha256");
  t.false(verified.verify(Buffer.alloc(32)));
  t.throws(() => verified.verify(Buffer.alloc(32)), ended);
  const aborted = hmacInit(key, "sha1", { tagLength: 10 }).update(Buffer.from("x"));
  t.is(aborted.tagLength, 10);
  aborted.abort();
  t.true(aborted.ended);
  aborted.abort();
  t.throws(() => aborted.sign(), ended);
});

test("each operation is independent of the others and of single-part calls on the same key", (t) => {
  const raw = randomBytes(32);
  const key = importKey(raw);
  const a = hmacInit(key, "sha256").update(Buffer.from("a"));
  const b = hmacInit(key, "sha256").update(Buffer.from("b"));
  t.true(hmacSign(key, "sha256", Buffer.from("c")).equals(createHmac("sha256", raw).update("c").digest()));
  a.update(Buffer.from("a"));
  t.true(b.sign().equals(createHmac("sha256", raw).update("b").digest()));
  t.true(a.sign().equals(createHmac("sha256", raw).update("aa").digest()));
});
