// AES-256-GCM seal and open trials: native single call, native batch, native async, the
// in-process C loop (ceiling) and node:crypto's createCipheriv per message (the peer).
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import {
  gcmOpen, gcmOpenAsync, gcmOpenBatch, gcmSeal, gcmSealAsync, gcmSealBatch, gcmSealCeiling,
} from "../../src/crypto/aead.js";
import { importKey } from "../../src/crypto/keys.js";
import type { Trial } from "../harness.js";

const TAG = 16;
/** Messages per batch call; fewer for large messages so one call stays under 64 MiB. */
export const BATCH = 1000;
/** Async calls kept in flight: enough to keep the libuv pool (4 threads) busy on 2 cores. */
export const ASYNC_IN_FLIGHT = 4;

function counterIv(iv: Buffer, i: number): Buffer {
  iv.writeUInt32BE(i >>> 0, 8);
  return iv;
}

export function gcmTrials(size: number): Trial[] {
  const keyBytes = randomBytes(32);
  const key = importKey(keyBytes);
  const plaintext = randomBytes(size);
  const iv = Buffer.alloc(12);
  const sealedOut = Buffer.alloc(size + TAG);
  const sealed = gcmSeal(key, plaintext, { iv });
  const openedOut = Buffer.alloc(size);

  const batchCount = Math.max(1, Math.min(BATCH, Math.floor((64 << 20) / (size + TAG))));
  const batchIvs = randomBytes(batchCount * 12);
  const batchData = Buffer.concat(Array.from({ length: batchCount }, () => plaintext));
  const batchLengths = new Uint32Array(batchCount).fill(size);
  const batchOut = Buffer.alloc(batchCount * (size + TAG));
  const batchSealed = gcmSealBatch(key, { ivs: batchIvs, ivLength: 12, data: batchData, lengths: batchLengths });
  const batchSealedLengths = new Uint32Array(batchCount).fill(size + TAG);
  const batchOpenOut = Buffer.alloc(batchCount * size);

  const asyncOuts = Array.from({ length: ASYNC_IN_FLIGHT }, () => Buffer.alloc(size + TAG));
  async function asyncLoop(iterations: number, one: (slot: number, i: number) => Promise<unknown>): Promise<void> {
    let next = 0;
    const lanes = Array.from({ length: Math.min(ASYNC_IN_FLIGHT, iterations) }, async (_, slot) => {
      while (next < iterations) await one(slot, next++);
    });
    await Promise.all(lanes);
  }

  const base = { bytes: size };
  return [
    {
      ...base, target: "native", op: "gcm-seal", batch: 1, opsPerIteration: 1,
      body: (n) => { for (let i = 0; i < n; i++) gcmSeal(key, plaintext, { iv: counterIv(iv, i) }, sealedOut); },
    },
    {
      ...base, target: "native-batch", op: "gcm-seal", batch: batchCount, opsPerIteration: batchCount,
      body: (n) => {
        for (let i = 0; i < n; i++) gcmSealBatch(key, { ivs: batchIvs, ivLength: 12, data: batchData, lengths: batchLengths }, batchOut);
      },
    },
    {
      ...base, target: "native-async", op: "gcm-seal", batch: ASYNC_IN_FLIGHT, opsPerIteration: 1,
      body: (n) => asyncLoop(n, (slot, i) => gcmSealAsync(key, plaintext, { iv: counterIv(Buffer.alloc(12), i) }, asyncOuts[slot])),
    },
    {
      ...base, target: "native-c-loop", op: "gcm-seal", batch: 1, opsPerIteration: 1,
      body: (n) => gcmSealCeiling(key, size, n),
    },
    {
      ...base, target: "node-crypto", op: "gcm-seal", batch: 1, opsPerIteration: 1,
      body: (n) => {
        for (let i = 0; i < n; i++) {
          const cipher = createCipheriv("aes-256-gcm", keyBytes, counterIv(iv, i));
          cipher.update(plaintext);
          cipher.final();
          cipher.getAuthTag();
        }
      },
    },
    {
      ...base, target: "native", op: "gcm-open", batch: 1, opsPerIteration: 1,
      body: (n) => { iv.fill(0); for (let i = 0; i < n; i++) gcmOpen(key, sealed, { iv }, openedOut); },
    },
    {
      ...base, target: "native-batch", op: "gcm-open", batch: batchCount, opsPerIteration: batchCount,
      body: (n) => {
        for (let i = 0; i < n; i++) {
          gcmOpenBatch(key, { ivs: batchIvs, ivLength: 12, data: batchSealed, lengths: batchSealedLengths }, batchOpenOut);
        }
      },
    },
    {
      ...base, target: "native-async", op: "gcm-open", batch: ASYNC_IN_FLIGHT, opsPerIteration: 1,
      body: (n) => asyncLoop(n, (slot) => gcmOpenAsync(key, sealed, { iv: Buffer.alloc(12) }, asyncOuts[slot]!.subarray(0, size))),
    },
    {
      ...base, target: "node-crypto", op: "gcm-open", batch: 1, opsPerIteration: 1,
      body: (n) => {
        iv.fill(0);
        const ciphertext = sealed.subarray(0, size);
        const tag = sealed.subarray(size);
        for (let i = 0; i < n; i++) {
          const decipher = createDecipheriv("aes-256-gcm", keyBytes, iv);
          decipher.setAuthTag(tag);
          decipher.update(ciphertext);
          decipher.final();
        }
      },
    },
  ];
}
