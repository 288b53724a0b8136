// Blob v1 and the bound-context encoding without a token: byte-exact layouts, bounds, the parser
// under arbitrary input (fast-check), the context's limits and canonical form, key ids, and
// Huawei's DEK ‖ SHA-256 convention (with the OTC documentation's own example).
import test from "ava";
import fc from "fast-check";
import { KmsError, type KmsErrorCode } from "../../src/kms/errors.js";
import {
  BLOB_OVERHEAD_BYTES, HEADER_BYTES, MAX_BLOB_BYTES, MAX_PLAINTEXT_BYTES, MIN_BLOB_BYTES, encodeHeader, keyIdFromBytes, keyIdToBytes, parseBlob,
} from "../../src/kms/envelope/blob.js";
import { MAX_AAD_BYTES, MAX_CONTEXT_CHARS, encodeBoundContext, type BoundContext } from "../../src/kms/envelope/context.js";
import { checkDatakeyCipherLength, dekDigest, splitDekAndDigest } from "../../src/kms/envelope/datakey.js";
import { readFileSync } from "node:fs";
import { VECTOR } from "./envelope-scenarios.js";

function throwsKms(t: import("ava").ExecutionContext, fn: () => unknown, code: KmsErrorCode): void {
  const error = t.throws(fn, { instanceOf: KmsError });
  t.is(error?.code, code, error?.detail);
}

const KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f";

test("the header is byte-exact: magic, format, key id, version (u32 BE), IV", (t) => {
  const iv = Buffer.from("000102030405060708090a0b", "hex");
  const header = encodeHeader({ keyId: KEY_ID, version: 258, iv });
  t.is(header.length, HEADER_BYTES);
  t.is(header.toString("hex"), "484b01" + "0d0466b0e7274d9cb35df84bb474a37f" + "00000102" + "000102030405060708090a0b");
  const blob = Buffer.concat([header, Buffer.alloc(1 + 16, 0xee)]);
  const parsed = parseBlob(blob);
  t.is(parsed.keyId, KEY_ID);
  t.is(parsed.version, 258);
  t.deepEqual(parsed.iv, iv);
  t.deepEqual(parsed.header, header);
  t.is(parsed.sealed.length, 17);
  t.is(encodeHeader({ keyId: KEY_ID.toUpperCase(), version: 0xffffffff, iv }).readUInt32BE(19), 0xffffffff);
});

test("blob sizes: 52..4147 bytes, whose base64 (72..5532 chars) fits Huawei's decrypt-data limit of 5648", (t) => {
  t.is(HEADER_BYTES, 35);
  t.is(BLOB_OVERHEAD_BYTES, 51);
  t.is(MIN_BLOB_BYTES, 52);
  t.is(MAX_BLOB_BYTES, 51 + MAX_PLAINTEXT_BYTES);
  t.is(Buffer.alloc(MIN_BLOB_BYTES).toString("base64").length, 72);
  t.is(Buffer.alloc(MAX_BLOB_BYTES).toString("base64").length, 5532);
  t.true(Buffer.alloc(MAX_BLOB_BYTES).toString("base64").length <= 5648);
  // A 1024-byte data key (8192 bits) as decrypt-datakey's hex.
  t.is(Buffer.alloc(1024 + BLOB_OVERHEAD_BYTES).toString("hex").length, 2150);
});

