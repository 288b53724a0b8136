/**
 * Native core errors seen through PKCS#11: each call site says which CKR an argument error
 * means there (a data length, a wrapped-key length, a key size); the rest map one way.
 */
import { isNativeError } from "../../src/crypto/errors.js";
import { CkrError } from "../errors.js";
import { pkcs11 } from "../pkcs11.js";

const P = pkcs11;

export interface NativeErrorMeaning {
  /** ERR_NATIVE_INVALID_ARGUMENT (lengths, key sizes) */
  invalidArgument: number;
  /** ERR_NATIVE_AUTH_TAG / ERR_NATIVE_UNWRAP / ERR_NATIVE_BAD_PADDING */
  integrity?: number;
}

/** Runs `body`, turning native errors into CkrErrors. */
export function native<T>(meaning: NativeErrorMeaning, body: () => T): T {
  try {
    return body();
  } catch (error) {
    throw translate(error, meaning);
  }
}

export function translate(error: unknown, meaning: NativeErrorMeaning): unknown {
  if (error instanceof CkrError || !(error instanceof Error)) return error;
  const code = (error as { code?: string }).code;
  if (isNativeError(error, "ERR_NATIVE_INVALID_ARGUMENT")) return new CkrError(meaning.invalidArgument, error.message);
  if (code === "ERR_NATIVE_AUTH_TAG" || code === "ERR_NATIVE_UNWRAP" || code === "ERR_NATIVE_BAD_PADDING") {
    return new CkrError(meaning.integrity ?? P.CKR_ENCRYPTED_DATA_INVALID);
  }
  if (code === "ERR_NATIVE_ENTROPY") return new CkrError(P.CKR_DEVICE_ERROR, "random generator has no healthy entropy source");
  if (code === "ERR_NATIVE_KEY_DESTROYED") return new CkrError(P.CKR_KEY_HANDLE_INVALID);
  if (code === "ERR_NATIVE_OUT_OF_MEMORY") return new CkrError(P.CKR_DEVICE_MEMORY);
  return new CkrError(P.CKR_GENERAL_ERROR, error.message);
}
