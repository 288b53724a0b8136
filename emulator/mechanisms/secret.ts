/**
 * Generic secrets: CKM_GENERIC_SECRET_KEY_GEN (§2.37.1), keys for HMAC and derivation.
 * Lengths 1..8192 bytes, the native key slot's bounds.
 */
import { generateKey, MAX_KEY_BYTES } from "../../src/crypto/keys.js";
import { CkrError } from "../errors.js";
import { pkcs11 } from "../pkcs11.js";
import { secretKeyAttributes, valueLength } from "./aes.js";
import type { MechanismFamily } from "./mechanism.js";
import { native } from "./native-errors.js";
import { noParameter } from "./params.js";

const P = pkcs11;

const genericSecretKeyGen: MechanismFamily = {
  // §2.37: key sizes in bits for this mechanism.
  info: { minKeySize: 8, maxKeySize: MAX_KEY_BYTES * 8, flags: P.CKF_GENERATE },
  generateKey(template, mechanism) {
    noParameter(mechanism);
    const length = valueLength(template);
    if (length < 1 || length > MAX_KEY_BYTES) throw new CkrError(P.CKR_KEY_SIZE_RANGE, `generic secrets are 1..${MAX_KEY_BYTES} bytes`);
    const fixed = secretKeyAttributes(template, P.CKK_GENERIC_SECRET, length, P.CKM_GENERIC_SECRET_KEY_GEN);
    return { fixed, material: { kind: "secret", key: native({ invalidArgument: P.CKR_KEY_SIZE_RANGE }, () => generateKey(length)) } };
  },
};

export const SECRET_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map([[P.CKM_GENERIC_SECRET_KEY_GEN, genericSecretKeyGen]]);
