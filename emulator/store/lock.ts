/**
 * One process owns a token directory at a time: the owner holds `<dir>/lock`, a small JSON file
 * naming it (pid, host, thread, start time, command line). Two emulators writing one directory
 * would each keep their own idea of the PIN counters and objects and overwrite the other's.
 *
 * - Acquire: the lock file is created complete or not at all (written under a temporary name,
 *   fsync'ed, then link(2)ed to `lock`, which fails if `lock` exists — an O_EXCL create that can
 *   never leave an empty file behind).
 * - Held elsewhere: TokenDirectoryLockedError, whose message names the owner.
 * - Stale: an owner on this host whose process is gone (no such pid, or a pid now used by a
 *   process that started later — Linux records the start time from /proc) is taken over, with
 *   a process warning (code HSMKIT_STALE_LOCK) naming the previous owner. Owners on another host
 *   cannot be checked and are never taken over.
 * - Release: close() of the emulator, or process exit. A process killed with SIGKILL leaves the
 *   lock behind; it is stale from then on.
 *
 * Limit: two processes that take over the same stale lock at the same instant are separated by
 * renaming the stale file away (only one rename succeeds) and checking what was renamed; a
 * window of a few system calls remains in which both could believe they won. The lock guards
 * against accidents (a second server, a CLI run against a live directory), not against a
 * hostile local user, who could simply edit the files.
 */
import { readFileSync, renameSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { threadId } from "node:worker_threads";
import { createFileExclusive, fsyncDirectory } from "./atomic-file.js";
import { TokenDirectoryLockedError } from "./errors.js";

export const LOCK_FILE = "lock";

/** Who holds a token directory: the lock file's content. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** Worker thread within the process (0: the main thread). */
  thread: number;
  /** When the lock was taken, ISO 8601. */
  since: string;
  /** Linux: the process's start time in clock ticks after boot (/proc/<pid>/stat field 22); tells a reused pid. */
  processStart: string | null;
  /**
   * What runs, for the person reading the error: the script and at most two subcommand words
   * ("…/main.js token objects"). Never option values — a PIN given as --pin must not reach a file.
   */
  command: string;
  /** Random: names this one acquisition, so a release never removes someone else's lock. */
  nonce: string;
}

/** Linux start time of `pid`, or null where /proc is absent or the process is gone. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 2 (comm) is in parentheses and may hold spaces; the fields after it start at 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[22 - 3] ?? null;
  } catch {
    return null;
  }
}

/** See LockOwner.command. */
function commandLine(): string {
  const words = [process.argv[1] ?? process.argv0];
  for (const arg of process.argv.slice(2, 4)) {
    if (!/^[a-z][a-z-]{0,23}$/.test(arg)) break;
    words.push(arg);
  }
  return words.join(" ").slice(0, 300);
}

function describe(owner: LockOwner): string {
  const thread = owner.thread !== 0 ? ` (worker thread ${owner.thread})` : "";
  return `process ${owner.pid}${thread} on host ${owner.hostname} since ${owner.since} (${owner.command})`;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== "number" || typeof value.hostname !== "string" || typeof value.nonce !== "string") return null;
    return {
      pid: value.pid,
      hostname: value.hostname,
      thread: typeof value.thread === "number" ? value.thread : 0,
      since: typeof value.since === "string" ? value.since : "an unknown time",
      processStart: typeof value.processStart === "string" ? value.processStart : null,
      command: typeof value.command === "string" ? value.command : "unknown command",
      nonce: value.nonce,
    };
  } catch {
    return null;
  }
}