test("the parser rejects every malformed blob with the one opaque KMS.2201", (t) => {
  const good = Buffer.concat([encodeHeader({ keyId: KEY_ID, version: 1, iv: Buffer.alloc(12) }), Buffer.alloc(17)]);
  t.notThrows(() => parseBlob(good));
  const bad: unknown[] = [
    good.subarray(0, MIN_BLOB_BYTES - 1),
    Buffer.concat([good, Buffer.alloc(MAX_BLOB_BYTES)]),
    Buffer.alloc(0),
    Buffer.concat([Buffer.from("HJ"), good.subarray(2)]),
    Buffer.concat([Buffer.from("hk"), good.subarray(2)]),
    Buffer.concat([good.subarray(0, 2), Buffer.from([0x02]), good.subarray(3)]),
    Buffer.concat([good.subarray(0, 2), Buffer.from([0x00]), good.subarray(3)]),
    good.toString("base64"),
    undefined,
    null,
    [...good],
  ];
  for (const input of bad) throwsKms(t, () => parseBlob(input), "KMS.2201");
  // A Uint8Array view into a larger buffer parses the view, not the buffer.
  const padded = Buffer.concat([Buffer.alloc(7, 0xff), good, Buffer.alloc(9, 0xff)]);
  const view = new Uint8Array(padded.buffer, padded.byteOffset + 7, good.length);
  t.deepEqual(parseBlob(view).header, good.subarray(0, HEADER_BYTES));
});

test("fast-check: the parser never throws anything but KMS.2201, and what it accepts re-encodes to the same bytes", (t) => {
  const blobish = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 5000 }),
    // Mostly-valid prefixes, so the property also reaches the accepting paths.
    fc.tuple(fc.constantFrom(0x48, 0x00), fc.constantFrom(0x4b, 0x4a), fc.constantFrom(0x01, 0x02), fc.uint8Array({ minLength: 0, maxLength: 4200 }))
      .map(([a, b, c, rest]) => Uint8Array.from([a, b, c, ...rest])),
  );
  fc.assert(fc.property(blobish, (bytes) => {
    let parsed;
    try {
      parsed = parseBlob(bytes);
    } catch (error) {
      return error instanceof KmsError && error.code === "KMS.2201";
    }
    const again = encodeHeader({ keyId: parsed.keyId, version: parsed.version, iv: parsed.iv });
    return again.equals(Buffer.from(bytes.subarray(0, HEADER_BYTES))) && parsed.sealed.length === bytes.length - HEADER_BYTES
      && bytes.length >= MIN_BLOB_BYTES && bytes.length <= MAX_BLOB_BYTES;
  }), { numRuns: 3000 });
  t.pass();
});

test("header arguments: a key id is a UUID (KMS.0205), a version a u32 and the IV 12 bytes (KMS.0308)", (t) => {
  const iv = Buffer.alloc(12);
  for (const keyId of ["", "0d0466b0e7274d9cb35df84bb474a37f", `${KEY_ID}0`, "alias/obs/default", KEY_ID.replace("d", "g")]) {
    throwsKms(t, () => encodeHeader({ keyId, version: 1, iv }), "KMS.0205");
  }
  for (const version of [-1, 2 ** 32, 1.5, Number.NaN]) throwsKms(t, () => encodeHeader({ keyId: KEY_ID, version, iv }), "KMS.0308");
  throwsKms(t, () => encodeHeader({ keyId: KEY_ID, version: 1, iv: Buffer.alloc(16) }), "KMS.0308");
  t.is(keyIdFromBytes(keyIdToBytes(KEY_ID.toUpperCase())), KEY_ID);
  fc.assert(fc.property(fc.uuid(), (uuid) => keyIdFromBytes(keyIdToBytes(uuid)) === uuid.toLowerCase()));
  // Headers name their key from remembered bytes once an id was sealed under: more ids than the
  // memory holds, each in both cases and twice, always give the id's own bytes.
  fc.assert(fc.property(fc.uuid(), fc.boolean(), (uuid, upper) => {
    const keyId = upper ? uuid.toUpperCase() : uuid;
    const expected = keyIdToBytes(uuid).toString("hex");
    return [0, 1].every(() => encodeHeader({ keyId, version: 1, iv }).subarray(3, 19).toString("hex") === expected);
  }), { numRuns: 6000 });
});

