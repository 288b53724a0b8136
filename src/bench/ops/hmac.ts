// HMAC-SHA-256 sign and verify (CKM_SHA256_HMAC) over a message of the trial's size; the key
// length is the HMAC key's, default 256 bits.
import { createHmac } from "node:crypto";
import { hmacSign, hmacVerify } from "../../crypto/hmac.js";
import { importKey } from "../../crypto/keys.js";
import { randomBytes } from "../../crypto/random.js";
import type { Operation } from "../types.js";
import { message, P, requireMechanism, secretKey } from "./common.js";

export const hmac: Operation = {
  mech: "hmac-sha256", description: "HMAC-SHA-256 sign and verify", ops: ["sign", "verify"], sized: true,
  defaultKeyBits: 256, keyBits: [128, 256, 512],
  prepare(ctx, spec) {
    const data = message(spec.bytes);
    const out = Buffer.alloc(32);
    if (ctx.kind === "pkcs11") {
      requireMechanism(ctx, P.CKM_SHA256_HMAC);
      requireMechanism(ctx, P.CKM_GENERIC_SECRET_KEY_GEN);
      const { p11, session } = ctx;
      const key = secretKey(p11, session, P.CKK_GENERIC_SECRET, P.CKM_GENERIC_SECRET_KEY_GEN, spec.keyBits / 8,
        [{ type: P.CKA_SIGN, value: true }, { type: P.CKA_VERIFY, value: true }]);
      const mechanism = { mechanism: P.CKM_SHA256_HMAC };
      p11.C_SignInit(session, mechanism, key);
      const tag = Buffer.from(p11.C_Sign(session, data, out));
      if (spec.op === "sign") return { run() { p11.C_SignInit(session, mechanism, key); p11.C_Sign(session, data, out); } };
      return { run() { p11.C_VerifyInit(session, mechanism, key); if (!p11.C_Verify(session, data, tag)) throw new Error("HMAC verify returned false"); } };
    }
    const keyBytes = randomBytes(spec.keyBits / 8);
    if (ctx.kind === "native") {
      const key = importKey(keyBytes);
      const tag = hmacSign(key, "sha256", data);
      if (spec.op === "sign") return { run: () => void hmacSign(key, "sha256", data, undefined, out) };
      return { run() { if (!hmacVerify(key, "sha256", data, tag)) throw new Error("HMAC verify returned false"); } };
    }
    const tag = createHmac("sha256", keyBytes).update(data).digest();
    if (spec.op === "sign") return { run: () => void createHmac("sha256", keyBytes).update(data).digest() };
    return { run() { if (!createHmac("sha256", keyBytes).update(data).digest().equals(tag)) throw new Error("HMAC verify failed"); } };
  },
};
