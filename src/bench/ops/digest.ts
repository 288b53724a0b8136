// SHA-256 and SHA-512 digests (C_DigestInit + C_Digest); the native core has no digest API.
import { createHash } from "node:crypto";
import type { Operation } from "../types.js";
import { message, P, requireMechanism, unsupportedOn } from "./common.js";

function digestOperation(mech: string, bits: 256 | 512): Operation {
  return {
    mech, description: `SHA-${bits} digest`, ops: ["digest"], sized: true, defaultKeyBits: 0, keyBits: [0],
    prepare(ctx, spec) {
      const data = message(spec.bytes);
      if (ctx.kind === "pkcs11") {
        const mechanism = bits === 256 ? P.CKM_SHA256 : P.CKM_SHA512;
        requireMechanism(ctx, mechanism);
        const { p11, session } = ctx;
        const out = Buffer.alloc(bits / 8);
        return { run() { p11.C_DigestInit(session, { mechanism }); p11.C_Digest(session, data, out); } };
      }
      if (ctx.kind === "native") unsupportedOn(ctx, "a digest");
      return { run: () => void createHash(`sha${bits}`).update(data).digest() };
    },
  };
}

export const sha256 = digestOperation("sha256", 256);
export const sha512 = digestOperation("sha512", 512);
