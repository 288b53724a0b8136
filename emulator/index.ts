/**
 * `hsmkit/emulator`: a PKCS#11 token with the method surface of pkcs11js, for graphene-pk11 and
 * any pkcs11js code, in-process and without hardware.
 */
export { Emulator, type EmulatorOptions, type EmulatorSlotOptions } from "./emulator.js";
export { CKM_AES_KEY_WRAP_KWP, CKA_PUBLIC_KEY_INFO } from "./extra-constants.js";
export { FaultInjector, type FaultEffect, type FaultEvent, type FaultPlan, type FaultRule } from "./faults.js";
export type { LatencyProfile } from "./latency.js";
export { TokenDirectoryLockedError, TokenFileError } from "./store/errors.js";
