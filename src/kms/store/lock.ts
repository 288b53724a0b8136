/**
 * One process writes a store directory at a time (src/util/directory-lock.ts). The store's writer
 * keeps the audit chain's head in memory; two writers would both append record n+1, and SQLite's own
 * locks only serialize transactions. The owner holds `<directory>/kms.lock`; readers (audit
 * verification, tools) take no lock: WAL lets them read while the owner writes.
 */
import { DirectoryLock, type LockRefusal } from "../../util/directory-lock.js";
import { StoreError } from "./errors.js";

export const LOCK_FILE = "kms.lock";

function refuse(directory: string, { reason, path, described }: LockRefusal): StoreError {
  const message =
    reason === "unreadable"
      ? `${path} exists but is not an hsmkit lock; remove it if no process uses ${directory}`
      : reason === "this-process"
        ? `the KMS store in ${directory} is already open in this process; close it first`
        : reason === "contended"
          ? `the KMS store in ${directory} is contended: could not take its lock`
          : `the KMS store in ${directory} is in use by ${described}` +
            (reason === "other-host" ? `; if that process is gone, remove ${path}` : "");
  return new StoreError("ERR_KMS_STORE_LOCKED", message);
}

/** The store directory's lock. */
export class StoreLock {
  private constructor(private readonly lock: DirectoryLock) {}

  /** Takes the lock of `directory` (which must exist), taking over a stale one; else StoreError ERR_KMS_STORE_LOCKED. */
  static acquire(directory: string, warn: (message: string) => void): StoreLock {
    return new StoreLock(
      DirectoryLock.acquire(directory, {
        fileName: LOCK_FILE,
        refuse: (refusal) => refuse(directory, refusal),
        warn: (previous) => warn(`hsmkit: took over the lock of the KMS store in ${directory} from process ${previous.pid}, which is no longer running`),
      }),
    );
  }

  /** Removes the lock file if it is still this acquisition's. Idempotent. */
  release(): void {
    this.lock.release();
  }
}
