/**
 * Reading CK_*_PARAMS as pkcs11js delivers them ({ type: CK_PARAMS_…, … } objects or raw
 * Buffers). A malformed parameter is CKR_MECHANISM_PARAM_INVALID.
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import { CkrError } from "../errors.js";
import { pkcs11, type Mechanism } from "../pkcs11.js";

const P = pkcs11;

export function paramError(detail: string): CkrError {
  return new CkrError(P.CKR_MECHANISM_PARAM_INVALID, detail);
}

/** For mechanisms without parameters. */
export function noParameter(mechanism: Mechanism): void {
  const parameter = mechanism.parameter;
  if (parameter !== undefined && parameter !== null && !(Buffer.isBuffer(parameter) && parameter.length === 0)) {
    throw paramError("this mechanism takes no parameter");
  }
}

/** A Buffer parameter of one of the given lengths (e.g. the 16-byte IV of CKM_AES_CBC). */
export function bufferParameter(mechanism: Mechanism, lengths: readonly number[]): Buffer {
  const parameter = mechanism.parameter;
  if (!Buffer.isBuffer(parameter) || !lengths.includes(parameter.length)) {
    throw paramError(`parameter must be a Buffer of ${lengths.join(" or ")} bytes`);
  }
  return parameter;
}

export interface GcmParameters {
  iv: Buffer;
  aad: Buffer;
  tagBytes: number;
}

const GCM_PARAMS_TYPES: ReadonlySet<number> = new Set([P.CK_PARAMS_AES_GCM, P.CK_PARAMS_AES_GCM_v240, P.CK_PARAMS_GCM]);
/** Shared and never written: the GCM paths only read their AAD. */
const NO_AAD = Buffer.alloc(0);

/**
 * CK_GCM_PARAMS (pkcs11js CK_PARAMS_AES_GCM, _AES_GCM_v240, _GCM): IV of at least 1 byte, AAD,
 * tag bits 32..128 in whole bytes. (The spec allows 0..128; tags under 32 bits give no real
 * integrity, and SP 800-38D permits 32 and 64 only with care, so we refuse below 32.)
 */
export function gcmParameters(mechanism: Mechanism): GcmParameters {
  const parameter = mechanism.parameter as { type?: unknown; iv?: unknown; aad?: unknown; ivBits?: unknown; tagBits?: unknown } | undefined;
  if (typeof parameter !== "object" || parameter === null || Buffer.isBuffer(parameter)) throw paramError("GCM needs CK_GCM_PARAMS");
  if (!GCM_PARAMS_TYPES.has(parameter.type as number)) throw paramError("GCM needs CK_GCM_PARAMS");
  const iv = parameter.iv;
  if (!Buffer.isBuffer(iv) || iv.length === 0) throw paramError("GCM IV must be at least 1 byte");
  const aad = parameter.aad === undefined || parameter.aad === null ? NO_AAD : parameter.aad;
  if (!Buffer.isBuffer(aad)) throw paramError("GCM AAD must be a Buffer");
  const tagBits = parameter.tagBits === undefined ? 128 : parameter.tagBits;
  if (typeof tagBits !== "number" || !Number.isInteger(tagBits) || tagBits < 32 || tagBits > 128 || tagBits % 8 !== 0) {
    throw paramError("GCM tag must be 32..128 bits in whole bytes");
  }
  return { iv, aad, tagBytes: tagBits / 8 };
}
