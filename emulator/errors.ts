/**
 * Inside the emulator, failures are CkrErrors carrying a CK_RV. They become pkcs11js's own
 * Pkcs11Error (message "CKR_NAME", numeric code, method) only at the function edge, exactly as
 * pkcs11js reports a real module's failures — graphene relies on that class.
 */
import { constantName, pkcs11 } from "./pkcs11.js";

export class CkrError extends Error {
  constructor(
    readonly rv: number,
    /** For logs and debugging; never shown to the caller, whose message is the CKR name. */
    readonly detail?: string,
  ) {
    super(constantName("CKR_", rv) + (detail ? `: ${detail}` : ""));
  }
}

/** Throws CkrError(rv) unless `condition`. */
export function require_(condition: unknown, rv: number, detail?: string): asserts condition {
  if (!condition) throw new CkrError(rv, detail);
}

/**
 * The error a caller sees. Anything that is not a CkrError is a defect or an argument of the
 * wrong JavaScript type: the former becomes CKR_GENERAL_ERROR, the latter CKR_ARGUMENTS_BAD, so
 * that the surface throws nothing but Pkcs11Error.
 */
export function toPkcs11Error(error: unknown, method: string): InstanceType<typeof pkcs11.Pkcs11Error> {
  if (error instanceof pkcs11.Pkcs11Error) return error;
  const rv =
    error instanceof CkrError ? error.rv : error instanceof TypeError || error instanceof RangeError ? pkcs11.CKR_ARGUMENTS_BAD : pkcs11.CKR_GENERAL_ERROR;
  const name = constantName("CKR_", rv);
  return new pkcs11.Pkcs11Error(`${name}:${rv}`, rv, method);
}
