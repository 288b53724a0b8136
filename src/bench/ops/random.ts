// Random bytes: C_GenerateRandom, the native DRBG (randomFill) and node:crypto's randomFillSync.
import { randomFillSync } from "node:crypto";
import { randomFill } from "../../crypto/random.js";
import type { Operation } from "../types.js";

export const random: Operation = {
  mech: "random", description: "random bytes of the trial's size", ops: ["generate"], sized: true, defaultKeyBits: 0, keyBits: [0],
  prepare(ctx, spec) {
    const out = Buffer.alloc(spec.bytes);
    if (ctx.kind === "pkcs11") {
      const { p11, session } = ctx;
      return { run: () => void p11.C_GenerateRandom(session, out) };
    }
    if (ctx.kind === "native") return { run: () => void randomFill(out) };
    return { run: () => void randomFillSync(out) };
  },
};
