/**
 * graphene-pk11 and pkcs11js for the backend, and the one place where a PKCS#11 failure becomes a
 * KmsError.
 *
 * Both packages are CommonJS whose exports are spread at run time, so ES named imports cannot see
 * them; they are required instead. Constants (CKR_/CKM_/CKF_…) come from pkcs11js, never retyped.
 */
import { createRequire } from "node:module";
import type * as GrapheneTypes from "graphene-pk11";
import type * as Pkcs11Types from "pkcs11js";
import { KmsError, type KmsErrorCode } from "../errors.js";

const require = createRequire(import.meta.url);

/** graphene-pk11: Module, Slot, Session, Key, parameters. */
export const graphene = require("graphene-pk11") as typeof GrapheneTypes;
/** pkcs11js: constants and Pkcs11Error. */
export const pkcs11 = require("pkcs11js") as typeof Pkcs11Types;

export type PKCS11 = Pkcs11Types.PKCS11;
export type Pkcs11Mechanism = Pkcs11Types.Mechanism;
export type Pkcs11AesGcm = Pkcs11Types.AesGCM;
export type Module = GrapheneTypes.Module;
export type Slot = GrapheneTypes.Slot;
export type Session = GrapheneTypes.Session;
export type Key = GrapheneTypes.Key;
export type SecretKey = GrapheneTypes.SecretKey;

const P = pkcs11;

/** A PKCS#11 failure seen through graphene: the CKR value, its name and the C_ function, when known. */
export interface CkrFailure {
  rv: number;
  name: string;
  method: string | undefined;
}

let ckrNames: Map<number, string> | undefined;

/** The CKR_ name of a return value (from pkcs11js's constants), or its hex value. */
export function ckrName(rv: number): string {
  if (ckrNames === undefined) {
    ckrNames = new Map();
    for (const [name, value] of Object.entries(pkcs11)) {
      if (name.startsWith("CKR_") && typeof value === "number" && !ckrNames.has(value)) ckrNames.set(value, name);
    }
  }
  return ckrNames.get(rv) ?? `CKR_0x${rv.toString(16).padStart(8, "0")}`;
}

/**
 * The CKR behind an error thrown through graphene, or undefined when it is not a PKCS#11 failure.
 * pkcs11js throws Pkcs11Error (message "CKR_NAME", `code`, `method`) from most methods, but a plain
 * Error whose message is "CKR_NAME:code" from C_CreateObject, C_CopyObject, C_SetAttributeValue
 * and C_FindObjects (shared/reference/pkcs11.md §2); both shapes are read here.
 */
export function ckrOf(error: unknown): CkrFailure | undefined {
  if (!(error instanceof Error)) return undefined;
  const { code, method } = error as { code?: unknown; method?: unknown };
  const methodName = typeof method === "string" ? method : undefined;
  if (error instanceof pkcs11.Pkcs11Error && typeof code === "number") {
    return { rv: code, name: ckrName(code), method: methodName };
  }
  const match = /^(CKR_\w+):(\d+)$/u.exec(error.message);
  if (match !== null) return { rv: Number(match[2]), name: match[1]!, method: methodName };
  if (typeof code === "number" && /^CKR_\w+$/u.test(error.message)) return { rv: code, name: error.message, method: methodName };
  return undefined;
}

/**
 * The token is gone or unusable as a device, or out of memory for now: the API answers 503
 * (KMS.0104) so that clients retry, and the backend reopens its sessions on the next request.
 * CKR_HOST_MEMORY is the library's side of running out ("the computer that the Cryptoki library
 * is running on has insufficient memory", v2.40 §5.1.1): as passing as CKR_DEVICE_MEMORY, and no
 * more a fault of the KMS.
 */
const UNAVAILABLE = new Set<number>([
  P.CKR_DEVICE_REMOVED, P.CKR_TOKEN_NOT_PRESENT, P.CKR_TOKEN_NOT_RECOGNIZED, P.CKR_DEVICE_ERROR,
  P.CKR_DEVICE_MEMORY, P.CKR_HOST_MEMORY, P.CKR_SESSION_COUNT, P.CKR_CRYPTOKI_NOT_INITIALIZED,
]);

