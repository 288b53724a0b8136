// 32-byte random: the native CTR_DRBG vs node:crypto's randomFillSync (OpenSSL's DRBG).
import { randomFillSync } from "node:crypto";
import { randomFill } from "../../src/crypto/random.js";
import type { Trial } from "../harness.js";

export function randomTrials(): Trial[] {
  const out = Buffer.alloc(32);
  return [
    {
      target: "native", op: "random", bytes: 32, batch: 1, opsPerIteration: 1,
      body: (n) => { for (let i = 0; i < n; i++) randomFill(out); },
    },
    {
      target: "node-crypto", op: "random", bytes: 32, batch: 1, opsPerIteration: 1,
      body: (n) => { for (let i = 0; i < n; i++) randomFillSync(out); },
    },
  ];
}