/** The lock file's owner; undefined if there is no lock file, null if it cannot be read as one. */
export function readLockOwner(directory: string): LockOwner | null | undefined {
  let text: string;
  try {
    text = readFileSync(join(directory, LOCK_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return parseOwner(text);
}

type Verdict = "this-process" | "alive" | "stale" | "unknown";

function judge(owner: LockOwner): Verdict {
  if (owner.hostname !== hostname()) return "unknown";
  const ownStart = processStart(process.pid);
  if (owner.pid === process.pid) {
    return owner.processStart === null || ownStart === null || owner.processStart === ownStart ? "this-process" : "stale";
  }
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return "stale";
  }
  const start = processStart(owner.pid);
  if (owner.processStart !== null && start !== null && start !== owner.processStart) return "stale";
  return "alive";
}

/** Locks held by this thread, released at exit. */
const held = new Set<DirectoryLock>();
let exitHookInstalled = false;

export interface AcquireOptions {
  /** Reports a stale lock taken over; default: process.emitWarning with code HSMKIT_STALE_LOCK. */
  warn?: (message: string) => void;
}

export class DirectoryLock {
  private released = false;

  private constructor(
    readonly directory: string,
    /** This acquisition, as written in the lock file. */
    readonly owner: LockOwner,
  ) {}

  /** Takes the lock of `directory` (which must exist) or throws TokenDirectoryLockedError. */
  static acquire(directory: string, options: AcquireOptions = {}): DirectoryLock {
    const warn = options.warn ?? ((message: string) => process.emitWarning(message, { code: "HSMKIT_STALE_LOCK" }));
    const path = join(directory, LOCK_FILE);
    const owner: LockOwner = {
      pid: process.pid,
      hostname: hostname(),
      thread: threadId,
      since: new Date().toISOString(),
      processStart: processStart(process.pid),
      command: commandLine(),
      nonce: randomBytes(16).toString("hex"),
    };
    const content = Buffer.from(JSON.stringify(owner, null, 2) + "\n", "utf8");
    for (let attempt = 0; attempt < 5; attempt++) {
      if (createFileExclusive(path, content)) {
        const lock = new DirectoryLock(directory, owner);
        held.add(lock);
        if (!exitHookInstalled) {
          exitHookInstalled = true;
          process.once("exit", () => {
            for (const lock of [...held]) lock.release();
          });
        }
        return lock;
      }
      const current = readLockOwner(directory);
      if (current === undefined) continue; // released meanwhile: try again
      if (current === null) {
        throw new TokenDirectoryLockedError(directory, null,
          `token directory ${directory} is locked, but its lock file ${path} cannot be read as an hsmkit lock; ` +
          `if no process uses the directory, remove that file`);
      }
      const verdict = judge(current);
      if (verdict === "this-process") {
        throw new TokenDirectoryLockedError(directory, current,
          `token directory ${directory} is already open in this process (${describe(current)}); ` +
          `close() the Emulator that opened it before opening it again`);
      }
      if (verdict !== "stale") {
        const advice = verdict === "unknown" ? "; if that process is gone, remove the lock file " + path : "";
        throw new TokenDirectoryLockedError(directory, current, `token directory ${directory} is in use by ${describe(current)}${advice}`);
      }
      if (takeOver(directory, current)) {
        warn(`hsmkit: took over the lock of token directory ${directory} from ${describe(current)}, which is no longer running`);
      }
    }
    const last = readLockOwner(directory) ?? null;
    throw new TokenDirectoryLockedError(directory, last,
      `token directory ${directory} is contended: could not take its lock` + (last ? `; it is now held by ${describe(last)}` : ""));
  }

  get isHeld(): boolean {
    return !this.released;
  }

  /** Removes the lock file if it is still this acquisition's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    const current = readLockOwner(this.directory);
    if (current?.nonce !== this.owner.nonce) return;
    try {
      unlinkSync(join(this.directory, LOCK_FILE));
      fsyncDirectory(this.directory);
    } catch {
      /* gone already, or the directory was removed: nothing to release */
    }
  }
}

/**
 * Moves a stale lock out of the way. The rename succeeds for one contender only; if what was
 * renamed turns out not to be the stale lock (another contender replaced it in between), it is
 * put back. Returns whether the stale lock was removed.
 */
function takeOver(directory: string, stale: LockOwner): boolean {
  const path = join(directory, LOCK_FILE);
  const aside = join(directory, `.tmp-${process.pid}-stale-${randomBytes(6).toString("hex")}`);
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  const moved = parseOwner(readFileSync(aside, "utf8"));
  if (moved?.nonce === stale.nonce) {
    unlinkSync(aside);
    fsyncDirectory(directory);
    return true;
  }
  // Someone else's fresh lock: restore it unless yet another one appeared meanwhile.
  try {
    createFileExclusive(path, readFileSync(aside));
  } finally {
    unlinkSync(aside);
  }
  return false;
}