/** The token, or the library's host, had no memory for what a call asked (e.g. one more object). */
const OUT_OF_MEMORY = new Set<number>([P.CKR_DEVICE_MEMORY, P.CKR_HOST_MEMORY]);

/** True when a failure says there was no memory for it (see OUT_OF_MEMORY): freeing objects may let it through. */
export function isOutOfMemory(error: unknown): boolean {
  const failure = ckrOf(error);
  return failure !== undefined && OUT_OF_MEMORY.has(failure.rv);
}

/**
 * Failures after which the backend's sessions, login or handles may no longer be what it thinks:
 * it drops them all, reopens, logs in, finds its token keys again and retries the call once.
 */
const RECOVERABLE = new Set<number>([
  P.CKR_SESSION_HANDLE_INVALID, P.CKR_SESSION_CLOSED, P.CKR_USER_NOT_LOGGED_IN, P.CKR_OPERATION_ACTIVE,
  P.CKR_OPERATION_NOT_INITIALIZED, P.CKR_KEY_HANDLE_INVALID, P.CKR_OBJECT_HANDLE_INVALID,
  P.CKR_DEVICE_REMOVED, P.CKR_TOKEN_NOT_PRESENT, P.CKR_CRYPTOKI_NOT_INITIALIZED,
]);

/** True when a failure is worth one reset-and-retry (see RECOVERABLE). */
export function isRecoverable(error: unknown): boolean {
  const failure = ckrOf(error);
  return failure !== undefined && RECOVERABLE.has(failure.rv);
}

/**
 * C_Login's answers that reject the PIN itself. Only a PIN change can make it right again, and
 * every further C_Login with it counts toward the token locking the user PIN (CKR_PIN_LOCKED,
 * v2.40 §5.6.7; after a count the token's policy sets, 10 in the emulator), after which nobody
 * can log in until the SO unlocks it.
 */
const PIN_REFUSED = new Set<number>([P.CKR_PIN_INCORRECT, P.CKR_PIN_LOCKED, P.CKR_PIN_INVALID, P.CKR_PIN_LEN_RANGE]);

/** True when the token refused the PIN (see PIN_REFUSED): not to be tried again. */
export function isPinRefused(error: unknown): boolean {
  const failure = ckrOf(error);
  return failure !== undefined && PIN_REFUSED.has(failure.rv);
}

/**
 * A failure of the token as the KMS reports it: KMS.0104 when the token is unavailable, KMS.0101
 * otherwise; the detail (for logs only) names the step, the C_ function and the CKR. A KmsError
 * passes through unchanged. No key material ever reaches the detail: only names and codes.
 */
export function tokenError(error: unknown, step: string): KmsError {
  if (error instanceof KmsError) return error;
  const failure = ckrOf(error);
  if (failure === undefined) {
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return new KmsError("KMS.0101", `${step}: ${what}`, { cause: error });
  }
  const code: KmsErrorCode = UNAVAILABLE.has(failure.rv) ? "KMS.0104" : "KMS.0101";
  const where = failure.method === undefined || failure.method === "" ? "" : ` in ${failure.method}`;
  return new KmsError(code, `${step}: ${failure.name} (0x${failure.rv.toString(16)})${where}`, { cause: error });
}

/**
 * What C_Decrypt of AES-GCM answers when the tag (or the length) does not check out, as the
 * specification has it (v2.40 §5.9: CKR_ENCRYPTED_DATA_INVALID / _LEN_RANGE; the emulator): the one
 * opaque KMS.2201. Every other failure is the token's, not the caller's (KMS.0101, or KMS.0104 per
 * tokenError) — except that SoftHSMv2 2.6 answers a failed tag with CKR_GENERAL_ERROR (measured),
 * which the backend tells from a fault of the token by a probe (GrapheneBackend.decryptsSoundly).
 */
export const DECRYPT_REJECTED = new Set<number>([P.CKR_ENCRYPTED_DATA_INVALID, P.CKR_ENCRYPTED_DATA_LEN_RANGE]);
