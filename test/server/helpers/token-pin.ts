/**
 * An operator changing the token's user PIN under a running service: the PIN is changed from the
 * side and every session of the token is closed, so the service's next token call has to log in
 * again with the PIN it was configured with — which the token now refuses.
 *
 * The service keeps its Emulator to itself, so importing this module wraps
 * Emulator.prototype.C_Initialize to remember the emulators initialized in this thread (one per
 * thread in the tests that use it). Plain PKCS#11 calls do the rest, as any application could.
 */
import { Emulator } from "../../../emulator/index.js";
import { pkcs11 } from "../../../emulator/pkcs11.js";

/** The PIN the service is configured with (token.pin), and the one the token is given under it. */
export const CONFIGURED_PIN = "configured-2468";
export const CHANGED_PIN = "changed-1357";
/** The X-Request-Id of the call before which the KMS thread's entry (./pin-change-worker.ts) changes the PIN. */
export const CHANGE_PIN_REQUEST = "change-pin";

const initialized = new Set<Emulator>();
const initialize = Emulator.prototype.C_Initialize;
Emulator.prototype.C_Initialize = function (this: Emulator, ...args: Parameters<Emulator["C_Initialize"]>): void {
  initialized.add(this);
  initialize.apply(this, args);
};

/** Changes the user PIN of this thread's emulator token from CONFIGURED_PIN to CHANGED_PIN and closes all its sessions. */
export function changeTokenPin(): void {
  if (initialized.size !== 1) throw new Error(`expected one emulator initialized in this thread, found ${initialized.size}`);
  const [emulator] = initialized as Set<Emulator>;
  const slot = emulator!.C_GetSlotList(true)[0]!;
  // Logged in already: login state is the application's, and the service's sessions are logged in (v2.40 §5.6.7).
  const session = emulator!.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  emulator!.C_SetPIN(session, CONFIGURED_PIN, CHANGED_PIN);
  emulator!.C_CloseAllSessions(slot);
}
