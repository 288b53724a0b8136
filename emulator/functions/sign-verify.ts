/**
 * Signing and MACing (§5.11) and verifying (§5.12): C_SignInit, C_Sign, C_SignUpdate,
 * C_SignFinal, C_VerifyInit, C_Verify, C_VerifyUpdate, C_VerifyFinal. Signing with message
 * recovery (C_SignRecover*, C_VerifyRecover*) is not offered: CKR_FUNCTION_NOT_SUPPORTED.
 *
 * As pkcs11js does, C_Verify and C_VerifyFinal return true or throw CKR_SIGNATURE_INVALID.
 */
import { CkrError } from "../errors.js";
import type { SignOperation, VerifyOperation } from "../mechanisms/mechanism.js";
import { pkcs11 } from "../pkcs11.js";
import type { OperationKind } from "../session.js";
import type { ModuleState } from "../state.js";
import { bufferArg, checkOutput, checkSinglePart, deliver, markMultiPart } from "./common.js";
import { checkKeyUse, mechanismArg } from "./mechanism-use.js";

const P = pkcs11;

function init(state: ModuleState, kind: "sign" | "verify", sessionHandle: unknown, mechanismValue: unknown, keyHandle: unknown): void {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, kind);
  const key = state.key(session, keyHandle);
  checkKeyUse(key, family, mechanism, kind === "sign" ? P.CKA_SIGN : P.CKA_VERIFY);
  session.begin(kind, kind === "sign" ? family.sign!(key, mechanism) : family.verify!(key, mechanism), key);
}

function run<O, T>(state: ModuleState, kind: OperationKind, sessionHandle: unknown, body: (operation: O) => T, finishes: boolean): T {
  const session = state.session(sessionHandle);
  const operation = session.active<O & { abort?(): void }>(kind);
  try {
    const result = body(operation);
    if (finishes) session.end(kind);
    return result;
  } catch (error) {
    if (!(error instanceof CkrError && error.rv === P.CKR_BUFFER_TOO_SMALL)) session.end(kind);
    throw error;
  }
}

export const signInit = (s: ModuleState, session: unknown, mechanism: unknown, key: unknown): void => init(s, "sign", session, mechanism, key);
export const verifyInit = (s: ModuleState, session: unknown, mechanism: unknown, key: unknown): void => init(s, "verify", session, mechanism, key);

export function sign(state: ModuleState, sessionHandle: unknown, input: unknown, out: unknown): Buffer {
  return run<SignOperation, Buffer>(state, "sign", sessionHandle, (operation) => {
    checkSinglePart(operation);
    const target = checkOutput(out, operation.length());
    operation.update(bufferArg(input, "input"));
    return deliver(target, operation.final());
  }, true);
}

/**
 * A single-part mechanism has no C_SignUpdate / C_VerifyUpdate: the call fails and, like every
 * failure but CKR_BUFFER_TOO_SMALL, ends the operation (§5.2). SoftHSMv2 refuses them too, so code
 * that fed parts to such a mechanism on the emulator would fail on a real token.
 */
function refuseSinglePart(operation: { singlePart?: true }, call: string): void {
  if (operation.singlePart === true) throw new CkrError(P.CKR_FUNCTION_NOT_SUPPORTED, `single-part mechanism: ${call} is not offered`);
}

export function signUpdate(state: ModuleState, sessionHandle: unknown, input: unknown): void {
  run<SignOperation, void>(state, "sign", sessionHandle, (operation) => {
    refuseSinglePart(operation, "C_SignUpdate");
    operation.update(bufferArg(input, "input"));
    markMultiPart(operation);
  }, false);
}

export function signFinal(state: ModuleState, sessionHandle: unknown, out: unknown): Buffer {
  return run<SignOperation, Buffer>(state, "sign", sessionHandle, (operation) => deliver(checkOutput(out, operation.length()), operation.final()), true);
}

function verdict(valid: boolean): true {
  if (!valid) throw new CkrError(P.CKR_SIGNATURE_INVALID);
  return true;
}

export function verify(state: ModuleState, sessionHandle: unknown, input: unknown, signature: unknown): boolean {
  return run<VerifyOperation, boolean>(state, "verify", sessionHandle, (operation) => {
    checkSinglePart(operation);
    operation.update(bufferArg(input, "input"));
    return verdict(operation.final(bufferArg(signature, "signature")));
  }, true);
}

export function verifyUpdate(state: ModuleState, sessionHandle: unknown, input: unknown): void {
  run<VerifyOperation, void>(state, "verify", sessionHandle, (operation) => {
    refuseSinglePart(operation, "C_VerifyUpdate");
    operation.update(bufferArg(input, "input"));
    markMultiPart(operation);
  }, false);
}

export function verifyFinal(state: ModuleState, sessionHandle: unknown, signature: unknown): boolean {
  return run<VerifyOperation, boolean>(state, "verify", sessionHandle, (operation) => verdict(operation.final(bufferArg(signature, "signature"))), true);
}
