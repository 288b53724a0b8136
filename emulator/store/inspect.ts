/**
 * A read-only look at a token directory, for `hsmkit token list` and `info`: what each token.json
 * says, how many object files there are, and who holds the lock. It takes no lock — every file is
 * replaced by an atomic rename, so a reader sees a whole old or a whole new version — and it
 * decrypts nothing, so it needs no PIN.
 */
import { resolve } from "node:path";
import { readFileSync, statSync } from "node:fs";
import { MAX_PIN_FAILURES, type PinRecord } from "../token.js";
import { TokenFileError } from "./errors.js";
import { slotDirectory, storedHandles, storedSlots, tokenFile } from "./layout.js";
import { readLockOwner, type LockOwner } from "./lock.js";
import { decodeTokenRecord } from "./token-record.js";

export interface PinSummary {
  initialized: boolean;
  /** Consecutive wrong PINs so far. */
  failures: number;
  locked: boolean;
  kdf: { name: "scrypt"; N: number; r: number; p: number } | null;
}

export interface TokenSummary {
  slot: number;
  path: string;
  serial: string;
  label: string;
  initializedAt: string;
  tokenId: string;
  /** Object files on disk (their contents need a PIN). */
  objectFiles: number;
  soPin: PinSummary;
  userPin: PinSummary;
}

export interface UnreadableToken {
  slot: number;
  path: string;
  error: string;
}

export interface DirectorySummary {
  path: string;
  exists: boolean;
  /** The lock's holder; null when nobody holds it, "unreadable" for a lock file that is not ours. */
  owner: LockOwner | "unreadable" | null;
  tokens: TokenSummary[];
  /** Slot directories whose token.json does not read (shown, never hidden). */
  unreadable: UnreadableToken[];
}

function pin(record: PinRecord | null): PinSummary {
  if (record === null) return { initialized: false, failures: 0, locked: false, kdf: null };
  return {
    initialized: true,
    failures: record.failures,
    locked: record.failures >= MAX_PIN_FAILURES,
    kdf: { name: "scrypt", ...record.kdf },
  };
}

/** Summarizes the directory at `path` without locking it or decrypting anything. */
export function inspectTokenDirectory(path: string): DirectorySummary {
  const root = resolve(path);
  let exists = true;
  try {
    if (!statSync(root).isDirectory()) throw new TokenFileError(root, "not a directory");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    exists = false;
  }
  const lock = exists ? readLockOwner(root) : undefined;
  const summary: DirectorySummary = {
    path: root, exists, owner: lock === undefined ? null : lock === null ? "unreadable" : lock, tokens: [], unreadable: [],
  };
  if (!exists) return summary;
  for (const slot of storedSlots(root)) {
    const file = tokenFile(root, slot);
    try {
      const record = decodeTokenRecord(readFileSync(file), file);
      summary.tokens.push({
        slot,
        path: slotDirectory(root, slot),
        serial: record.serial,
        label: record.label,
        initializedAt: record.initializedAt,
        tokenId: record.tokenId.toString("hex"),
        objectFiles: storedHandles(root, slot).length,
        soPin: pin(record.so),
        userPin: pin(record.user),
      });
    } catch (error) {
      // A slot directory being created or deleted right now has no token.json yet (or any more).
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      summary.unreadable.push({ slot, path: file, error: (error as Error).message });
    }
  }
  return summary;
}
