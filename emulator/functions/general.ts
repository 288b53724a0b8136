/**
 * General-purpose functions, PKCS#11 v2.40 §5.4: C_Initialize, C_Finalize, C_GetInfo.
 */
import { CkrError } from "../errors.js";
import { pkcs11, type InitializationOptions, type ModuleInfo } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import { padded } from "./common.js";

const P = pkcs11;

/** §5.4.1. The emulator is thread-safe by construction (one JavaScript thread), so any locking flags are accepted. */
export function initialize(state: ModuleState, options?: InitializationOptions): void {
  if (options !== undefined && options !== null && typeof options !== "object") throw new CkrError(P.CKR_ARGUMENTS_BAD);
  if (state.initialized) throw new CkrError(P.CKR_CRYPTOKI_ALREADY_INITIALIZED);
  state.initialized = true;
}

/** §5.4.2: closes every session, logs every token out. */
export function finalize(state: ModuleState): void {
  state.checkInitialized();
  for (const session of [...state.sessions.values()]) state.closeSession(session);
  for (const slot of state.slots) if (slot.token) state.logout(slot.token);
  state.initialized = false;
}

/** §5.4.3 CK_INFO. */
export function getInfo(state: ModuleState): ModuleInfo {
  state.checkInitialized();
  return {
    cryptokiVersion: { major: 2, minor: 40 },
    manufacturerID: padded("hsmkit", 32),
    flags: 0,
    libraryDescription: padded("hsmkit PKCS#11 emulator", 32),
    libraryVersion: { major: 0, minor: 1 },
  };
}
