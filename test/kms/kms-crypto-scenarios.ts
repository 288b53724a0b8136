/**
 * Encryption through the Kms, one body for both tokens (kms-crypto-emulator.test.ts,
 * kms-crypto-softhsm.test.ts): encrypt-data/decrypt-data round trips for every size class and
 * every kind of bound context; every single-bit change, another context, another purpose, or a
 * blob presented in another project is the opaque KMS.2201; data keys (create, with and without
 * plaintext, encrypt/decrypt with Huawei's digest convention); re-encrypt; gen-random.
 */
import { createHash } from "node:crypto";
import { parseBlob } from "../../src/kms/envelope/blob.js";
import type { BoundFields } from "../../src/kms/api.js";
import { Q, rejects, type KmsScenario } from "./kms-fixtures.js";

const SIZES = [1, 2, 15, 16, 17, 31, 32, 33, 255, 256, 1000, 1024, 2048, 4095, 4096];

const CONTEXTS: Array<[string, BoundFields]> = [
  ["none", {}],
  ["AAD", { additionalAuthenticatedData: "order=42" }],
  ["128-byte AAD", { additionalAuthenticatedData: "a".repeat(128) }],
  ["context", { encryptionContext: { bucket: "photos", object: "2024/cat.jpg" } }],
  ["unicode context", { encryptionContext: { "ключ": "значение", "🔑": "値" } }],
  ["AAD and context", { additionalAuthenticatedData: "x", encryptionContext: { a: "1" } }],
];

/** Contexts that must not open a blob bound to `{ additionalAuthenticatedData: "x", encryptionContext: { a: "1" } }`. */
const WRONG: BoundFields[] = [
  {},
  { additionalAuthenticatedData: "x" },
  { encryptionContext: { a: "1" } },
  { additionalAuthenticatedData: "X", encryptionContext: { a: "1" } },
  { additionalAuthenticatedData: "x", encryptionContext: { a: "2" } },
  { additionalAuthenticatedData: "x", encryptionContext: { A: "1" } },
  { additionalAuthenticatedData: "x", encryptionContext: { a: "1", b: "2" } },
  { additionalAuthenticatedData: "x ", encryptionContext: { a: "1" } },
];

