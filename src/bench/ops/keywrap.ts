/**
 * AES key wrap (RFC 3394, `aes-kw`, CKM_AES_KEY_WRAP) and with padding (RFC 5649, `aes-kwp`,
 * CKM_AES_KEY_WRAP_PAD): wrap and unwrap of a 32-byte AES key under a KEK of the trial's key
 * length. On PKCS#11, unwrap creates a session key that is destroyed after each operation,
 * outside the timing.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { keyUnwrap, keyWrap } from "../../crypto/keywrap.js";
import { importKey } from "../../crypto/keys.js";
import { randomBytes } from "../../crypto/random.js";
import type { Handle } from "../../../emulator/pkcs11.js";
import type { Operation, Prepared } from "../types.js";
import { aesKey, AES_KEY_BITS, checkAesBits, P, requireMechanism } from "./common.js";

const WRAPPED_KEY_BYTES = 32;

function keyWrapOperation(mech: string, pad: boolean): Operation {
  return {
    mech, description: `AES key wrap${pad ? " with padding (RFC 5649)" : " (RFC 3394)"} of a 32-byte AES key`,
    ops: ["wrap", "unwrap"], sized: false, fixedBytes: WRAPPED_KEY_BYTES, defaultKeyBits: 256, keyBits: AES_KEY_BITS,
    prepare(ctx, spec): Prepared {
      checkAesBits(spec.keyBits);
      if (ctx.kind === "pkcs11") {
        const mechanism = pad ? P.CKM_AES_KEY_WRAP_PAD : P.CKM_AES_KEY_WRAP;
        requireMechanism(ctx, mechanism);
        const { p11, session } = ctx;
        const kek = aesKey(ctx, spec.keyBits, [{ type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true }]);
        const key = aesKey(ctx, WRAPPED_KEY_BYTES * 8, [{ type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_EXTRACTABLE, value: true }]);
        const out = Buffer.alloc(WRAPPED_KEY_BYTES + 16);
        const wrapped = Buffer.from(p11.C_WrapKey(session, { mechanism }, kek, key, out));
        if (spec.op === "wrap") return { run: () => void p11.C_WrapKey(session, { mechanism }, kek, key, out) };
        const template = [
          { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
          { type: P.CKA_TOKEN, value: false }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_SENSITIVE, value: true },
        ];
        let last: Handle | undefined;
        return {
          run() { last = p11.C_UnwrapKey(session, { mechanism }, kek, wrapped, template); },
          cleanup() { if (last !== undefined) p11.C_DestroyObject(session, last); last = undefined; },
        };
      }
      const kekBytes = randomBytes(spec.keyBits / 8);
      const keyBytes = randomBytes(WRAPPED_KEY_BYTES);
      if (ctx.kind === "native") {
        const kek = importKey(kekBytes);
        const mode = pad ? "kwp" : "kw";
        const wrapped = keyWrap(kek, mode, keyBytes);
        const out = Buffer.alloc(wrapped.length);
        if (spec.op === "wrap") return { run: () => void keyWrap(kek, mode, keyBytes, out) };
        return { run: () => void keyUnwrap(kek, mode, wrapped, Buffer.alloc(WRAPPED_KEY_BYTES)) };
      }
      const algorithm = `id-aes${spec.keyBits}-wrap${pad ? "-pad" : ""}`;
      const iv = Buffer.from(pad ? "A65959A6" : "A6A6A6A6A6A6A6A6", "hex");
      const c = createCipheriv(algorithm, kekBytes, iv);
      const wrapped = Buffer.concat([c.update(keyBytes), c.final()]);
      if (spec.op === "wrap") return { run() { const e = createCipheriv(algorithm, kekBytes, iv); e.update(keyBytes); e.final(); } };
      return { run() { const d = createDecipheriv(algorithm, kekBytes, iv); d.update(wrapped); d.final(); } };
    },
  };
}

export const kw = keyWrapOperation("aes-kw", false);
export const kwp = keyWrapOperation("aes-kwp", true);
