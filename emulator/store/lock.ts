/**
 * One process owns a token directory at a time (src/util/directory-lock.ts): two emulators writing
 * one directory would each keep their own idea of the PIN counters and objects and overwrite the
 * other's. The owner holds `<dir>/lock`; a refusal is a TokenDirectoryLockedError naming the owner,
 * and a stale lock taken over is reported through `warn` (code HSMKIT_STALE_LOCK by default).
 */
import { DirectoryLock, readLockOwner as readOwner, type LockOwner, type LockRefusal } from "../../src/util/directory-lock.js";
import { TokenDirectoryLockedError } from "./errors.js";

export const LOCK_FILE = "lock";
export type { LockOwner };
export type { DirectoryLock };

export interface AcquireOptions {
  /** Reports a stale lock taken over; default: process.emitWarning with code HSMKIT_STALE_LOCK. */
  warn?: (message: string) => void;
}

/** The token directory's lock owner; undefined if unlocked, null if the lock file cannot be read as one. */
export function readLockOwner(directory: string): LockOwner | null | undefined {
  return readOwner(directory, LOCK_FILE);
}

function refuse(directory: string, refusal: LockRefusal): TokenDirectoryLockedError {
  const { reason, path, owner, described } = refusal;
  const message =
    reason === "unreadable"
      ? `token directory ${directory} is locked, but its lock file ${path} cannot be read as an hsmkit lock; ` +
        `if no process uses the directory, remove that file`
      : reason === "this-process"
        ? `token directory ${directory} is already open in this process (${described}); ` +
          `close() the Emulator that opened it before opening it again`
        : reason === "contended"
          ? `token directory ${directory} is contended: could not take its lock` + (owner ? `; it is now held by ${described}` : "")
          : `token directory ${directory} is in use by ${described}` +
            (reason === "other-host" ? `; if that process is gone, remove the lock file ${path}` : "");
  return new TokenDirectoryLockedError(directory, owner, message);
}

/** Takes the lock of a token directory (which must exist) or throws TokenDirectoryLockedError. */
export function acquireTokenDirectoryLock(directory: string, options: AcquireOptions = {}): DirectoryLock {
  const warn = options.warn ?? ((message: string) => process.emitWarning(message, { code: "HSMKIT_STALE_LOCK" }));
  return DirectoryLock.acquire(directory, {
    fileName: LOCK_FILE,
    refuse: (refusal) => refuse(directory, refusal),
    warn: (_previous, described) => warn(`hsmkit: took over the lock of token directory ${directory} from ${described}, which is no longer running`),
  });
}