function flip(bytes: Uint8Array, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

const sha256 = (bytes: Uint8Array): Buffer => createHash("sha256").update(bytes).digest();

export const CRYPTO_SCENARIOS: KmsScenario[] = [
  {
    title: "encrypt-data / decrypt-data round trips: 1..4096 bytes × every kind of bound context; the blob names key and version",
    async run(t, h) {
      const alice = h.ctx("alice");
      const carol = h.ctx("carol");
      const key = await h.kms.createKey(alice, { keyAlias: "round-trip" });
      const pending: Array<Promise<void>> = [];
      for (const size of SIZES) {
        for (const [name, context] of CONTEXTS) {
          pending.push((async () => {
            const plainText = h.backend.random(size);
            const sealed = await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText, ...context });
            t.is(sealed.keyId, key.keyId);
            t.is(sealed.cipherText.length, size + 51, "header 35 + tag 16");
            const header = parseBlob(sealed.cipherText);
            t.deepEqual([header.keyId, header.version], [key.keyId, 1]);
            const opened = await h.kms.decryptData(h.ctx("carol"), { cipherText: sealed.cipherText, ...context });
            t.deepEqual([opened.keyId, opened.plainText.equals(plainText)], [key.keyId, true], `${size} bytes, ${name}`);
          })());
        }
      }
      await Promise.all(pending);
      // A string is UTF-8, by alias, with the key named on decrypt too.
      const text = "grüße, 世界 🌍";
      const sealed = await h.kms.encryptData(carol, { keyId: "round-trip", plainText: text, encryptionAlgorithm: "SYMMETRIC_DEFAULT" });
      t.is((await h.kms.decryptData(carol, { cipherText: sealed.cipherText, keyId: "round-trip" })).plainText.toString("utf8"), text);
      // The context's pairs may come in any order.
      const ordered = await h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x", encryptionContext: { a: "1", b: "2", c: "3" } });
      t.is((await h.kms.decryptData(carol, { cipherText: ordered.cipherText, encryptionContext: { c: "3", a: "1", b: "2" } })).plainText.toString(), "x");
      // Two encryptions of one plaintext differ (fresh IVs).
      const again = await h.kms.encryptData(carol, { keyId: key.keyId, plainText: text });
      t.false(again.cipherText.equals(sealed.cipherText));

      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: Buffer.alloc(0) }), "KMS.2101");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "" }), "KMS.2101");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: Buffer.alloc(4097) }), "KMS.2101");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "é".repeat(2049) }), "KMS.2101", "4098 bytes of UTF-8");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x", additionalAuthenticatedData: "a".repeat(129) }), "KMS.0308");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x", encryptionContext: { a: 1 as unknown as string } }), "KMS.0208");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x", encryptionAlgorithm: "RSAES_OAEP_SHA_256" as "SYMMETRIC_DEFAULT" }), "KMS.2105", "an asymmetric key's algorithm");
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x", encryptionAlgorithm: "AES_256_GCM" as "SYMMETRIC_DEFAULT" }), "KMS.0308", "no algorithm of Huawei's");
    },
  },
  {
    title: "decrypt-data: a flipped bit anywhere, a cut or grown blob, another AAD or context, or a data key's blob is the opaque KMS.2201",
    async run(t, h) {
      const carol = h.ctx("carol");
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "tamper" });
      const context = { additionalAuthenticatedData: "x", encryptionContext: { a: "1" } };
      const { cipherText } = await h.kms.encryptData(carol, { keyId: key.keyId, plainText: "sixteen bytes!!!", ...context });
      t.is((await h.kms.decryptData(carol, { cipherText, ...context })).plainText.toString(), "sixteen bytes!!!");
      const bits = cipherText.length * 8;
      const failures = await Promise.all(Array.from({ length: bits }, async (_, bit) => {
        try {
          await h.kms.decryptData(h.ctx("carol"), { cipherText: flip(cipherText, bit), ...context });
          return `bit ${bit}: decrypted`;
        } catch (error) {
          const code = (error as { code?: string }).code;
          return code === "KMS.2201" ? null : `bit ${bit}: ${code}`;
        }
      }));
      t.deepEqual(failures.filter((f) => f !== null), [], `all ${bits} single-bit changes are KMS.2201`);
      for (const cut of [0, 1, 35, 50, 51, cipherText.length - 1]) {
        await rejects(t, h.kms.decryptData(carol, { cipherText: cipherText.subarray(0, cut), ...context }), "KMS.2201", `cut to ${cut}`);
      }
      await rejects(t, h.kms.decryptData(carol, { cipherText: Buffer.concat([cipherText, Buffer.from([0])]), ...context }), "KMS.2201");
      await rejects(t, h.kms.decryptData(carol, { cipherText: Buffer.alloc(5000), ...context }), "KMS.2201");
      for (const wrong of WRONG) await rejects(t, h.kms.decryptData(carol, { cipherText, ...wrong }), "KMS.2201", JSON.stringify(wrong));
      // The two purposes do not mix.
      const dataKey = await h.kms.createDataKey(carol, { keyId: key.keyId, datakeyLength: 128 });
      await rejects(t, h.kms.decryptData(carol, { cipherText: dataKey.cipherText }), "KMS.2201", "decrypt-data will not open a data key");
      await rejects(t, h.kms.decryptDataKey(carol, { keyId: key.keyId, cipherText, datakeyCipherLength: 16, ...context }), "KMS.2201", "decrypt-datakey will not open data");
      // A named key that is not the blob's.
      const other = await h.kms.createKey(h.ctx("alice"), { keyAlias: "other" });
      await rejects(t, h.kms.decryptData(carol, { cipherText, keyId: other.keyId, ...context }), "KMS.2201");
      await rejects(t, h.kms.decryptData(carol, { cipherText, keyId: "00000000-0000-4000-8000-000000000000", ...context }), "KMS.0207");
    },
  },
  {
    title: "every blob the Kms hands out is docs/ciphertext-format.md byte for byte: header, IV, and GCM additional data = header ‖ bound context with the operation's purpose",
    async run(t, h) {
      // The token's GCM calls, as the Kms makes them.
      const seals: Array<{ iv: Buffer; aad: Buffer; length: number }> = [];
      const opens: Array<{ iv: Buffer; aad: Buffer }> = [];
      const real = h.backend;
      const spy = new Proxy(real, {
        get(target, name) {
          if (name === "encrypt") {
            return (version: Parameters<typeof real.encrypt>[0], iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array) => {
              seals.push({ iv: Buffer.from(iv), aad: Buffer.from(aad), length: plaintext.length });
              return target.encrypt(version, iv, aad, plaintext, out);
            };
          }
          if (name === "decrypt") {
            return (version: Parameters<typeof real.decrypt>[0], iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array) => {
              opens.push({ iv: Buffer.from(iv), aad: Buffer.from(aad) });
              return target.decrypt(version, iv, aad, sealed);
            };
          }
          const value = Reflect.get(target, name, target) as unknown;
          return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        },
      });
      const kms = h.reconfigure({ backend: spy });
      const carol = h.ctx("carol");
      const key = await kms.createKey(h.ctx("alice"), { keyAlias: "spec" });
      const other = await kms.createKey(h.ctx("alice"), { keyAlias: "spec-2" });

      // The encoding of §3, from the document alone.
      const u32 = (n: number): Buffer => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(n);
        return out;
      };
      const utf8 = (text: string): Buffer => Buffer.concat([u32(Buffer.byteLength(text)), Buffer.from(text, "utf8")]);
      const boundContext = (purpose: number, fields: BoundFields): Buffer => {
        const pairs = Object.entries(fields.encryptionContext ?? {})
          .map(([k, v]) => [Buffer.from(k, "utf8"), v] as const)
          .sort(([a], [b]) => Buffer.compare(a, b));
        return Buffer.concat([
          Buffer.from([purpose]), utf8(fields.additionalAuthenticatedData ?? ""), u32(pairs.length),
          ...pairs.flatMap(([k, v]) => [u32(k.length), k, utf8(v)]),
        ]);
      };
      // The layout of §2, from the document alone.
      const check = (what: string, blob: Buffer, keyId: string, version: number, plaintextLength: number, purpose: number, fields: BoundFields): void => {
        t.is(blob.length, 35 + plaintextLength + 16, what);
        t.is(blob.subarray(0, 3).toString("hex"), "484b01", what);
        t.is(blob.subarray(3, 19).toString("hex"), keyId.replace(/-/g, ""), what);
        t.is(blob.readUInt32BE(19), version, what);
        const seal = seals.at(-1)!;
        t.is(seal.length, plaintextLength, what);
        t.true(seal.iv.equals(blob.subarray(23, 35)), `${what}: the IV is bytes 23..35`);
        t.is(seal.aad.toString("hex"), Buffer.concat([blob.subarray(0, 35), boundContext(purpose, fields)]).toString("hex"), `${what}: AAD`);
      };
      const fields: BoundFields = { additionalAuthenticatedData: "ä-42", encryptionContext: { "😀": "astral", "ﬀ": "bmp", b: "", a: "b,c" } };
      const data = await kms.encryptData(carol, { keyId: key.keyId, plainText: "payload", ...fields });
      check("encrypt-data", data.cipherText, key.keyId, 1, 7, 0x01, fields);
      const made = await kms.createDataKey(carol, { keyId: key.keyId, datakeyLength: 256, ...fields });
      check("create-datakey", made.cipherText, key.keyId, 1, 32, 0x02, fields);
      const hidden = await kms.createDataKeyWithoutPlaintext(carol, { keyId: key.keyId, keySpec: "AES_128" });
      check("create-datakey-without-plaintext", hidden.cipherText, key.keyId, 1, 16, 0x02, {});
      const dek = h.backend.random(24);
      const wrapped = await kms.encryptDataKey(carol, { keyId: key.keyId, plainText: Buffer.concat([dek, sha256(dek)]), datakeyPlainLength: 24, ...fields });
      check("encrypt-datakey", wrapped.cipherText, key.keyId, 1, 24, 0x02, fields);
      await kms.rotateKeyOnDemand(h.ctx("alice"), { keyId: other.keyId });
      const otherVersion = parseBlob((await kms.encryptData(carol, { keyId: other.keyId, plainText: "v" })).cipherText).version;
      const moved = await kms.reEncrypt(carol, { cipherText: data.cipherText, ...{ sourceAdditionalAuthenticatedData: fields.additionalAuthenticatedData, sourceEncryptionContext: fields.encryptionContext }, destinationKeyId: other.keyId });
      t.true(opens.at(-1)!.aad.equals(Buffer.concat([data.cipherText.subarray(0, 35), boundContext(0x01, fields)])), "re-encrypt opens with the source's binding");
      check("re-encrypt (data)", moved.cipherText, other.keyId, otherVersion, 7, 0x01, {});
      const movedKey = await kms.reEncrypt(carol, { cipherText: made.cipherText, datakeyCipherLength: 32, sourceAdditionalAuthenticatedData: fields.additionalAuthenticatedData, sourceEncryptionContext: fields.encryptionContext, destinationKeyId: other.keyId, destinationEncryptionContext: { k: "v" } });
      check("re-encrypt (data key)", movedKey.cipherText, other.keyId, otherVersion, 32, 0x02, { encryptionContext: { k: "v" } });
      // Opening binds the same bytes.
      await kms.decryptData(carol, { cipherText: data.cipherText, ...fields });
      t.true(opens.at(-1)!.aad.equals(Buffer.concat([data.cipherText.subarray(0, 35), boundContext(0x01, fields)])), "decrypt-data");
      t.true(opens.at(-1)!.iv.equals(data.cipherText.subarray(23, 35)));
      await kms.decryptDataKey(carol, { keyId: key.keyId, cipherText: made.cipherText, datakeyCipherLength: 32, ...fields });
      t.true(opens.at(-1)!.aad.equals(Buffer.concat([made.cipherText.subarray(0, 35), boundContext(0x02, fields)])), "decrypt-datakey");
    },
  },
  {
    title: "the caller's AAD and context are checked before the blob (docs/ciphertext-format.md §4): KMS.0208/0308 whatever the blob, so a bad request reveals nothing of the key it names",
    async run(t, h) {
      const carol = h.ctx("carol");
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "order" });
      const { cipherText } = await h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x" });
      const dataKey = await h.kms.createDataKey(carol, { keyId: key.keyId, datakeyLength: 128 });
      // The same blobs naming a key id that exists nowhere.
      const unknown = Buffer.from(cipherText);
      unknown.fill(0xab, 3, 19);
      const unknownDataKey = Buffer.from(dataKey.cipherText);
      unknownDataKey.fill(0xab, 3, 19);
      const badContexts: Array<[string, BoundFields, "KMS.0208" | "KMS.0308"]> = [
        ["empty context key", { encryptionContext: { "": "v" } }, "KMS.0208"],
        ["lone surrogate", { encryptionContext: { k: "\uD800" } }, "KMS.0208"],
        ["context over 8192 characters", { encryptionContext: { k: "v".repeat(8192) } }, "KMS.0208"],
        ["AAD over 128 bytes", { additionalAuthenticatedData: "é".repeat(65) }, "KMS.0308"],
      ];
      for (const [what, bad, code] of badContexts) {
        for (const [blobName, blob] of [["its key's blob", cipherText], ["an unknown key's blob", unknown], ["garbage", Buffer.alloc(10)]] as const) {
          await rejects(t, h.kms.decryptData(carol, { cipherText: blob, ...bad }), code, `decrypt-data, ${what}, ${blobName}`);
        }
        await rejects(t, h.kms.decryptData(carol, { cipherText: unknown, keyId: key.keyId, ...bad }), code, `decrypt-data naming the key, ${what}`);
        for (const [blobName, blob] of [["its key's blob", dataKey.cipherText], ["an unknown key's blob", unknownDataKey]] as const) {
          await rejects(t, h.kms.decryptDataKey(carol, { keyId: key.keyId, cipherText: blob, datakeyCipherLength: 16, ...bad }), code, `decrypt-datakey, ${what}, ${blobName}`);
        }
        const source = { sourceAdditionalAuthenticatedData: bad.additionalAuthenticatedData, sourceEncryptionContext: bad.encryptionContext };
        for (const [blobName, blob] of [["its key's blob", cipherText], ["an unknown key's blob", unknown]] as const) {
          await rejects(t, h.kms.reEncrypt(carol, { cipherText: blob, destinationKeyId: key.keyId, ...source }), code, `re-encrypt, ${what}, ${blobName}`);
        }
      }
    },
  },
  {
    title: "a blob presented in another project is the opaque KMS.2201, exactly like a blob of a key that never existed",
    async run(t, h) {
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "home" });
      const { cipherText } = await h.kms.encryptData(h.ctx("carol"), { keyId: key.keyId, plainText: "private" });
      const dataKey = await h.kms.createDataKey(h.ctx("carol"), { keyId: key.keyId });
      const bob = h.ctx("bob", Q);
      const foreign = await rejects(t, h.kms.decryptData(bob, { cipherText }), "KMS.2201");
      // The same blob naming a key id that exists nowhere.
      const unknown = Buffer.from(cipherText);
      unknown.fill(0xab, 3, 19);
      const missing = await rejects(t, h.kms.decryptData(bob, { cipherText: unknown }), "KMS.2201");
      t.is(foreign.message, missing.message);
      t.is(foreign.status, missing.status);
      await rejects(t, h.kms.decryptDataKey(bob, { keyId: key.keyId, cipherText: dataKey.cipherText, datakeyCipherLength: 32 }), "KMS.0207");
      const bobsKey = await h.kms.createKey(bob, { keyAlias: "bobs" });
      await rejects(t, h.kms.reEncrypt(bob, { cipherText, destinationKeyId: bobsKey.keyId }), "KMS.2201");
      // Disabling the key in its own project is reported there, never to the other project.
      await h.kms.disableKey(h.ctx("alice"), { keyId: key.keyId });
      await rejects(t, h.kms.decryptData(h.ctx("carol"), { cipherText }), "KMS.0209");
      await rejects(t, h.kms.decryptData(bob, { cipherText }), "KMS.2201");
    },
  },
  {
    title: "data keys: create-datakey by key_spec or datakey_length, without plaintext, encrypt-datakey / decrypt-datakey with DEK ‖ SHA-256",
    async run(t, h) {
      const carol = h.ctx("carol");
      const key = await h.kms.createKey(h.ctx("alice"), { keyAlias: "dek" });
      const keyId = key.keyId;
      for (const [request, bytes] of [[{}, 32], [{ keySpec: "" }, 32], [{ keySpec: "", datakeyLength: "" }, 32], [{ keySpec: "AES_256" }, 32], [{ keySpec: "AES_128" }, 16], [{ datakeyLength: 8 }, 1], [{ datakeyLength: "512" }, 64], [{ datakeyLength: 8192 }, 1024]] as const) {
        const made = await h.kms.createDataKey(carol, { keyId, ...request, additionalAuthenticatedData: "dek" });
        t.is(made.plainText.length, bytes, JSON.stringify(request));
        t.is(made.cipherText.length, bytes + 51);
        const opened = await h.kms.decryptDataKey(carol, { keyId, cipherText: made.cipherText, datakeyCipherLength: String(bytes), additionalAuthenticatedData: "dek" });
        t.true(opened.dataKey.equals(made.plainText));
        t.is(opened.datakeyLength, bytes);
        t.true(opened.datakeyDgst.equals(sha256(made.plainText)));
      }
      const a = await h.kms.createDataKey(carol, { keyId });
      const b = await h.kms.createDataKey(carol, { keyId });
      t.false(a.plainText.equals(b.plainText), "fresh random data keys");
      const hidden = await h.kms.createDataKeyWithoutPlaintext(carol, { keyId, keySpec: "AES_128" });
      t.deepEqual(Object.keys(hidden).sort(), ["cipherText", "keyId"]);
      t.is((await h.kms.decryptDataKey(carol, { keyId, cipherText: hidden.cipherText, datakeyCipherLength: 16 })).dataKey.length, 16);

      await rejects(t, h.kms.createDataKey(carol, { keyId, datakeyLength: 7 }), "KMS.1903");
      await rejects(t, h.kms.createDataKey(carol, { keyId, datakeyLength: 0 }), "KMS.1901");
      await rejects(t, h.kms.createDataKey(carol, { keyId, datakeyLength: 8200 }), "KMS.1901");
      await rejects(t, h.kms.createDataKey(carol, { keyId, datakeyLength: -7 }), "KMS.1901");
      await rejects(t, h.kms.createDataKey(carol, { keyId, datakeyLength: 8201 }), "KMS.1901");
      // Not a count of bits is out of range, as the HTTP schema reports it.
      await rejects(t, h.kms.createDataKey(carol, { keyId, datakeyLength: "lots" }), "KMS.1901");
      await rejects(t, h.kms.createDataKey(carol, { keyId, keySpec: "SM4" }), "KMS.1902");
      // Names every object has are no key specs either.
      for (const keySpec of ["toString", "constructor", "__proto__"]) await rejects(t, h.kms.createDataKey(carol, { keyId, keySpec }), "KMS.1902", keySpec);
      // Huawei: when both are given, datakey_length decides (huaweicloudsdkkms create_datakey_request_body).
      t.is((await h.kms.createDataKey(carol, { keyId, keySpec: "AES_256", datakeyLength: 64 })).plainText.length, 8);

      const dek = h.backend.random(64);
      const wrapped = await h.kms.encryptDataKey(carol, { keyId, plainText: Buffer.concat([dek, sha256(dek)]), datakeyPlainLength: "64", encryptionContext: { app: "x" } });
      t.is(wrapped.datakeyLength, 64);
      const back = await h.kms.decryptDataKey(carol, { keyId: "dek", cipherText: wrapped.cipherText, datakeyCipherLength: 64, encryptionContext: { app: "x" } });
      t.true(back.dataKey.equals(dek));
      t.true(back.datakeyDgst.equals(sha256(dek)));
      const badDigest = Buffer.concat([dek, sha256(dek)]);
      badDigest[70]! ^= 1;
      await rejects(t, h.kms.encryptDataKey(carol, { keyId, plainText: badDigest, datakeyPlainLength: 64 }), "KMS.2103");
      await rejects(t, h.kms.encryptDataKey(carol, { keyId, plainText: Buffer.concat([dek, sha256(dek)]), datakeyPlainLength: 63 }), "KMS.2104");
      await rejects(t, h.kms.decryptDataKey(carol, { keyId, cipherText: wrapped.cipherText, datakeyCipherLength: 32, encryptionContext: { app: "x" } }), "KMS.2204");
      await rejects(t, h.kms.decryptDataKey(carol, { keyId, cipherText: wrapped.cipherText, datakeyCipherLength: 64 }), "KMS.2201", "context missing");
      const other = await h.kms.createKey(h.ctx("alice"), { keyAlias: "dek-2" });
      await rejects(t, h.kms.decryptDataKey(carol, { keyId: other.keyId, cipherText: wrapped.cipherText, datakeyCipherLength: 64, encryptionContext: { app: "x" } }), "KMS.2201");
      // key_id is required: an empty one names no key, so the blob's own key is not used in its place.
      await rejects(t, h.kms.decryptDataKey(carol, { keyId: "", cipherText: wrapped.cipherText, datakeyCipherLength: 64, encryptionContext: { app: "x" } }), "KMS.0204");
    },
  },
  {
    title: "re-encrypt moves a ciphertext to another key (and context) inside the service; a data key stays a data key; both keys are audited",
    async run(t, h) {
      const carol = h.ctx("carol");
      const alice = h.ctx("alice");
      const from = await h.kms.createKey(alice, { keyAlias: "from" });
      const to = await h.kms.createKey(alice, { keyAlias: "to" });
      const sealed = await h.kms.encryptData(carol, { keyId: from.keyId, plainText: "moving", additionalAuthenticatedData: "old" });
      const moved = await h.kms.reEncrypt(carol, {
        cipherText: sealed.cipherText, sourceKeyId: from.keyId, sourceAdditionalAuthenticatedData: "old",
        destinationKeyId: "to", destinationEncryptionContext: { new: "context" },
      });
      t.deepEqual(Object.keys(moved).sort(), ["cipherText", "keyId", "sourceKeyId"], "no plaintext in the result");
      t.deepEqual([moved.keyId, moved.sourceKeyId], [to.keyId, from.keyId]);
      t.is(parseBlob(moved.cipherText).keyId, to.keyId);
      t.is((await h.kms.decryptData(carol, { cipherText: moved.cipherText, encryptionContext: { new: "context" } })).plainText.toString(), "moving");
      await rejects(t, h.kms.decryptData(carol, { cipherText: moved.cipherText }), "KMS.2201");

      const dataKey = await h.kms.createDataKey(carol, { keyId: from.keyId, keySpec: "AES_128" });
      const movedKey = await h.kms.reEncrypt(carol, { cipherText: dataKey.cipherText, destinationKeyId: to.keyId, datakeyCipherLength: 16 });
      t.true((await h.kms.decryptDataKey(carol, { keyId: to.keyId, cipherText: movedKey.cipherText, datakeyCipherLength: 16 })).dataKey.equals(dataKey.plainText));
      await rejects(t, h.kms.decryptData(carol, { cipherText: movedKey.cipherText }), "KMS.2201", "still a data key's ciphertext");
      await rejects(t, h.kms.reEncrypt(carol, { cipherText: dataKey.cipherText, destinationKeyId: to.keyId }), "KMS.2201", "a data key's blob re-encrypted as data");
      await rejects(t, h.kms.reEncrypt(carol, { cipherText: sealed.cipherText, sourceKeyId: to.keyId, sourceAdditionalAuthenticatedData: "old", destinationKeyId: to.keyId }), "KMS.2201");
      await rejects(t, h.kms.reEncrypt(carol, { cipherText: sealed.cipherText, sourceAdditionalAuthenticatedData: "old", destinationKeyId: "nowhere" }), "KMS.0207");
      await rejects(t, h.kms.reEncrypt(h.ctx("alice"), { cipherText: sealed.cipherText, destinationKeyId: to.keyId }), "KMS.0306");

      const records = (await h.store.audit.query({ action: "reEncryptData", outcome: "success" })).records;
      t.is(records.length, 4, "two requests, a record for each key");
      t.deepEqual([...new Set(records.map((record) => record.keyId))].sort(), [from.keyId, to.keyId].sort());
    },
  },
  {
    title: "gen-random: 8..8192 bits in steps of 8 from the token; other lengths are refused",
    async run(t, h) {
      const carol = h.ctx("carol");
      for (const [bits, bytes] of [[8, 1], [512, 64], ["512", 64], [8192, 1024]] as const) {
        t.is((await h.kms.genRandom(carol, { randomDataLength: bits })).randomData.length, bytes);
      }
      const a = await h.kms.genRandom(carol, { randomDataLength: 256 });
      const b = await h.kms.genRandom(carol, { randomDataLength: 256 });
      t.false(a.randomData.equals(b.randomData));
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: 7 }), "KMS.1802");
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: 0 }), "KMS.0308");
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: 8200 }), "KMS.0308");
      // Past either end of the range is out of range, whatever the step (as the HTTP schema reports it).
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: -1 }), "KMS.0308");
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: 8193 }), "KMS.0308");
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: 12 }), "KMS.1802");
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: "lots" }), "KMS.0308");
      await rejects(t, h.kms.genRandom(h.ctx("erin"), { randomDataLength: 8 }), "KMS.0306");
      const records = (await h.store.audit.query({ action: "genRandom" })).records;
      t.true(records.every((record) => record.keyId === null));
      t.is(records.filter((record) => record.outcome === "success").length, 6);
    },
  },
];
