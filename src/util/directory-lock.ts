/**
 * One process owns a directory at a time: the owner holds a small JSON lock file in it naming
 * the owner (pid, host, thread, start time, command). The emulator's token directories and the
 * KMS store use it; each says in its own words why, and turns a refusal into its own error.
 *
 * - Acquire: the lock file is created complete or not at all (written under a temporary name,
 *   fsync'ed, then link(2)ed into place, which fails if the lock exists — an O_EXCL create that
 *   can never leave an empty file behind).
 * - Stale: an owner on this host whose process is gone (no such pid, or a pid now used by a
 *   process that started later — Linux records the start time in /proc) is taken over, with a
 *   warning naming the previous owner. Owners on another host cannot be checked and are never
 *   taken over.
 * - Release: explicitly, or at process exit. A process killed with SIGKILL leaves the lock
 *   behind; it is stale from then on.
 *
 * Limit: two processes taking over the same stale lock at the same instant are separated by
 * renaming the stale file away (only one rename succeeds) and checking what was renamed; a window
 * of a few system calls remains in which both could believe they won. The lock guards against
 * accidents (a second server, a CLI run against a live directory), not a hostile local user.
 */
import { readFileSync, renameSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { threadId } from "node:worker_threads";
import { createFileExclusive, fsyncDirectory } from "./atomic-file.js";

/** Who holds a directory: the lock file's content. */
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

/** Why a lock was not taken, for the caller to turn into its own error. */
export interface LockRefusal {
  /**
   * - unreadable: a file is there but is not an hsmkit lock;
   * - this-process: this process already holds it;
   * - held: a live process on this host holds it;
   * - other-host: a process on another host holds it (cannot be checked, so never taken over);
   * - contended: it changed hands repeatedly while we tried.
   */
  reason: "unreadable" | "this-process" | "held" | "other-host" | "contended";
  /** The lock file. */
  path: string;
  /** The owner, when the lock file could be read. */
  owner: LockOwner | null;
  /** The owner in words: "process 123 on host h since … (command)", or "" when unknown. */
  described: string;
}

export interface LockOptions {
  /** The lock file's name inside the directory. */
  fileName: string;
  /** Builds the error thrown when the lock cannot be taken. */
  refuse: (refusal: LockRefusal) => Error;
  /** Reports a stale lock taken over (message names the directory and previous owner). */
  warn: (previous: LockOwner, described: string) => void;
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

/** An owner in words, for messages. */
export function describeOwner(owner: LockOwner): string {
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
export function readLockOwner(directory: string, fileName: string): LockOwner | null | undefined {
  let text: string;
  try {
    text = readFileSync(join(directory, fileName), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  return parseOwner(text);
}

type Verdict = "this-process" | "alive" | "stale" | "other-host";

function judge(owner: LockOwner): Verdict {
  if (owner.hostname !== hostname()) return "other-host";
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

export class DirectoryLock {
  private released = false;

  private constructor(
    readonly directory: string,
    readonly fileName: string,
    /** This acquisition, as written in the lock file. */
    readonly owner: LockOwner,
  ) {}

  /** Takes the lock of `directory` (which must exist), taking over a stale one; else throws options.refuse(…). */
  static acquire(directory: string, options: LockOptions): DirectoryLock {
    const path = join(directory, options.fileName);
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
    const refusal = (reason: LockRefusal["reason"], current: LockOwner | null): Error =>
      options.refuse({ reason, path, owner: current, described: current ? describeOwner(current) : "" });
    for (let attempt = 0; attempt < 5; attempt++) {
      if (createFileExclusive(path, content)) {
        const lock = new DirectoryLock(directory, options.fileName, owner);
        held.add(lock);
        if (!exitHookInstalled) {
          exitHookInstalled = true;
          process.once("exit", () => {
            for (const each of [...held]) each.release();
          });
        }
        return lock;
      }
      const current = readLockOwner(directory, options.fileName);
      if (current === undefined) continue; // released meanwhile: try again
      if (current === null) throw refusal("unreadable", null);
      const verdict = judge(current);
      if (verdict === "this-process") throw refusal("this-process", current);
      if (verdict === "alive") throw refusal("held", current);
      if (verdict === "other-host") throw refusal("other-host", current);
      if (takeOver(path, current)) options.warn(current, describeOwner(current));
    }
    throw refusal("contended", readLockOwner(directory, options.fileName) ?? null);
  }

  get isHeld(): boolean {
    return !this.released;
  }

  /** Removes the lock file if it is still this acquisition's. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    try {
      if (readLockOwner(this.directory, this.fileName)?.nonce !== this.owner.nonce) return;
      unlinkSync(join(this.directory, this.fileName));
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
function takeOver(path: string, stale: LockOwner): boolean {
  // A temporary name (atomic-file's leftover convention), so an interrupted take-over is swept.
  const aside = join(dirname(path), `.tmp-${process.pid}-stale-${randomBytes(6).toString("hex")}`);
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  const moved = parseOwner(readFileSync(aside, "utf8"));
  if (moved?.nonce === stale.nonce) {
    unlinkSync(aside);
    fsyncDirectory(dirname(path));
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
