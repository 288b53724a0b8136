/**
 * Session management, PKCS#11 v2.40 §5.6: C_OpenSession, C_CloseSession, C_CloseAllSessions,
 * C_GetSessionInfo, C_Login, C_Logout, with the login state machine's exact return codes.
 */
import { CkrError } from "../errors.js";
import { toHandle } from "../handles.js";
import { pkcs11, type Handle, type SessionInfo } from "../pkcs11.js";
import type { Session } from "../session.js";
import type { ModuleState } from "../state.js";
import { numberArg, pinArg, verifyPin } from "./common.js";

const P = pkcs11;

/** §5.6.1 */
export function openSession(state: ModuleState, slotHandle: unknown, flags: unknown): Handle {
  const slot = state.slot(slotHandle);
  const token = state.token(slot);
  const f = numberArg(flags, "flags");
  if ((f & P.CKF_SERIAL_SESSION) === 0) throw new CkrError(P.CKR_SESSION_PARALLEL_NOT_SUPPORTED);
  if (!token.initialized) throw new CkrError(P.CKR_TOKEN_NOT_RECOGNIZED);
  const rw = (f & P.CKF_RW_SESSION) !== 0;
  if (!rw && token.login === "so") throw new CkrError(P.CKR_SESSION_READ_WRITE_SO_EXISTS);
  return toHandle(state.openSession(slot, rw).handle);
}

/** §5.6.2 */
export function closeSession(state: ModuleState, sessionHandle: unknown): void {
  state.closeSession(state.session(sessionHandle));
}

/** §5.6.3 */
export function closeAllSessions(state: ModuleState, slotHandle: unknown): void {
  const slot = state.slot(slotHandle);
  state.token(slot);
  for (const session of state.sessionsOf(slot)) state.closeSession(session);
}

/** §5.6.4 */
export function getSessionInfo(state: ModuleState, sessionHandle: unknown): SessionInfo {
  const session = state.session(sessionHandle);
  return {
    slotID: toHandle(session.slot.id),
    state: session.state,
    flags: P.CKF_SERIAL_SESSION | (session.rw ? P.CKF_RW_SESSION : 0),
    deviceError: 0,
  };
}

/** §5.6.7 C_Login */
export function login(state: ModuleState, sessionHandle: unknown, userType: unknown, pin: unknown): void {
  const session = state.session(sessionHandle);
  const token = session.slot.token!;
  const type = numberArg(userType, "userType");
  if (type === P.CKU_CONTEXT_SPECIFIC) {
    contextLogin(state, session, pin);
    return;
  }
  if (type !== P.CKU_SO && type !== P.CKU_USER) throw new CkrError(P.CKR_USER_TYPE_INVALID);
  const who = type === P.CKU_SO ? "so" : "user";
  if (token.login === who) throw new CkrError(P.CKR_USER_ALREADY_LOGGED_IN);
  if (token.login !== "public") throw new CkrError(P.CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
  if (who === "so" && state.sessionsOf(session.slot).some((s) => !s.rw)) throw new CkrError(P.CKR_SESSION_READ_ONLY_EXISTS);
  token.adoptTokenKey(verifyPin(state, token, who, pinArg(pin)));
  // The objects load before the login takes effect: a C_Login that fails leaves nobody logged in.
  state.persistence.loggedIn(token);
  token.login = who;
}

/**
 * §5.6.7 C_Login with CKU_CONTEXT_SPECIFIC: the PIN of whoever is logged in, given again for the
 * session's operation whose key has CKA_ALWAYS_AUTHENTICATE (v2.40 §4.9). Anything else is
 * "improper use", CKR_OPERATION_NOT_INITIALIZED. A wrong PIN counts as at C_Login and leaves the
 * operation waiting, as SoftHSMv2's Token::reAuthenticate does.
 */
function contextLogin(state: ModuleState, session: Session, pin: unknown): void {
  if (!session.awaitsContextLogin) throw new CkrError(P.CKR_OPERATION_NOT_INITIALIZED, "no operation awaits re-authentication");
  const token = session.slot.token!;
  if (token.login === "public") throw new CkrError(P.CKR_USER_NOT_LOGGED_IN);
  verifyPin(state, token, token.login, pinArg(pin)).destroy();
  session.contextLoggedIn();
}

/** §5.6.8 C_Logout */
export function logout(state: ModuleState, sessionHandle: unknown): void {
  const session = state.session(sessionHandle);
  const token = session.slot.token!;
  if (token.login === "public") throw new CkrError(P.CKR_USER_NOT_LOGGED_IN);
  for (const s of state.sessionsOf(session.slot)) s.endAll();
  state.logout(token);
}
