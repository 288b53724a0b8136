/**
 * Decryption, PKCS#11 v2.40 §5.9: C_DecryptInit, C_Decrypt, C_DecryptUpdate, C_DecryptFinal —
 * the steps of encryption.ts in the other direction.
 */
import type { ModuleState } from "../state.js";
import { cipherFinal, cipherInit, cipherOnce, cipherUpdate } from "./encryption.js";

export const decryptInit = (s: ModuleState, session: unknown, mechanism: unknown, key: unknown): void => cipherInit(s, "decrypt", session, mechanism, key);
export const decrypt = (s: ModuleState, session: unknown, input: unknown, out: unknown): Buffer => cipherOnce(s, "decrypt", session, input, out);
export const decryptUpdate = (s: ModuleState, session: unknown, input: unknown, out: unknown): Buffer => cipherUpdate(s, "decrypt", session, input, out);
export const decryptFinal = (s: ModuleState, session: unknown, out: unknown): Buffer => cipherFinal(s, "decrypt", session, out);
