/**
 * Every mechanism this token offers, by CKM_ value: what C_GetMechanismList lists and
 * C_GetMechanismInfo describes. Families register here, one import per file.
 */
import { AES_MECHANISMS } from "./aes.js";
import { AES_MODE_MECHANISMS } from "./aes-modes.js";
import { DIGEST_MECHANISMS } from "./digest.js";
import { EC_MECHANISMS } from "./ec.js";
import { HMAC_MECHANISMS } from "./hmac.js";
import type { MechanismFamily } from "./mechanism.js";
import { RSA_MECHANISMS } from "./rsa.js";
import { SECRET_MECHANISMS } from "./secret.js";

export const MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([
  ...AES_MECHANISMS, ...AES_MODE_MECHANISMS, ...SECRET_MECHANISMS, ...DIGEST_MECHANISMS, ...HMAC_MECHANISMS, ...RSA_MECHANISMS, ...EC_MECHANISMS,
]);
