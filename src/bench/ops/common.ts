// Helpers shared by the operation modules: mechanism checks and session-object key generation.
import { pkcs11, type Handle, type PKCS11, type Template } from "../../../emulator/pkcs11.js";
import { Unsupported, type TargetContext } from "../types.js";

export const P = pkcs11;
export type Pkcs11Context = Extract<TargetContext, { kind: "pkcs11" }>;

/** The CKM_ name of a mechanism number, for messages. */
export function ckmName(mechanism: number): string {
  for (const [name, value] of Object.entries(pkcs11)) if (name.startsWith("CKM_") && value === mechanism) return name;
  return `CKM_0x${mechanism.toString(16)}`;
}

/** Throws Unsupported unless the token lists the mechanism. */
export function requireMechanism(ctx: Pkcs11Context, mechanism: number): void {
  if (!ctx.mechanisms.has(mechanism)) throw new Unsupported(`${ckmName(mechanism)} is not in the token's mechanism list`);
}

export function unsupportedOn(ctx: TargetContext, what: string): never {
  throw new Unsupported(`${what} is not offered by the ${ctx.kind} target`);
}

/** A session (CKA_TOKEN false) secret key of `bytes` bytes with the given usage flags. */
export function secretKey(p11: PKCS11, session: Handle, keyType: number, genMechanism: number, bytes: number, usage: Template): Handle {
  return p11.C_GenerateKey(session, { mechanism: genMechanism }, [
    { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
    { type: P.CKA_KEY_TYPE, value: keyType },
    { type: P.CKA_VALUE_LEN, value: bytes },
    { type: P.CKA_TOKEN, value: false },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_LABEL, value: "hsmkit-bench" },
    ...usage,
  ]);
}

export function aesKey(ctx: Pkcs11Context, bits: number, usage: Template): Handle {
  requireMechanism(ctx, P.CKM_AES_KEY_GEN);
  return secretKey(ctx.p11, ctx.session, P.CKK_AES, P.CKM_AES_KEY_GEN, bits / 8, usage);
}

/** Deterministic filler for messages (content does not matter to any of the operations). */
export function message(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 131 + 7) & 0xff;
  return out;
}

export const AES_KEY_BITS = [128, 192, 256] as const;

export function checkAesBits(bits: number): void {
  if (!(AES_KEY_BITS as readonly number[]).includes(bits)) throw new Unsupported(`AES keys are 128, 192 or 256 bits, not ${bits}`);
}
