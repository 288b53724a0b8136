/**
 * Handles cross the pkcs11js surface as Buffers of sizeof(CK_ULONG) = 8 bytes, little-endian
 * (pkcs11js src/pkcs11.cpp get_args_handle). Inside, they are numbers.
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import { CkrError } from "./errors.js";
import { pkcs11 } from "./pkcs11.js";

export const HANDLE_BYTES = 8;

export function toHandle(value: number): Buffer {
  // Not from the shared pool: a handle lives as long as its session or object (see attributes.ts retained()).
  const buffer = Buffer.allocUnsafeSlow(HANDLE_BYTES);
  buffer.writeUInt32LE(value % 0x100000000, 0);
  buffer.writeUInt32LE(Math.floor(value / 0x100000000), 4);
  return buffer;
}

/** Reads a handle argument; `invalid` is the CKR for a malformed one (e.g. CKR_SESSION_HANDLE_INVALID). */
export function fromHandle(handle: unknown, invalid: number): number {
  if (!Buffer.isBuffer(handle)) throw new CkrError(pkcs11.CKR_ARGUMENTS_BAD, "handle must be a Buffer");
  if (handle.length !== HANDLE_BYTES) throw new CkrError(invalid, "handle must be 8 bytes");
  // Two 32-bit halves rather than a BigInt: this runs on every call.
  const high = handle.readUInt32LE(4);
  if (high > 0x1fffff) throw new CkrError(invalid, "handle out of range");
  return high * 0x100000000 + handle.readUInt32LE(0);
}
