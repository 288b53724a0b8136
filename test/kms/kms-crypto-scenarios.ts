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
      await rejects(t, h.kms.encryptData(carol, { keyId: key.keyId, plainText: "x", encryptionAlgorithm: "RSAES_OAEP_SHA_256" as "SYMMETRIC_DEFAULT" }), "KMS.0308");
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
      for (const [request, bytes] of [[{}, 32], [{ keySpec: "AES_256" }, 32], [{ keySpec: "AES_128" }, 16], [{ datakeyLength: 8 }, 1], [{ datakeyLength: "512" }, 64], [{ datakeyLength: 8192 }, 1024]] as const) {
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
      await rejects(t, h.kms.genRandom(carol, { randomDataLength: "lots" }), "KMS.0308");
      await rejects(t, h.kms.genRandom(h.ctx("erin"), { randomDataLength: 8 }), "KMS.0306");
      const records = (await h.store.audit.query({ action: "genRandom" })).records;
      t.true(records.every((record) => record.keyId === null));
      t.is(records.filter((record) => record.outcome === "success").length, 6);
    },
  },
];
