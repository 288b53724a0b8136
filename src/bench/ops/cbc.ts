// AES-CBC with PKCS#7 padding (CKM_AES_CBC_PAD), encrypt and decrypt, a fresh caller IV per message.
import { createCipheriv, createDecipheriv } from "node:crypto";
import { aesDecrypt, aesEncrypt, aesOutputSize } from "../../crypto/modes.js";
import { importKey } from "../../crypto/keys.js";
import { randomBytes } from "../../crypto/random.js";
import type { Operation } from "../types.js";
import { aesKey, AES_KEY_BITS, checkAesBits, message, P, requireMechanism } from "./common.js";

export const cbc: Operation = {
  mech: "aes-cbc", description: "AES-CBC with PKCS#7 padding, caller IV", ops: ["encrypt", "decrypt"], sized: true,
  defaultKeyBits: 256, keyBits: AES_KEY_BITS,
  prepare(ctx, spec) {
    checkAesBits(spec.keyBits);
    const plaintext = message(spec.bytes);
    const iv = Buffer.alloc(16);
    let i = 0;
    const next = (): Buffer => { iv.writeUInt32BE(i++ >>> 0, 12); return iv; };
    const out = Buffer.alloc(spec.bytes + 32);
    if (ctx.kind === "pkcs11") {
      requireMechanism(ctx, P.CKM_AES_CBC_PAD);
      const { p11, session } = ctx;
      const key = aesKey(ctx, spec.keyBits, [{ type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true }]);
      p11.C_EncryptInit(session, { mechanism: P.CKM_AES_CBC_PAD, parameter: iv }, key);
      const sealed = Buffer.from(p11.C_Encrypt(session, plaintext, out));
      if (spec.op === "encrypt") {
        return { run() { p11.C_EncryptInit(session, { mechanism: P.CKM_AES_CBC_PAD, parameter: next() }, key); p11.C_Encrypt(session, plaintext, out); } };
      }
      const zero = Buffer.alloc(16);
      return { run() { p11.C_DecryptInit(session, { mechanism: P.CKM_AES_CBC_PAD, parameter: zero }, key); p11.C_Decrypt(session, sealed, out); } };
    }
    const keyBytes = randomBytes(spec.keyBits / 8);
    if (ctx.kind === "native") {
      const key = importKey(keyBytes);
      const sealed = aesEncrypt(key, "cbc-pad", plaintext, { iv });
      const opened = Buffer.alloc(aesOutputSize("cbc-pad", "decrypt", sealed.length));
      if (spec.op === "encrypt") return { run: () => void aesEncrypt(key, "cbc-pad", plaintext, { iv: next() }, out) };
      return { run: () => void aesDecrypt(key, "cbc-pad", sealed, { iv }, opened) };
    }
    const algorithm = `aes-${spec.keyBits}-cbc`;
    const c = createCipheriv(algorithm, keyBytes, iv);
    const sealed = Buffer.concat([c.update(plaintext), c.final()]);
    if (spec.op === "encrypt") return { run() { const e = createCipheriv(algorithm, keyBytes, next()); e.update(plaintext); e.final(); } };
    return { run() { const d = createDecipheriv(algorithm, keyBytes, iv); d.update(sealed); d.final(); } };
  },
};
