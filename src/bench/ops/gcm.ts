/**
 * AES-GCM encrypt and decrypt under the three IV conventions of real HSMs
 * (shared/reference/pkcs11.md §9 "Who generates the IV"):
 * - `aes-gcm`: the caller supplies a fresh 12-byte IV per message (a counter here);
 * - `aes-gcm-token-iv`: the token generates the IV. Asked for as CloudHSM and p11perftest do, with
 *   an all-zero 12-byte IV buffer in CK_GCM_PARAMS; a token that generates writes its IV back into
 *   pIv (CloudHSM) or appends it to the output (Luna, ProtectServer). A token that does neither used
 *   the zero IV itself, and the trial is reported unsupported;
 * - `aes-gcm-zero-iv`: an all-zero 12-byte IV on every call (the Utimaco/Entrust/Marvell flavour in
 *   p11perftest, where the token replaces it). On a token that does not, every message reuses one
 *   IV under one key: acceptable for a benchmark, never for data.
 * The 16-byte tag is appended to the ciphertext; no AAD.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { gcmOpen, gcmSeal } from "../../crypto/aead.js";
import { importKey } from "../../crypto/keys.js";
import { randomBytes } from "../../crypto/random.js";
import type { Operation, Prepared, TargetContext, TrialSpec } from "../types.js";
import { Unsupported } from "../types.js";
import { aesKey, AES_KEY_BITS, checkAesBits, message, P, requireMechanism, type Pkcs11Context } from "./common.js";

type IvConvention = "caller" | "token" | "zero";
const TAG = 16;

function counter(iv: Buffer, i: number): Buffer {
  iv.writeUInt32BE(i >>> 0, 8);
  return iv;
}

function gcmParams(iv: Buffer): never {
  return { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, tagBits: TAG * 8 } } as never;
}

function pkcs11Gcm(ctx: Pkcs11Context, spec: TrialSpec, convention: IvConvention): Prepared {
  requireMechanism(ctx, P.CKM_AES_GCM);
  const { p11, session } = ctx;
  const key = aesKey(ctx, spec.keyBits, [{ type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true }]);
  const plaintext = message(spec.bytes);
  const out = Buffer.alloc(spec.bytes + TAG + 32);
  const iv = Buffer.alloc(12);
  let i = 0;
  // One probe encryption: learn the convention the token follows, and get a ciphertext to decrypt.
  const probeIv = Buffer.alloc(12);
  if (convention === "caller") probeIv.writeUInt32BE(0xffffffff, 8);
  p11.C_EncryptInit(session, gcmParams(probeIv), key);
  const probe = Buffer.from(p11.C_Encrypt(session, plaintext, out));
  const written = probeIv.some((b) => b !== 0) && convention !== "caller";
  const appended = probe.length > spec.bytes + TAG;
  if (convention === "token" && !written && !appended) {
    throw new Unsupported("the token used the caller's all-zero IV: it does not generate GCM IVs (CKM_AES_GCM)");
  }
  let sealed = probe;
  let openIv = probeIv;
  if (appended) {
    // Luna style: the IV follows ciphertext‖tag.
    openIv = Buffer.from(probe.subarray(spec.bytes + TAG));
    sealed = Buffer.from(probe.subarray(0, spec.bytes + TAG));
  }
  const opened = Buffer.alloc(spec.bytes + 32);
  if (spec.op === "encrypt") {
    return {
      run() {
        if (convention === "caller") counter(iv, i++);
        else iv.fill(0);
        p11.C_EncryptInit(session, gcmParams(iv), key);
        p11.C_Encrypt(session, plaintext, out);
      },
    };
  }
  const openParams = gcmParams(Buffer.from(openIv));
  return {
    run() {
      p11.C_DecryptInit(session, openParams, key);
      p11.C_Decrypt(session, sealed, opened);
    },
  };
}

function softwareGcm(ctx: TargetContext, spec: TrialSpec, convention: IvConvention): Prepared {
  if (convention === "token") throw new Unsupported(`no token generates IVs on the ${ctx.kind} target: the caller always supplies them`);
  checkAesBits(spec.keyBits);
  const keyBytes = randomBytes(spec.keyBits / 8);
  const plaintext = message(spec.bytes);
  const iv = Buffer.alloc(12);
  const out = Buffer.alloc(spec.bytes + TAG);
  let i = 0;
  const nextIv = (): Buffer => (convention === "caller" ? counter(iv, i++) : iv);
  if (ctx.kind === "native") {
    const key = importKey(keyBytes);
    const sealed = gcmSeal(key, plaintext, { iv });
    const opened = Buffer.alloc(spec.bytes);
    if (spec.op === "encrypt") return { run: () => void gcmSeal(key, plaintext, { iv: nextIv() }, out) };
    return { run: () => void gcmOpen(key, sealed, { iv }, opened) };
  }
  const algorithm = `aes-${spec.keyBits}-gcm` as "aes-256-gcm";
  const cipher = createCipheriv(algorithm, keyBytes, iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  if (spec.op === "encrypt") {
    return {
      run() {
        const c = createCipheriv(algorithm, keyBytes, nextIv());
        c.update(plaintext);
        c.final();
        c.getAuthTag();
      },
    };
  }
  return {
    run() {
      const d = createDecipheriv(algorithm, keyBytes, iv);
      d.setAuthTag(tag);
      d.update(ciphertext);
      d.final();
    },
  };
}

function gcm(mech: string, convention: IvConvention, description: string): Operation {
  return {
    mech, description, ops: ["encrypt", "decrypt"], sized: true, defaultKeyBits: 256, keyBits: AES_KEY_BITS,
    prepare(ctx, spec) {
      checkAesBits(spec.keyBits);
      return ctx.kind === "pkcs11" ? pkcs11Gcm(ctx, spec, convention) : softwareGcm(ctx, spec, convention);
    },
  };
}

export const gcmCallerIv = gcm("aes-gcm", "caller", "AES-GCM, caller-supplied 12-byte IV (a counter)");
export const gcmTokenIv = gcm("aes-gcm-token-iv", "token", "AES-GCM, IV generated by the token (written back or appended)");
export const gcmZeroIv = gcm("aes-gcm-zero-iv", "zero", "AES-GCM, all-zero 12-byte IV on every call (vendor flavour)");
