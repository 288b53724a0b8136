// Every Wycheproof AES-GCM vector through the native core (single call, batch and async).
import test from "ava";
import { addon } from "../../src/crypto/addon.js";
import { gcmOpen, gcmOpenAsync, gcmOpenBatch, gcmSeal, gcmSealBatch } from "../../src/crypto/aead.js";
import { isNativeError } from "../../src/crypto/errors.js";
import { importKey } from "../../src/crypto/keys.js";
import { loadAead, type AeadVector } from "../vectors/wycheproof.js";

const vectors = loadAead("aes_gcm_test.json");
const label = (v: AeadVector): string => `tcId ${v.tcId} (${v.flags.join(",")}; key ${v.keySize}, iv ${v.ivSize} bits)`;

test("the Wycheproof AES-GCM file is complete: 316 vectors, valid and invalid", (t) => {
  t.is(vectors.length, 316);
  t.is(vectors.filter((v) => v.result === "valid").length, 229);
  t.is(vectors.filter((v) => v.result === "invalid").length, 87);
  t.is(vectors.filter((v) => v.result === "acceptable").length, 0);
});

test("Wycheproof AES-GCM valid vectors: seal gives exactly ct||tag and open gives msg", (t) => {
  const failures: string[] = [];
  let ran = 0;
  for (const v of vectors.filter((x) => x.result === "valid")) {
    const key = importKey(v.key);
    const params = { iv: v.iv, aad: v.aad, tagLength: v.tag.length };
    const expected = Buffer.concat([v.ct, v.tag]);
    try {
      if (!gcmSeal(key, v.msg, params).equals(expected)) failures.push(label(v) + ": seal differs");
      if (!gcmOpen(key, expected, params).equals(v.msg)) failures.push(label(v) + ": open differs");
    } catch (error) {
      failures.push(label(v) + ": threw " + String(error));
    }
    key.destroy();
    ran++;
  }
  t.log(`ran ${ran} valid AES-GCM vectors`);
  t.deepEqual(failures, []);
});

test("Wycheproof AES-GCM invalid vectors: rejected (modified tags: ERR_NATIVE_AUTH_TAG; empty IV: refused)", (t) => {
  const failures: string[] = [];
  let ran = 0;
  for (const v of vectors.filter((x) => x.result === "invalid")) {
    const key = importKey(v.key);
    const sealed = Buffer.concat([v.ct, v.tag]);
    const out = Buffer.alloc(v.ct.length);
    if (v.iv.length === 0) {
      // Refused both by the TypeScript wrapper and, beneath it, by the addon itself.
      const viaWrapper = t.throws(() => gcmOpen(key, sealed, { iv: v.iv, aad: v.aad }));
      const viaAddon = t.throws(() => addon.gcmOpen(key, v.iv, v.aad, sealed, 16, out));
      const viaAddonSeal = t.throws(() => addon.gcmSeal(key, v.iv, v.aad, v.msg, 16, Buffer.alloc(v.msg.length + 16)));
      if ((viaWrapper as { code?: string } | undefined)?.code !== "ERR_OUT_OF_RANGE") failures.push(label(v) + ": wrapper code");
      if (!isNativeError(viaAddon, "ERR_NATIVE_INVALID_ARGUMENT")) failures.push(label(v) + ": addon open code");
      if (!isNativeError(viaAddonSeal, "ERR_NATIVE_INVALID_ARGUMENT")) failures.push(label(v) + ": addon seal code");
    } else {
      try {
        gcmOpen(key, sealed, { iv: v.iv, aad: v.aad, tagLength: v.tag.length }, out);
        failures.push(label(v) + ": accepted");
      } catch (error) {
        if (!isNativeError(error, "ERR_NATIVE_AUTH_TAG")) failures.push(label(v) + ": wrong error " + String(error));
      }
      if (!out.equals(Buffer.alloc(out.length))) failures.push(label(v) + ": released unauthenticated plaintext");
    }
    key.destroy();
    ran++;
  }
  t.log(`ran ${ran} invalid AES-GCM vectors`);
  t.deepEqual(failures, []);
});

test("Wycheproof AES-GCM vectors through the batch path: one batch per (key, IV length), bad tags flagged individually", (t) => {
  const groups = new Map<string, AeadVector[]>();
  for (const v of vectors.filter((x) => x.iv.length > 0)) {
    const id = v.key.toString("hex") + "/" + v.iv.length;
    groups.set(id, [...(groups.get(id) ?? []), v]);
  }
  let ran = 0;
  for (const group of groups.values()) {
    const first = group[0]!;
    const key = importKey(first.key);
    const ivs = Buffer.concat(group.map((v) => v.iv));
    const aads = Buffer.concat(group.map((v) => v.aad));
    const aadLengths = Uint32Array.from(group, (v) => v.aad.length);
    const common = { ivs, ivLength: first.iv.length, aads, aadLengths };
    const sealed = gcmSealBatch(key, { ...common, data: Buffer.concat(group.map((v) => v.msg)), lengths: Uint32Array.from(group, (v) => v.msg.length) });
    const opened = gcmOpenBatch(key, {
      ...common,
      data: Buffer.concat(group.map((v) => Buffer.concat([v.ct, v.tag]))),
      lengths: Uint32Array.from(group, (v) => v.ct.length + 16),
    });
    let sealedOffset = 0;
    let openedOffset = 0;
    group.forEach((v, i) => {
      const expected = Buffer.concat([v.ct, v.tag]);
      const valid = v.result === "valid";
      if (valid) t.true(sealed.subarray(sealedOffset, sealedOffset + expected.length).equals(expected), label(v) + " batch seal");
      t.is(opened.ok[i], valid ? 1 : 0, label(v) + " batch open verdict");
      const plain = opened.data.subarray(openedOffset, openedOffset + v.ct.length);
      t.true(valid ? plain.equals(v.msg) : plain.equals(Buffer.alloc(plain.length)), label(v) + " batch plaintext");
      sealedOffset += v.msg.length + 16;
      openedOffset += v.ct.length;
      ran++;
    });
    key.destroy();
  }
  t.log(`ran ${ran} AES-GCM vectors through ${groups.size} batches`);
  t.is(ran, vectors.length - vectors.filter((v) => v.iv.length === 0).length);
});

test("Wycheproof AES-GCM vectors through the async path", async (t) => {
  let ran = 0;
  for (const v of vectors.filter((x) => x.iv.length > 0)) {
    const key = importKey(v.key);
    const sealed = Buffer.concat([v.ct, v.tag]);
    if (v.result === "valid") {
      t.true((await gcmOpenAsync(key, sealed, { iv: v.iv, aad: v.aad })).equals(v.msg), label(v));
    } else {
      await t.throwsAsync(gcmOpenAsync(key, sealed, { iv: v.iv, aad: v.aad }), { code: "ERR_NATIVE_AUTH_TAG" }, label(v));
    }
    key.destroy();
    ran++;
  }
  t.log(`ran ${ran} AES-GCM vectors asynchronously`);
});
