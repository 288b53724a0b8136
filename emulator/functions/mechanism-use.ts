/**
 * The checks every C_*Init and key-management call makes before a mechanism runs
 * (PKCS#11 v2.40 §5.8–5.13): a known mechanism that supports the operation, a key of a type it
 * accepts, the key's usage attribute, and CKA_ALLOWED_MECHANISMS.
 */
import { CkrError } from "../errors.js";
import type { MechanismFamily } from "../mechanisms/mechanism.js";
import { MECHANISMS } from "../mechanisms/registry.js";
import type { P11Object } from "../objects/object.js";
import { pkcs11, type Mechanism } from "../pkcs11.js";

const P = pkcs11;

/** Reads a CK_MECHANISM argument and its family; CKR_MECHANISM_INVALID if unknown or not for this operation. */
export function mechanismArg(value: unknown, operation: keyof MechanismFamily): { mechanism: Mechanism; family: MechanismFamily } {
  if (typeof value !== "object" || value === null || typeof (value as Mechanism).mechanism !== "number") {
    throw new CkrError(P.CKR_ARGUMENTS_BAD, "mechanism must be { mechanism, parameter? }");
  }
  const mechanism = value as Mechanism;
  const family = MECHANISMS.get(mechanism.mechanism);
  if (family === undefined || family[operation] === undefined) throw new CkrError(P.CKR_MECHANISM_INVALID);
  return { mechanism, family };
}

/** Checks `key` may be used with this mechanism for the usage attribute `usage` (CKA_ENCRYPT, …). */
export function checkKeyUse(key: P11Object, family: MechanismFamily, mechanism: Mechanism, usage: number): void {
  if (family.keyTypes !== undefined && (key.keyType === undefined || !family.keyTypes.includes(key.keyType))) {
    throw new CkrError(P.CKR_KEY_TYPE_INCONSISTENT);
  }
  if (!key.flag(usage)) throw new CkrError(P.CKR_KEY_FUNCTION_NOT_PERMITTED);
  const allowed = key.attrs.get(P.CKA_ALLOWED_MECHANISMS);
  if (allowed !== undefined && allowed.length > 0) {
    for (let offset = 0; offset < allowed.length; offset += 8) {
      if (allowed.readUInt32LE(offset) === mechanism.mechanism && allowed.readUInt32LE(offset + 4) === 0) return;
    }
    throw new CkrError(P.CKR_MECHANISM_INVALID, "not in the key's CKA_ALLOWED_MECHANISMS");
  }
}
