/**
 * Message digesting, PKCS#11 v2.40 §5.10: C_DigestInit, C_Digest, C_DigestUpdate, C_DigestKey,
 * C_DigestFinal.
 */
import { CkrError } from "../errors.js";
import type { DigestOperation } from "../mechanisms/mechanism.js";
import { pkcs11 } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import { bufferArg, checkOutput, checkSinglePart, deliver, markMultiPart } from "./common.js";
import { mechanismArg } from "./mechanism-use.js";

const P = pkcs11;

export function digestInit(state: ModuleState, sessionHandle: unknown, mechanismValue: unknown): void {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, "digest");
  session.begin("digest", family.digest!(mechanism));
}

function run<T>(state: ModuleState, sessionHandle: unknown, body: (operation: DigestOperation) => T, finishes: boolean): T {
  const session = state.session(sessionHandle);
  const operation = session.active<DigestOperation>("digest");
  try {
    const result = body(operation);
    if (finishes) session.end("digest");
    return result;
  } catch (error) {
    if (!(error instanceof CkrError && error.rv === P.CKR_BUFFER_TOO_SMALL)) session.end("digest");
    throw error;
  }
}

export function digest(state: ModuleState, sessionHandle: unknown, input: unknown, out: unknown): Buffer {
  return run(state, sessionHandle, (operation) => {
    checkSinglePart(operation);
    const target = checkOutput(out, operation.length());
    operation.update(bufferArg(input, "input"));
    return deliver(target, operation.final());
  }, true);
}

export function digestUpdate(state: ModuleState, sessionHandle: unknown, input: unknown): void {
  run(state, sessionHandle, (operation) => {
    operation.update(bufferArg(input, "input"));
    markMultiPart(operation);
  }, false);
}

/** Digests a secret key's value without revealing it (§5.10.4). */
export function digestKey(state: ModuleState, sessionHandle: unknown, keyHandle: unknown): void {
  const session = state.session(sessionHandle);
  const key = state.key(session, keyHandle);
  run(state, sessionHandle, (operation) => {
    if (key.material.kind !== "secret") throw new CkrError(P.CKR_KEY_INDIGESTIBLE);
    const bytes = key.material.key.exportBytes();
    try {
      operation.update(bytes);
      markMultiPart(operation);
    } finally {
      bytes.fill(0);
    }
  }, false);
}

export function digestFinal(state: ModuleState, sessionHandle: unknown, out: unknown): Buffer {
  return run(state, sessionHandle, (operation) => deliver(checkOutput(out, operation.length()), operation.final()), true);
}
