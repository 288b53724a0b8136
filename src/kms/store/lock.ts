/**
 * One process writes a store directory at a time. The store's writer keeps the audit chain's head
 * in memory; two writers would both append record n+1. SQLite's own locks only serialize
 * transactions, so the owner holds `<directory>/kms.lock`, a small JSON file naming it.
 *
 * The approach is the emulator's token-directory lock (emulator/store/lock.ts), kept separate so
 * the KMS does not depend on the emulator's internals:
 * - Acquire: the file is written and fsync'ed under a temporary name, then hard-linked into place
 *   (link(2) fails if it exists), so the lock is never seen half-written.
 * - Stale: an owner on this host whose process is gone (no such pid, or the pid now belongs to a
 *   process that started later — Linux /proc start time) is taken over, with a warning. A process
 *   killed by SIGKILL leaves its lock behind; it is stale from then on.
 * - Readers (audit verification, tools) take no lock: WAL lets them read while the owner writes.
 */
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { StoreError } from "./errors.js";

export const LOCK_FILE = "kms.lock";

export interface LockOwner {
  pid: number;
  hostname: string;
  /** Linux: the process's start time in clock ticks after boot (/proc/<pid>/stat field 22). */
  processStart: string | null;
  since: string;
  command: string;
  /** Names this acquisition, so release never removes a successor's lock. */
  nonce: string;
}

function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[22 - 3] ?? null;
  } catch {
    return null;
  }
}

function fsyncDirectory(path: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readOwner(path: string): LockOwner | null | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== "number" || typeof value.hostname !== "string" || typeof value.nonce !== "string") return null;
    return {
      pid: value.pid, hostname: value.hostname, nonce: value.nonce,
      processStart: typeof value.processStart === "string" ? value.processStart : null,
      since: String(value.since), command: String(value.command),
    };
  } catch {
    return null;
  }
}

function alive(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) return true; // cannot tell: assume it is
  if (owner.pid === process.pid) return owner.processStart === null || owner.processStart === processStart(process.pid);
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  const start = processStart(owner.pid);
  return owner.processStart === null || start === null || start === owner.processStart;
}

function createExclusive(path: string, data: Buffer): boolean {
  const temporary = `${path}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(temporary, "wx", 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    unlinkSync(temporary);
  }
  return true;
}

const held = new Set<StoreLock>();
let exitHook = false;

export class StoreLock {
  #released = false;

  private constructor(readonly path: string, readonly owner: LockOwner) {}

  /** Takes the lock of `directory` (which must exist), taking over a stale one; else StoreError ERR_KMS_STORE_LOCKED. */
  static acquire(directory: string, warn: (message: string) => void): StoreLock {
    const path = join(directory, LOCK_FILE);
    const owner: LockOwner = {
      pid: process.pid,
      hostname: hostname(),
      processStart: processStart(process.pid),
      since: new Date().toISOString(),
      command: process.argv.slice(1).join(" ").slice(0, 200),
      nonce: randomBytes(16).toString("hex"),
    };
    const content = Buffer.from(JSON.stringify(owner, null, 2) + "\n");
    for (let attempt = 0; attempt < 5; attempt++) {
      if (createExclusive(path, content)) {
        fsyncDirectory(directory);
        const lock = new StoreLock(path, owner);
        held.add(lock);
        if (!exitHook) {
          exitHook = true;
          process.once("exit", () => {
            for (const each of [...held]) each.release();
          });
        }
        return lock;
      }
      const current = readOwner(path);
      if (current === undefined) continue;
      if (current === null) throw new StoreError("ERR_KMS_STORE_LOCKED", `${path} exists but is not an hsmkit lock; remove it if no process uses ${directory}`);
      if (alive(current)) {
        const who = `process ${current.pid} on ${current.hostname} since ${current.since} (${current.command})`;
        throw new StoreError("ERR_KMS_STORE_LOCKED", current.pid === process.pid
          ? `the KMS store in ${directory} is already open in this process; close it first`
          : `the KMS store in ${directory} is in use by ${who}`);
      }
      // Stale: move it aside (only one contender's rename succeeds), then check it was that one.
      const aside = `${path}.stale-${randomBytes(6).toString("hex")}`;
      try {
        renameSync(path, aside);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw error;
      }
      const moved = readOwner(aside);
      if (moved?.nonce === current.nonce) {
        unlinkSync(aside);
        warn(`hsmkit: took over the lock of the KMS store in ${directory} from process ${current.pid}, which is no longer running`);
      } else {
        try {
          createExclusive(path, readFileSync(aside));
        } finally {
          unlinkSync(aside);
        }
      }
    }
    throw new StoreError("ERR_KMS_STORE_LOCKED", `the KMS store in ${directory} is contended: could not take its lock`);
  }

  /** Removes the lock file if it is still this acquisition's. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    held.delete(this);
    try {
      if (readOwner(this.path)?.nonce === this.owner.nonce) unlinkSync(this.path);
    } catch {
      /* the directory is gone: nothing to release */
    }
  }
}
