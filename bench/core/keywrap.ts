// KW (RFC 3394) and KWP (RFC 5649) wrap of a 32-byte key: native key-slot wrap vs node:crypto.
import { createCipheriv, randomBytes } from "node:crypto";
import { importKey } from "../../src/crypto/keys.js";
import { keyWrapKey } from "../../src/crypto/keywrap.js";
import type { Trial } from "../harness.js";

export function keyWrapTrials(): Trial[] {
  const kekBytes = randomBytes(32);
  const kek = importKey(kekBytes);
  const keyBytes = randomBytes(32);
  const key = importKey(keyBytes);
  const trials: Trial[] = [];
  for (const [mode, name, iv] of [
    ["kw", "id-aes256-wrap", Buffer.from("a6a6a6a6a6a6a6a6", "hex")],
    ["kwp", "id-aes256-wrap-pad", Buffer.from("a65959a6", "hex")],
  ] as const) {
    trials.push(
      {
        target: "native", op: `${mode}-wrap`, bytes: 32, batch: 1, opsPerIteration: 1,
        body: (n) => { for (let i = 0; i < n; i++) keyWrapKey(kek, mode, key); },
      },
      {
        target: "node-crypto", op: `${mode}-wrap`, bytes: 32, batch: 1, opsPerIteration: 1,
        body: (n) => {
          for (let i = 0; i < n; i++) {
            const cipher = createCipheriv(name, kekBytes, iv);
            Buffer.concat([cipher.update(keyBytes), cipher.final()]);
          }
        },
      },
    );
  }
  return trials;
}
