/**
 * RSA (PKCS#1 v1.5 with SHA-256, CKM_SHA256_RSA_PKCS) and ECDSA (CKM_ECDSA_SHA256/384/512 on
 * P-256/P-384/P-521) sign and verify over a message of the trial's size. The key length is the RSA
 * modulus or the curve size. Key pairs are session objects generated once per trial. The native
 * core has no asymmetric API; node:crypto is the software peer. On a token without CKM_ECDSA_SHA*,
 * the message is hashed with node:crypto inside the timed operation and signed with CKM_ECDSA.
 */
import { createHash, sign, verify, type KeyObject } from "node:crypto";
import { generateKeyPair } from "../../crypto/signatures.js";
import type { Handle } from "../../../emulator/pkcs11.js";
import type { Operation, Prepared, TargetContext, TrialSpec } from "../types.js";
import { Unsupported } from "../types.js";
import { message, P, requireMechanism, unsupportedOn, type Pkcs11Context } from "./common.js";

const CURVES: Record<number, { oid: string; name: string; hash: string; mechanism: number }> = {
  256: { oid: "06082a8648ce3d030107", name: "prime256v1", hash: "sha256", mechanism: P.CKM_ECDSA_SHA256 },
  384: { oid: "06052b81040022", name: "secp384r1", hash: "sha384", mechanism: P.CKM_ECDSA_SHA384 },
  521: { oid: "06052b81040023", name: "secp521r1", hash: "sha512", mechanism: P.CKM_ECDSA_SHA512 },
};

function pkcs11Pair(ctx: Pkcs11Context, genMechanism: number, publicTemplate: Array<{ type: number; value: unknown }>): { publicKey: Handle; privateKey: Handle } {
  requireMechanism(ctx, genMechanism);
  const common = [{ type: P.CKA_TOKEN, value: false }, { type: P.CKA_LABEL, value: "hsmkit-bench" }];
  return ctx.p11.C_GenerateKeyPair(ctx.session, { mechanism: genMechanism },
    [...common, { type: P.CKA_VERIFY, value: true }, ...publicTemplate] as never,
    [...common, { type: P.CKA_SIGN, value: true }, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_PRIVATE, value: true }]);
}

function pkcs11SignVerify(ctx: Pkcs11Context, spec: TrialSpec, mechanism: number, pair: { publicKey: Handle; privateKey: Handle }, maxSignature: number, prehash?: string): Prepared {
  requireMechanism(ctx, mechanism);
  const { p11, session } = ctx;
  const raw = message(spec.bytes);
  const input = prehash === undefined ? (): Buffer => raw : (): Buffer => createHash(prehash).update(raw).digest();
  const data = input();
  const out = Buffer.alloc(maxSignature);
  p11.C_SignInit(session, { mechanism }, pair.privateKey);
  const signature = Buffer.from(p11.C_Sign(session, data, out));
  if (spec.op === "sign") return { run() { p11.C_SignInit(session, { mechanism }, pair.privateKey); p11.C_Sign(session, input(), out); } };
  return { run() { p11.C_VerifyInit(session, { mechanism }, pair.publicKey); if (!p11.C_Verify(session, input(), signature)) throw new Error("verify returned false"); } };
}

function nodeSignVerify(spec: TrialSpec, hash: string, privateKey: KeyObject, publicKey: KeyObject): Prepared {
  const data = message(spec.bytes);
  const signature = sign(hash, data, privateKey);
  if (spec.op === "sign") return { run: () => void sign(hash, data, privateKey) };
  return { run() { if (!verify(hash, data, publicKey, signature)) throw new Error("verify returned false"); } };
}

function noNative(ctx: TargetContext): void {
  if (ctx.kind === "native") unsupportedOn(ctx, "asymmetric signing (the native core is symmetric only)");
}

export const rsa: Operation = {
  mech: "rsa", description: "RSA PKCS#1 v1.5 SHA-256 sign and verify", ops: ["sign", "verify"], sized: true,
  defaultKeyBits: 2048, keyBits: [1024, 2048, 3072, 4096],
  prepare(ctx, spec) {
    noNative(ctx);
    if (!this.keyBits.includes(spec.keyBits)) throw new Unsupported(`RSA key length ${spec.keyBits} (choose ${this.keyBits.join(", ")})`);
    if (ctx.kind === "pkcs11") {
      requireMechanism(ctx, P.CKM_SHA256_RSA_PKCS);
      const pair = pkcs11Pair(ctx, P.CKM_RSA_PKCS_KEY_PAIR_GEN, [
        { type: P.CKA_MODULUS_BITS, value: spec.keyBits }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      ]);
      return pkcs11SignVerify(ctx, spec, P.CKM_SHA256_RSA_PKCS, pair, spec.keyBits / 8);
    }
    // The native core makes the pair (signatures.ts generateKeyPair says why not node's generator).
    const { privateKey, publicKey } = generateKeyPair({ kind: "rsa", modulusBits: spec.keyBits });
    return nodeSignVerify(spec, "sha256", privateKey, publicKey);
  },
};

export const ecdsa: Operation = {
  mech: "ecdsa", description: "ECDSA sign and verify (P-256 SHA-256, P-384 SHA-384, P-521 SHA-512)", ops: ["sign", "verify"], sized: true,
  defaultKeyBits: 256, keyBits: [256, 384, 521],
  prepare(ctx, spec) {
    noNative(ctx);
    const curve = CURVES[spec.keyBits];
    if (curve === undefined) throw new Unsupported(`EC curve size ${spec.keyBits} (choose 256, 384 or 521)`);
    if (ctx.kind === "pkcs11") {
      // Tokens without the hashing ECDSA mechanisms (SoftHSMv2 lists only CKM_ECDSA): hash in the
      // timed closure with node:crypto and sign the digest with CKM_ECDSA.
      const hashing = ctx.mechanisms.has(curve.mechanism);
      if (!hashing) requireMechanism(ctx, P.CKM_ECDSA);
      const pair = pkcs11Pair(ctx, P.CKM_EC_KEY_PAIR_GEN, [{ type: P.CKA_EC_PARAMS, value: Buffer.from(curve.oid, "hex") }]);
      return pkcs11SignVerify(ctx, spec, hashing ? curve.mechanism : P.CKM_ECDSA, pair, 2 * 66 + 16, hashing ? undefined : curve.hash);
    }
    const { privateKey, publicKey } = generateKeyPair({ kind: "ec", curve: curve.name });
    return nodeSignVerify(spec, curve.hash, privateKey, publicKey);
  },
};
