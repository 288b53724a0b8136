/**
 * Errors of the crypto core. The native addon throws plain `Error`s whose `code` is one of
 * NATIVE_ERROR_CODES (built in C++, see native/error.h). Argument checks done here in
 * TypeScript throw TypeError/RangeError with Node's own codes.
 */

export const NATIVE_ERROR_CODES = [
  "ERR_NATIVE_INVALID_ARGUMENT",
  "ERR_NATIVE_AUTH_TAG",
  "ERR_NATIVE_UNWRAP",
  "ERR_NATIVE_OPENSSL",
  "ERR_NATIVE_ENTROPY",
  "ERR_NATIVE_KEY_DESTROYED",
  "ERR_NATIVE_OUT_OF_MEMORY",
  "ERR_NATIVE_BAD_PADDING",
  "ERR_NATIVE_COUNTER_OVERFLOW",
] as const;

export type NativeErrorCode = (typeof NATIVE_ERROR_CODES)[number];

/** An Error raised by the native core, narrowed by its code. */
export interface NativeError extends Error {
  code: NativeErrorCode;
}

/** True when `error` came from the native core (optionally: with this code). */
export function isNativeError(error: unknown, code?: NativeErrorCode): error is NativeError {
  if (!(error instanceof Error)) return false;
  const actual = (error as { code?: unknown }).code;
  if (typeof actual !== "string" || !(NATIVE_ERROR_CODES as readonly string[]).includes(actual)) return false;
  return code === undefined || actual === code;
}

function withCode<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code });
}

export function argTypeError(name: string, expected: string): TypeError & { code: string } {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}`), "ERR_INVALID_ARG_TYPE");
}

export function argRangeError(name: string, expected: string, actual: unknown): RangeError & { code: string } {
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${expected}. Received ${String(actual)}`),
    "ERR_OUT_OF_RANGE",
  );
}

export function argValueError(name: string, reason: string): TypeError & { code: string } {
  return withCode(new TypeError(`The argument "${name}" ${reason}`), "ERR_INVALID_ARG_VALUE");
}

/** Throws unless `value` is a Uint8Array (Buffers are Uint8Arrays). */
export function assertBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw argTypeError(name, "a Buffer or Uint8Array");
}

/** Throws unless `value` is an integer in [min, max]. */
export function assertInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value)) throw argTypeError(name, "an integer");
  if (value < min || value > max) throw argRangeError(name, `>= ${min} and <= ${max}`, value);
}