test("a blob's key id is read right whatever ids came before, ids sharing a last byte, and callers reusing their buffers", (t) => {
  // The parser remembers recent ids by their last byte: few distinct last bytes force collisions.
  const id = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => {
    bytes[15] = bytes[15]! % 3;
    return bytes;
  });
  const text = (bytes: Uint8Array): string => {
    const hex = Buffer.from(bytes).toString("hex");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
  fc.assert(fc.property(fc.array(fc.tuple(id, fc.boolean()), { minLength: 1, maxLength: 40 }), (steps) => {
    const blob = Buffer.concat([encodeHeader({ keyId: KEY_ID, version: 1, iv: Buffer.alloc(12) }), Buffer.alloc(17)]);
    for (const [bytes, viaBlob] of steps) {
      if (viaBlob) {
        // The same buffer, rewritten in place between parses.
        blob.set(bytes, 3);
        if (parseBlob(blob).keyId !== text(bytes)) return false;
      } else if (keyIdFromBytes(bytes) !== text(bytes)) {
        return false;
      }
    }
    return true;
  }));
  t.pass();
});

test("the bound context's encoding is byte-exact and canonical: pairs sorted by UTF-8 bytes, length-prefixed", (t) => {
  t.is(encodeBoundContext("data").toString("hex"), "01" + "00000000" + "00000000");
  t.is(encodeBoundContext("datakey").toString("hex"), "02" + "00000000" + "00000000");
  const encoded = encodeBoundContext("data", { additionalAuthenticatedData: "hi", encryptionContext: { b: "2", a: "1" } });
  t.is(encoded.toString("hex"), "01" + "00000002" + "6869" + "00000002" + "00000001" + "61" + "00000001" + "31" + "00000001" + "62" + "00000001" + "32");
  // UTF-8 byte order, not UTF-16 order: U+FF5E (ef bd 9e) sorts before U+1F600 (f0 9f 98 80), although its UTF-16 unit is larger.
  const order = encodeBoundContext("data", { encryptionContext: { "\u{1F600}": "x", "\uFF5E": "y" } });
  t.true(order.indexOf(Buffer.from("\uFF5E")) < order.indexOf(Buffer.from("\u{1F600}")));
  // Absent and empty are the same; order of pairs does not matter.
  t.deepEqual(encodeBoundContext("data", { additionalAuthenticatedData: "", encryptionContext: {} }), encodeBoundContext("data"));
  t.deepEqual(encodeBoundContext("data", { encryptionContext: { x: "1", y: "2" } }), encodeBoundContext("data", { encryptionContext: { y: "2", x: "1" } }));
  // JSON's own "__proto__" key is an ordinary pair; a null-prototype object is accepted.
  const parsed = JSON.parse('{"__proto__":"v"}') as Record<string, string>;
  t.true(encodeBoundContext("data", { encryptionContext: parsed }).includes(Buffer.from("__proto__")));
  const bare = Object.assign(Object.create(null) as Record<string, string>, { k: "v" });
  t.deepEqual(encodeBoundContext("data", { encryptionContext: bare }), encodeBoundContext("data", { encryptionContext: { k: "v" } }));
});

/** The layout of context.ts written the plain way (Buffer.from for every string, Buffer.compare to sort): the fast encoder must agree. */
function referenceEncoding(purpose: "data" | "datakey", aad: string | undefined, context: Record<string, string> | undefined): Buffer {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const text = (s: string): Buffer => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s, "utf8")]);
  const pairs = Object.entries(context ?? {}).sort(([x], [y]) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  return Buffer.concat([Buffer.from([purpose === "data" ? 1 : 2]), text(aad ?? ""), u32(pairs.length), ...pairs.flatMap(([k, v]) => [text(k), text(v)])]);
}

