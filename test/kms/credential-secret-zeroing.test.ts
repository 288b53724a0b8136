/**
 * The SK opened from the store lives in JavaScript memory only until the authenticator has made it
 * a native key and zeroed it (src/service/auth/authenticator.ts). That zeroing must reach the bytes
 * the sealer produced: a copy made on the way would keep the SK in the heap, un-zeroed.
 */
import test from "ava";
import { randomBytes } from "node:crypto";
import { credentialAad, openCredentialSecret, type SecretSealer } from "../../src/kms/store/secrets.js";
import type { CredentialRecord } from "../../src/kms/types.js";

const RECORD = { accessKey: "AKZEROING0000000000A", principalId: "p".repeat(32), secret: { sealer: "test:1", blob: Buffer.alloc(1) } } as unknown as CredentialRecord;

/** A sealer that keeps a reference to every buffer it hands out, as an attacker reading the heap would find them. */
function recordingSealer(sk: Buffer, as: "buffer" | "uint8array"): SecretSealer & { handedOut: Uint8Array[] } {
  const handedOut: Uint8Array[] = [];
  return {
    id: "test:1",
    handedOut,
    seal: () => Buffer.alloc(0),
    open: async (_sealed, aad) => {
      if (!aad.equals(credentialAad(RECORD.accessKey, RECORD.principalId))) throw new Error("wrong additional data");
      const out = as === "buffer" ? Buffer.from(sk) : new Uint8Array(sk);
      handedOut.push(out);
      return out as Buffer;
    },
  };
}

for (const as of ["buffer", "uint8array"] as const) {
  test(`zeroing the opened SK zeroes every byte the sealer produced (sealer returns a ${as})`, async (t) => {
    const sk = Buffer.from(randomBytes(30).toString("base64url").slice(0, 40), "utf8");
    const sealer = recordingSealer(sk, as);
    const opened = await openCredentialSecret(sealer, RECORD);
    t.true(Buffer.isBuffer(opened));
    t.true(opened.equals(sk));
    opened.fill(0);
    t.is(sealer.handedOut.length, 1);
    t.true(sealer.handedOut.every((bytes) => bytes.every((b) => b === 0)), "the SK the sealer opened is still in memory after the caller zeroed its buffer");
  });
}
