/**
 * Errors of the token store, for callers outside the PKCS#11 surface (the Emulator constructor,
 * the `hsmkit token` commands). Inside PKCS#11 functions, storage failures become CkrErrors
 * (CKR_DEVICE_ERROR, or CKR_DEVICE_MEMORY when the disk is full), as a real token reports them.
 */
import type { LockOwner } from "./lock.js";

/** Another process (or another Emulator in this one) holds the token directory. */
export class TokenDirectoryLockedError extends Error {
  readonly code = "ERR_HSMKIT_TOKEN_DIR_LOCKED";
  constructor(
    readonly directory: string,
    /** The owner, when the lock file could be read. */
    readonly owner: LockOwner | null,
    message: string,
  ) {
    super(message);
    this.name = "TokenDirectoryLockedError";
  }
}

/** A token file that cannot be read as one (damaged, or written by something else). */
export class TokenFileError extends Error {
  readonly code = "ERR_HSMKIT_TOKEN_FILE";
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = "TokenFileError";
  }
}