test("fast-check: the encoding equals a plain reference for any well-formed text (ASCII, escapes, BMP, astral), up to 40 pairs", (t) => {
  const unit = fc.constantFrom("a", "Z", "0", " ", '"', "\\", "\n", "\u0001", "\u007f", "\u0080", "é", "\u2028", "\uFF5E", "\uD7FF", "\uE000", "\u{1F511}", "\u{10FFFF}");
  const text = fc.string({ unit, maxLength: 8 });
  const input = fc.record({
    purpose: fc.constantFrom("data" as const, "datakey" as const),
    aad: fc.option(fc.string({ unit, maxLength: 20 }), { nil: undefined }),
    context: fc.option(fc.dictionary(text.filter((k) => k.length > 0), text, { maxKeys: 40 }), { nil: undefined }),
  });
  fc.assert(fc.property(input, ({ purpose, aad, context }) => {
    const expected = referenceEncoding(purpose, aad, context);
    let actual: Buffer;
    try {
      actual = encodeBoundContext(purpose, { additionalAuthenticatedData: aad, encryptionContext: context });
    } catch (error) {
      // Only the documented limits may refuse it.
      return error instanceof KmsError && (Buffer.byteLength(aad ?? "") > MAX_AAD_BYTES || JSON.stringify(context ?? {}).length > MAX_CONTEXT_CHARS);
    }
    return actual.equals(expected);
  }), { numRuns: 3000 });
  // A lone surrogate anywhere is refused, paired ones are not.
  for (const lone of ["\uD800", "\uDBFF", "\uDC00", "a\uDFFFb", "\uD83D\uD83D", "\uDE00\uD83D"]) {
    throwsKms(t, () => encodeBoundContext("data", { additionalAuthenticatedData: lone }), "KMS.0308");
    throwsKms(t, () => encodeBoundContext("data", { encryptionContext: { [lone]: "v" } }), "KMS.0208");
    throwsKms(t, () => encodeBoundContext("data", { encryptionContext: { k: lone } }), "KMS.0208");
  }
  t.deepEqual(encodeBoundContext("data", { encryptionContext: { "\uD83D\uDE00": "\uD83D\uDE00" } }), referenceEncoding("data", undefined, { "\u{1F600}": "\u{1F600}" }));
});

test("fast-check: the header takes exactly the key ids the UUID pattern takes (either case), and writes their bytes", (t) => {
  const iv = Buffer.alloc(12, 9);
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;
  const near = fc.string({ unit: fc.constantFrom("0", "9", "a", "f", "A", "F", "g", "G", "-", "/", ":", "@", "`", " ", "\u0660"), minLength: 34, maxLength: 38 });
  const cased = fc.tuple(fc.uuid(), fc.boolean()).map(([u, upper]) => (upper ? u.toUpperCase() : u));
  const odd = fc.constantFrom("-", "g", "G", "/", ":", "@", "`", "[", "{", " ", "\u0660", "\uFF10");
  const mutated = fc.tuple(cased, fc.nat(35), odd).map(([u, at, c]) => u.slice(0, at) + c + u.slice(at + 1));
  fc.assert(fc.property(fc.oneof(near, cased, mutated), (keyId) => {
    let header: Buffer;
    try {
      header = encodeHeader({ keyId, version: 7, iv });
    } catch (error) {
      return !uuid.test(keyId) && error instanceof KmsError && error.code === "KMS.0205";
    }
    return uuid.test(keyId) && header.subarray(3, 19).equals(keyIdToBytes(keyId)) && parseBlob(Buffer.concat([header, Buffer.alloc(17)])).keyId === keyId.toLowerCase();
  }), { numRuns: 3000 });
  t.pass();
});

