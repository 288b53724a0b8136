/**
 * Durable file operations (the emulator's token directories, lock files). Every change is all-or-nothing
 * on disk:
 *
 * - a file is replaced by writing a temporary file in the same directory, fsync'ing it,
 *   renaming it over the target (rename(2) is atomic within a file system), then fsync'ing the
 *   directory so the new name itself survives a power loss;
 * - a file is removed by unlink + fsync of the directory;
 * - a whole directory is removed by renaming it to a `.deleted-*` name first (atomic), so a
 *   crash part-way through the recursive removal leaves garbage that `sweepLeftovers` clears,
 *   never a half-present token.
 *
 * Temporary and deleted names start with "." so they never look like token or object files.
 * Files are created with mode 0600 and directories with 0700 (SoftHSMv2 uses umask 0077).
 */
import {
  closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

export const FILE_MODE = 0o600;
export const DIRECTORY_MODE = 0o700;
const TEMPORARY_PREFIX = ".tmp-";
const DELETED_PREFIX = ".deleted-";

/** A name no other writer uses: pid, a random part, and the target's name for debugging. */
function temporaryName(target: string): string {
  return join(dirname(target), `${TEMPORARY_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}-${basename(target)}`);
}

/**
 * fsync(2) on a directory, which makes the entries created, renamed or removed in it durable.
 * Windows cannot open a directory for this (its rename is durable through the journal), so
 * there the call is skipped.
 */
export function fsyncDirectory(path: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes all of `data` to a new file at `path` (which must not exist) and fsyncs it. */
function writeNewFile(path: string, data: Uint8Array): void {
  const fd = openSync(path, "wx", FILE_MODE);
  try {
    let offset = 0;
    while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces (or creates) `path` with `data` atomically and durably; see the file comment. */
export function writeFileAtomic(path: string, data: Uint8Array): void {
  const temporary = temporaryName(path);
  try {
    writeNewFile(temporary, data);
    renameSync(temporary, path);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      /* it may not exist; the original error is what matters */
    }
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/**
 * Creates `path` with `data` only if it does not exist yet, atomically: the content is written
 * and fsync'ed under a temporary name, then hard-linked to `path` (link(2) fails with EEXIST
 * rather than replace), so `path` is never seen empty or half-written. Returns false when
 * `path` already exists. File systems without hard links fall back to O_EXCL creation.
 */
export function createFileExclusive(path: string, data: Uint8Array): boolean {
  const temporary = temporaryName(path);
  writeNewFile(temporary, data);
  try {
    linkSync(temporary, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return false;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error;
    try {
      writeNewFile(path, data);
    } catch (fallbackError) {
      if ((fallbackError as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw fallbackError;
    }
  } finally {
    try {
      unlinkSync(temporary);
    } catch {
      /* already gone */
    }
  }
  fsyncDirectory(dirname(path));
  return true;
}

/** Removes `path` durably; a file that is already gone is not an error. Returns whether it existed. */
export function removeFileDurable(path: string): boolean {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  fsyncDirectory(dirname(path));
  return true;
}

/** Creates directory `path` (mode 0700) if absent, durably: the parent is fsync'ed after. */
export function makeDirectoryDurable(path: string): void {
  try {
    mkdirSync(path, { mode: DIRECTORY_MODE });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return;
    throw error;
  }
  fsyncDirectory(dirname(path));
}

/**
 * Removes the directory `path` and everything in it. The directory is first renamed to a
 * `.deleted-*` sibling and the parent fsync'ed — that rename is the moment of deletion — and
 * only then removed recursively.
 */
export function removeDirectoryDurable(path: string): void {
  const doomed = join(dirname(path), `${DELETED_PREFIX}${randomBytes(6).toString("hex")}-${basename(path)}`);
  renameSync(path, doomed);
  fsyncDirectory(dirname(path));
  rmSync(doomed, { recursive: true, force: true });
}

/**
 * Removes what an interrupted writer left in `directory`: temporary files of writeFileAtomic
 * and createFileExclusive whose writing process is gone (the pid is part of the name, so a
 * contender for the lock writing its candidate file right now is left alone), and directories
 * renamed by removeDirectoryDurable. Only the owner of the token directory's lock calls this.
 * With `livePids: false` every temporary goes, whatever its pid: for a directory only the lock's
 * owner writes, where a pid that is alive after a restart is a reused one, not a writer.
 */
export function sweepLeftovers(directory: string, options: { livePids?: boolean } = {}): void {
  const keepLive = options.livePids !== false;
  let entries: string[];
  try {
    entries = readdirSync(directory);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  for (const name of entries) {
    const abandoned =
      name.startsWith(DELETED_PREFIX) || (name.startsWith(TEMPORARY_PREFIX) && !(keepLive && writerAlive(name.slice(TEMPORARY_PREFIX.length))));
    if (abandoned) rmSync(join(directory, name), { recursive: true, force: true });
  }
}

/** Whether the process whose pid starts `rest` ("<pid>-...") still runs (this one counts as running). */
function writerAlive(rest: string): boolean {
  const pid = Number.parseInt(rest, 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether `name` is one of the leftovers above (listings skip them). */
export function isLeftover(name: string): boolean {
  return name.startsWith(TEMPORARY_PREFIX) || name.startsWith(DELETED_PREFIX);
}
