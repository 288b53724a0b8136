/**
 * Helpers the function files share: caller output buffers (pkcs11js passes one and returns the
 * written prefix), PIN and string arguments, the persistence hook.
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import type { KeyHandle } from "../../src/crypto/keys.js";
import { CkrError } from "../errors.js";
import { pkcs11 } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import type { Token } from "../token.js";

const P = pkcs11;

/** Checks the caller's output buffer can take `length` bytes (else CKR_BUFFER_TOO_SMALL, operation kept). */
export function checkOutput(out: unknown, length: number): Buffer {
  if (!Buffer.isBuffer(out)) throw new CkrError(P.CKR_ARGUMENTS_BAD, "output must be a Buffer");
  if (out.length < length) throw new CkrError(P.CKR_BUFFER_TOO_SMALL, `needs ${length} bytes`);
  return out;
}

/** Copies `result` into the caller's buffer and returns the written prefix, as pkcs11js does. */
export function deliver(out: Buffer, result: Buffer): Buffer {
  if (out.length < result.length) throw new CkrError(P.CKR_BUFFER_TOO_SMALL, `needs ${result.length} bytes`);
  result.copy(out);
  return out.subarray(0, result.length);
}

/**
 * Operations a C_*Update (or C_DigestKey) has fed. The single-part call "cannot be used to
 * terminate a multi-part operation, and must be called after C_*Init without intervening C_*Update
 * calls" (v2.40 §5.8.2; likewise §5.9.2–5.12.2): run anyway, it would seal only its own input
 * and drop what the updates buffered (AES-GCM), or MAC update||data as if it were one message.
 * Refused as SoftHSMv2 refuses C_Sign and C_Verify after an update: CKR_OPERATION_NOT_INITIALIZED,
 * the operation ended. A WeakSet rather than a field on every mechanism's operation object.
 */
const fedByUpdate = new WeakSet<object>();

export function markMultiPart(operation: object): void {
  fedByUpdate.add(operation);
}

export function checkSinglePart(operation: object): void {
  if (fedByUpdate.has(operation)) throw new CkrError(P.CKR_OPERATION_NOT_INITIALIZED, "a multi-part operation is finished by its C_*Final, not the single-part call");
}

export function bufferArg(value: unknown, name: string): Buffer {
  if (!Buffer.isBuffer(value)) throw new CkrError(P.CKR_ARGUMENTS_BAD, `${name} must be a Buffer`);
  return value;
}

/**
 * A PIN as pkcs11js passes it (string, UTF-8) — or a Buffer, which real callers also use. No PIN
 * at all is CKR_ARGUMENTS_BAD, not an empty one: this token has no protected authentication path
 * (CKF_PROTECTED_AUTHENTICATION_PATH, v2.40 §5.6.7) to take a NULL_PTR PIN, SoftHSMv2 refuses one
 * so, and pkcs11js never lets it through — it must not count as a wrong PIN towards the lockout.
 */
export function pinArg(value: unknown): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (Buffer.isBuffer(value)) return value;
  throw new CkrError(P.CKR_ARGUMENTS_BAD, "PIN must be a string");
}

export function numberArg(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new CkrError(P.CKR_ARGUMENTS_BAD, `${name} must be a CK_ULONG`);
  }
  return value;
}

/** Space-padded fixed-width text, as CK_INFO / CK_TOKEN_INFO carry it. */
export function padded(text: string, width: number): string {
  return Buffer.from(text, "utf8").subarray(0, width).toString("utf8").padEnd(width, " ");
}

/**
 * Token.verify with the PIN failure counter persisted whatever the outcome (C_Login, C_SetPIN,
 * C_InitToken): the counter is token state, and a restart must not reset the lockout.
 */
export function verifyPin(state: ModuleState, token: Token, who: "so" | "user", pin: Buffer): KeyHandle {
  try {
    return token.verify(who, pin);
  } finally {
    state.persistence.tokenChanged(token);
  }
}
