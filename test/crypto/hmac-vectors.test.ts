// Every Wycheproof HMAC-SHA256 vector (hmac_sha256_test.json) through the native core:
// single-part and multi-part, full-length and truncated tags.
import test from "ava";
import { hmacInit, hmacSign, hmacVerify } from "../../src/crypto/hmac.js";
import { importKey } from "../../src/crypto/keys.js";
import { loadMac, type MacVector } from "../vectors/wycheproof.js";

const FILE = "hmac_sha256_test.json";
const TOTAL = 174;
const vectors = loadMac(FILE);

const label = (v: MacVector): string => `tcId ${v.tcId} (keySize ${v.keySize}, tagSize ${v.tagSize}; ${v.comment})`;

test(`${FILE}: all ${TOTAL} vectors present, tags as long as their group's tagSize`, (t) => {
  t.is(vectors.length, TOTAL);
  for (const v of vectors) t.is(v.tag.length * 8, v.tagSize, label(v));
});

test(`${FILE}: valid vectors sign to the tag (full, then truncated to tagSize) and verify, single- and multi-part`, (t) => {
  const failures: string[] = [];
  const valid = vectors.filter((v) => v.result === "valid");
  let truncated = 0;
  for (const v of valid) {
    const key = importKey(v.key);
    const tagLength = v.tagSize / 8;
    try {
      // The untruncated tag starts with the vector's tag, whatever tagSize the group uses.
      const full = hmacSign(key, "sha256", v.msg);
      if (!full.subarray(0, tagLength).equals(v.tag)) failures.push(label(v) + ": full tag differs");
      if (!hmacSign(key, "sha256", v.msg, { tagLength }).equals(v.tag)) failures.push(label(v) + ": sign differs");
      if (!hmacVerify(key, "sha256", v.msg, v.tag, { tagLength })) failures.push(label(v) + ": verify refused");
      if (tagLength < 32) {
        truncated++;
        // Against the full expected length, the truncated tag must not pass.
        if (hmacVerify(key, "sha256", v.msg, v.tag)) failures.push(label(v) + ": truncated tag passed as a full one");
      }
      const split = v.msg.length >> 1;
      const signed = hmacInit(key, "sha256", { tagLength }).update(v.msg.subarray(0, split)).update(v.msg.subarray(split)).sign();
      if (!signed.equals(v.tag)) failures.push(label(v) + ": multi-part sign differs");
      const verified = hmacInit(key, "sha256", { tagLength }).update(v.msg.subarray(0, split)).update(v.msg.subarray(split)).verify(v.tag);
      if (!verified) failures.push(label(v) + ": multi-part verify refused");
    } catch (error) {
      failures.push(label(v) + ": threw " + String(error));
    }
    key.destroy();
  }
  t.log(`ran ${valid.length} valid HMAC-SHA256 vectors (${truncated} with 128-bit tags)`);
  t.true(valid.length > 0);
  t.deepEqual(failures, []);
});

test(`${FILE}: invalid vectors (modified tags) fail verification, single- and multi-part`, (t) => {
  const failures: string[] = [];
  const invalid = vectors.filter((v) => v.result === "invalid");
  for (const v of invalid) {
    const key = importKey(v.key);
    const tagLength = v.tagSize / 8;
    try {
      if (hmacVerify(key, "sha256", v.msg, v.tag, { tagLength })) failures.push(label(v) + ": verify accepted");
      if (hmacInit(key, "sha256", { tagLength }).update(v.msg).verify(v.tag)) failures.push(label(v) + ": multi-part verify accepted");
      if (hmacSign(key, "sha256", v.msg, { tagLength }).equals(v.tag)) failures.push(label(v) + ": sign produced the modified tag");
    } catch (error) {
      failures.push(label(v) + ": threw " + String(error));
    }
    key.destroy();
  }
  t.log(`ran ${invalid.length} invalid HMAC-SHA256 vectors`);
  t.true(invalid.length > 0);
  t.deepEqual(failures, []);
});

test(`${FILE}: no vector is "acceptable"`, (t) => {
  t.is(vectors.filter((v) => v.result === "acceptable").length, 0);
});
