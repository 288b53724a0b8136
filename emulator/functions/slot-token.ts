/**
 * Slot and token management, PKCS#11 v2.40 §5.5: C_GetSlotList, C_GetSlotInfo,
 * C_GetTokenInfo, C_WaitForSlotEvent, C_GetMechanismList, C_GetMechanismInfo, C_InitToken,
 * C_InitPIN, C_SetPIN.
 */
import { CkrError } from "../errors.js";
import { toHandle } from "../handles.js";
import { MECHANISMS } from "../mechanisms/registry.js";
import { pkcs11, untypedConstant, type Handle, type MechanismInfo, type SlotInfo, type TokenInfo } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import { MAX_PIN, MIN_PIN } from "../token.js";
import { numberArg, padded, pinArg, verifyPin } from "./common.js";

const P = pkcs11;
const CKF_TOKEN_PRESENT = untypedConstant("CKF_TOKEN_PRESENT");
const CKF_REMOVABLE_DEVICE = untypedConstant("CKF_REMOVABLE_DEVICE");

/** §5.5.1 */
export function getSlotList(state: ModuleState, tokenPresent?: boolean): Handle[] {
  state.checkInitialized();
  return state.slots.filter((slot) => !tokenPresent || slot.token !== null).map((slot) => toHandle(slot.id));
}

/** §5.5.2 */
export function getSlotInfo(state: ModuleState, slotHandle: unknown): SlotInfo {
  const slot = state.slot(slotHandle);
  return {
    slotDescription: padded(slot.description, 64),
    manufacturerID: padded("hsmkit", 32),
    flags: (slot.token !== null ? CKF_TOKEN_PRESENT : 0) | CKF_REMOVABLE_DEVICE,
    hardwareVersion: { major: 0, minor: 1 },
    firmwareVersion: { major: 0, minor: 1 },
  };
}

/** §5.5.3 */
export function getTokenInfo(state: ModuleState, slotHandle: unknown): TokenInfo {
  const slot = state.slot(slotHandle);
  const token = state.token(slot);
  const sessions = state.sessionsOf(slot);
  const now = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return {
    label: padded(token.label, 32),
    manufacturerID: padded("hsmkit", 32),
    model: padded("emulator", 16),
    serialNumber: padded(token.serialNumber, 16),
    flags: token.flags | P.CKF_CLOCK_ON_TOKEN,
    maxSessionCount: 0, // CK_EFFECTIVELY_INFINITE
    sessionCount: sessions.length,
    maxRwSessionCount: 0,
    rwSessionCount: sessions.filter((s) => s.rw).length,
    maxPinLen: MAX_PIN,
    minPinLen: MIN_PIN,
    hardwareVersion: { major: 0, minor: 1 },
    firmwareVersion: { major: 0, minor: 1 },
    utcTime: now + "00",
    totalPublicMemory: 0xffffffff, // CK_UNAVAILABLE_INFORMATION, truncated as pkcs11js reads it
    freePublicMemory: 0xffffffff,
    totalPrivateMemory: 0xffffffff,
    freePrivateMemory: 0xffffffff,
  };
}

/** §5.5.4: no slot events without a fault plan that removes tokens; CKF_DONT_BLOCK returns null. */
export function waitForSlotEvent(state: ModuleState, flags: unknown): Handle | null {
  state.checkInitialized();
  numberArg(flags, "flags");
  if ((Number(flags) & P.CKF_DONT_BLOCK) === 0) throw new CkrError(P.CKR_FUNCTION_NOT_SUPPORTED, "blocking wait would hang the event loop");
  return state.takeSlotEvent();
}

/** §5.5.5 */
export function getMechanismList(state: ModuleState, slotHandle: unknown): number[] {
  const slot = state.slot(slotHandle);
  state.token(slot);
  return [...MECHANISMS.keys()].sort((a, b) => a - b);
}

/** §5.5.6 */
export function getMechanismInfo(state: ModuleState, slotHandle: unknown, type: unknown): MechanismInfo {
  const slot = state.slot(slotHandle);
  state.token(slot);
  const family = MECHANISMS.get(numberArg(type, "mechanism"));
  if (family === undefined) throw new CkrError(P.CKR_MECHANISM_INVALID);
  return { ...family.info };
}

/** §5.5.7 C_InitToken: (re)initializes with the SO PIN; refused while sessions are open. */
export function initToken(state: ModuleState, slotHandle: unknown, pin: unknown, label: unknown): string {
  const slot = state.slot(slotHandle);
  const token = state.token(slot);
  if (state.sessionsOf(slot).length > 0) throw new CkrError(P.CKR_SESSION_EXISTS);
  if (label !== undefined && typeof label !== "string") throw new CkrError(P.CKR_ARGUMENTS_BAD, "label must be a string");
  const soPin = pinArg(pin);
  if (token.initialized) verifyPin(state, token, "so", soPin).destroy();
  const name = (label ?? "").trimEnd();
  token.initialize(soPin, name);
  state.persistence.tokenInitialized(token);
  return padded(name, 32);
}

/** §5.5.8 C_InitPIN: the SO sets the user PIN, in a read/write session. */
export function initPin(state: ModuleState, sessionHandle: unknown, pin: unknown): void {
  const session = state.session(sessionHandle);
  const token = session.slot.token!;
  if (token.login !== "so") throw new CkrError(P.CKR_USER_NOT_LOGGED_IN);
  if (!session.rw) throw new CkrError(P.CKR_SESSION_READ_ONLY);
  token.setPin("user", pinArg(pin));
  state.persistence.tokenChanged(token);
}

/** §5.5.9 C_SetPIN: the logged-in user (or SO; the user when nobody is) changes their own PIN. */
export function setPin(state: ModuleState, sessionHandle: unknown, oldPin: unknown, newPin: unknown): void {
  const session = state.session(sessionHandle);
  const token = session.slot.token!;
  if (!session.rw) throw new CkrError(P.CKR_SESSION_READ_ONLY);
  const who = token.login === "so" ? "so" : "user";
  const current = pinArg(oldPin);
  const replacement = pinArg(newPin);
  const key = verifyPin(state, token, who, current);
  if (token.tokenKey === null) token.tokenKey = key;
  else key.destroy();
  token.setPin(who, replacement);
  state.persistence.tokenChanged(token);
}
