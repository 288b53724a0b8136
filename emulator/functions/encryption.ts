/**
 * Encryption, PKCS#11 v2.40 §5.8: C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal.
 * Decryption (§5.9, decryption.ts) runs through the same steps with the other direction.
 *
 * CKR_BUFFER_TOO_SMALL leaves the operation active (§5.2 "output length conventions"); any other
 * error, and completion, ends it.
 */
import type { CipherOperation } from "../mechanisms/mechanism.js";
import { pkcs11 } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import { bufferArg, checkOutput, checkSinglePart, deliver, markMultiPart } from "./common.js";
import { checkKeyUse, mechanismArg } from "./mechanism-use.js";
import { CkrError } from "../errors.js";

const P = pkcs11;

type Direction = "encrypt" | "decrypt";

export function cipherInit(state: ModuleState, direction: Direction, sessionHandle: unknown, mechanismValue: unknown, keyHandle: unknown): void {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, direction);
  const key = state.key(session, keyHandle);
  checkKeyUse(key, family, mechanism, direction === "encrypt" ? P.CKA_ENCRYPT : P.CKA_DECRYPT);
  const operation = (direction === "encrypt" ? family.encrypt! : family.decrypt!)(key, mechanism);
  session.begin(direction, operation, key);
}

function run<T>(state: ModuleState, direction: Direction, sessionHandle: unknown, body: (operation: CipherOperation) => T, finishes: boolean): T {
  const session = state.session(sessionHandle);
  const operation = session.active<CipherOperation>(direction);
  try {
    const result = body(operation);
    if (finishes) session.end(direction);
    return result;
  } catch (error) {
    if (!(error instanceof CkrError && error.rv === P.CKR_BUFFER_TOO_SMALL)) session.end(direction);
    throw error;
  }
}

function overlaps(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

/** C_Encrypt / C_Decrypt: run() written out, as every single-part message of the KMS comes this way. */
export function cipherOnce(state: ModuleState, direction: Direction, sessionHandle: unknown, input: unknown, out: unknown): Buffer {
  const session = state.session(sessionHandle);
  const operation = session.active<CipherOperation>(direction);
  try {
    checkSinglePart(operation);
    const data = bufferArg(input, "input");
    const target = checkOutput(out, operation.onceLength(data.length));
    // Straight into the caller's buffer when the mechanism can (no copy), unless it aliases the input.
    const result = operation.onceInto !== undefined && !overlaps(data, target) ? operation.onceInto(data, target) : deliver(target, operation.once(data));
    session.end(direction);
    return result;
  } catch (error) {
    if (!(error instanceof CkrError && error.rv === P.CKR_BUFFER_TOO_SMALL)) session.end(direction);
    throw error;
  }
}

export function cipherUpdate(state: ModuleState, direction: Direction, sessionHandle: unknown, input: unknown, out: unknown): Buffer {
  return run(state, direction, sessionHandle, (operation) => {
    const data = bufferArg(input, "input");
    const target = checkOutput(out, operation.updateLength(data.length));
    const result = deliver(target, operation.update(data));
    markMultiPart(operation);
    return result;
  }, false);
}

export function cipherFinal(state: ModuleState, direction: Direction, sessionHandle: unknown, out: unknown): Buffer {
  return run(state, direction, sessionHandle, (operation) => {
    const target = checkOutput(out, operation.finalLength());
    return deliver(target, operation.final());
  }, true);
}

export const encryptInit = (s: ModuleState, session: unknown, mechanism: unknown, key: unknown): void => cipherInit(s, "encrypt", session, mechanism, key);
export const encrypt = (s: ModuleState, session: unknown, input: unknown, out: unknown): Buffer => cipherOnce(s, "encrypt", session, input, out);
export const encryptUpdate = (s: ModuleState, session: unknown, input: unknown, out: unknown): Buffer => cipherUpdate(s, "encrypt", session, input, out);
export const encryptFinal = (s: ModuleState, session: unknown, out: unknown): Buffer => cipherFinal(s, "encrypt", session, out);
