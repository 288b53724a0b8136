/**
 * Every mechanism this token offers, by CKM_ value: what C_GetMechanismList lists and
 * C_GetMechanismInfo describes. Families register here, one import per file.
 */
import { AES_MECHANISMS } from "./aes.js";
import type { MechanismFamily } from "./mechanism.js";
import { SECRET_MECHANISMS } from "./secret.js";

export const MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([...AES_MECHANISMS, ...SECRET_MECHANISMS]);