test("fast-check: the encoding is injective — different purposes, AADs or contexts never give the same bytes", (t) => {
  const text = fc.string({ unit: "grapheme", maxLength: 6 });
  const bound = fc.record({
    purpose: fc.constantFrom("data" as const, "datakey" as const),
    aad: fc.option(fc.string({ unit: "grapheme-ascii", maxLength: 8 }), { nil: undefined }),
    context: fc.option(fc.dictionary(text.filter((k) => k.length > 0), text, { maxKeys: 4 }), { nil: undefined }),
  });
  const canonical = (b: { aad: string | undefined; context: Record<string, string> | undefined; purpose: string }): string =>
    JSON.stringify([b.purpose, b.aad ?? "", Object.entries(b.context ?? {}).sort(([x], [y]) => Buffer.compare(Buffer.from(x), Buffer.from(y)))]);
  fc.assert(fc.property(bound, bound, (a, b) => {
    const ea = encodeBoundContext(a.purpose, { additionalAuthenticatedData: a.aad, encryptionContext: a.context });
    const eb = encodeBoundContext(b.purpose, { additionalAuthenticatedData: b.aad, encryptionContext: b.context });
    return ea.equals(eb) === (canonical(a) === canonical(b));
  }), { numRuns: 2000 });
  // A separator-shifting pair: {"a":"bc"} vs {"ab":"c"} differ.
  t.notDeepEqual(encodeBoundContext("data", { encryptionContext: { a: "bc" } }), encodeBoundContext("data", { encryptionContext: { ab: "c" } }));
  // The AAD string and a context holding the same text differ.
  t.notDeepEqual(encodeBoundContext("data", { additionalAuthenticatedData: "k" }), encodeBoundContext("data", { encryptionContext: { k: "" } }));
});

test("limits: AAD at most 128 UTF-8 bytes (KMS.0308); context JSON at most 8192 characters, string values, plain objects (KMS.0208)", (t) => {
  t.notThrows(() => encodeBoundContext("data", { additionalAuthenticatedData: "a".repeat(MAX_AAD_BYTES) }));
  throwsKms(t, () => encodeBoundContext("data", { additionalAuthenticatedData: "a".repeat(MAX_AAD_BYTES + 1) }), "KMS.0308");
  throwsKms(t, () => encodeBoundContext("data", { additionalAuthenticatedData: "é".repeat(65) }), "KMS.0308");
  throwsKms(t, () => encodeBoundContext("data", { additionalAuthenticatedData: "\uD800" }), "KMS.0308");
  throwsKms(t, () => encodeBoundContext("data", { additionalAuthenticatedData: 5 as unknown as string }), "KMS.0308");

  const fill = (chars: number): Record<string, string> => ({ k: "v".repeat(chars - '{"k":""}'.length) });
  t.is(JSON.stringify(fill(MAX_CONTEXT_CHARS)).length, MAX_CONTEXT_CHARS);
  t.notThrows(() => encodeBoundContext("data", { encryptionContext: fill(MAX_CONTEXT_CHARS) }));
  throwsKms(t, () => encodeBoundContext("data", { encryptionContext: fill(MAX_CONTEXT_CHARS + 1) }), "KMS.0208");
  const invalid: unknown[] = [
    null, [], ["a"], "k=v", 5, new Map([["k", "v"]]), new Date(0), { k: 1 }, { k: null }, { k: { nested: "v" } }, { k: ["v"] }, { "": "v" },
    { "\uDC00": "v" }, { k: "\uD83D" },
  ];
  // The character count is JSON's, escapes included: a quote counts 2, a control character 6.
  const quotes = { k: '"'.repeat((MAX_CONTEXT_CHARS - 8) / 2) };
  t.is(JSON.stringify(quotes).length, MAX_CONTEXT_CHARS);
  t.notThrows(() => encodeBoundContext("data", { encryptionContext: quotes }));
  throwsKms(t, () => encodeBoundContext("data", { encryptionContext: { ...quotes, "": "" } }), "KMS.0208");
  throwsKms(t, () => encodeBoundContext("data", { encryptionContext: { k: quotes.k.slice(1) + "\u0001" } }), "KMS.0208");
  const piece = fc.constantFrom("a", "é", '"', "\\", "\n", "\u0001", "\u2028", "\u{1F511}", "x".repeat(500), '"'.repeat(300), "\u0002".repeat(200));
  const big = fc.dictionary(fc.string({ unit: piece, minLength: 1, maxLength: 6 }), fc.string({ unit: piece, maxLength: 30 }), { maxKeys: 5 });
  fc.assert(fc.property(big, (context) => {
    const over = JSON.stringify(context).length > MAX_CONTEXT_CHARS;
    try {
      encodeBoundContext("data", { encryptionContext: context });
      return !over;
    } catch (error) {
      return over && error instanceof KmsError && error.code === "KMS.0208";
    }
  }), { numRuns: 500 });
  for (const context of invalid) throwsKms(t, () => encodeBoundContext("data", { encryptionContext: context } as BoundContext), "KMS.0208");
  throwsKms(t, () => encodeBoundContext("other" as "data"), "KMS.0308");
});

test("DEK ‖ SHA-256(DEK): the OTC example verifies; wrong digest KMS.2103, wrong length KMS.2104, bad declared length KMS.0308", (t) => {
  // From the OTC API reference, "Encrypting a DEK": a 512-bit DEK and its digest.
  const dek = Buffer.from("7549d9aea901767bf3c0b3e14b10722eaf6f59053bbd82045d04e075e809a0fe6ccab48f8e5efe74e4b18ff0512525e527b10331100f357bf42125d8d5ced94f", "hex");
  const digest = "fbc8ac72b0785ca7fe33eb6776ce3990b11e32b299d9c0a9ee0305fb9540f797";
  t.is(dekDigest(dek).toString("hex"), digest);
  const plainText = Buffer.concat([dek, Buffer.from(digest, "hex")]);
  t.deepEqual(splitDekAndDigest(plainText, 64), dek);
  for (let byte = 0; byte < plainText.length; byte += 7) {
    const altered = Buffer.from(plainText);
    altered[byte]! ^= 0x10;
    throwsKms(t, () => splitDekAndDigest(altered, 64), "KMS.2103");
  }
  throwsKms(t, () => splitDekAndDigest(plainText, 63), "KMS.2104");
  throwsKms(t, () => splitDekAndDigest(plainText.subarray(0, 95), 64), "KMS.2104");
  for (const length of [0, 1025, 1.5, -64]) throwsKms(t, () => splitDekAndDigest(plainText, length), "KMS.0308");
  const one = Buffer.from([7]);
  t.deepEqual(splitDekAndDigest(Buffer.concat([one, dekDigest(one)]), 1), one);
});

test("decrypt-datakey's datakey_cipher_length is checked against the blob (KMS.2204); a blob too short is left to KMS.2201", (t) => {
  t.notThrows(() => checkDatakeyCipherLength(Buffer.alloc(64 + BLOB_OVERHEAD_BYTES), 64));
  throwsKms(t, () => checkDatakeyCipherLength(Buffer.alloc(64 + BLOB_OVERHEAD_BYTES), 32), "KMS.2204");
  throwsKms(t, () => checkDatakeyCipherLength(Buffer.alloc(64 + BLOB_OVERHEAD_BYTES), 2000), "KMS.0308");
  t.notThrows(() => checkDatakeyCipherLength(Buffer.alloc(10), 64));
});

test("docs/ciphertext-format.md shows the worked example's bytes and lists every code the envelope raises", (t) => {
  const doc = readFileSync(new URL("../../../docs/ciphertext-format.md", import.meta.url), "utf8");
  t.true(doc.includes(VECTOR.blob.toString("hex")));
  t.true(doc.includes(VECTOR.blob.toString("base64")));
  for (const code of ["KMS.2201", "KMS.2101", "KMS.0205", "KMS.0208", "KMS.0308", "KMS.2103", "KMS.2104", "KMS.2204", "KMS.0101", "KMS.0104"]) {
    t.regex(doc, new RegExp(`\\| ${code.replace(".", "\\.")} \\|`, "u"), code);
  }
});
