/**
 * Where things live in a token directory (docs/emulator-storage.md draws the whole tree):
 *
 *   <tokenDir>/lock                          the owner (lock.ts)
 *   <tokenDir>/slot-<N>/token.json           token N's metadata and PIN records (token-record.ts)
 *   <tokenDir>/slot-<N>/objects/<H>.object   token object with handle H, sealed (object-codec.ts)
 *
 * A slot directory exists exactly when its token is initialized; slots without one hold an
 * uninitialized token. Directories are named by slot number so slot ids stay stable across
 * restarts; a token's serial number and label are in its token.json.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { isLeftover } from "../../src/util/atomic-file.js";

export const TOKEN_FILE = "token.json";
export const OBJECTS_DIRECTORY = "objects";
export const OBJECT_SUFFIX = ".object";

/** The largest slot number accepted in a directory name (CK_SLOT_ID is a CK_ULONG; this keeps listings sane). */
export const MAX_SLOT = 0xffff;

const SLOT_NAME = /^slot-(0|[1-9][0-9]{0,4})$/;
const OBJECT_NAME = /^(0|[1-9][0-9]{0,15})\.object$/;

export function slotDirectory(root: string, slot: number): string {
  return join(root, `slot-${slot}`);
}

export function tokenFile(root: string, slot: number): string {
  return join(slotDirectory(root, slot), TOKEN_FILE);
}

export function objectsDirectory(root: string, slot: number): string {
  return join(slotDirectory(root, slot), OBJECTS_DIRECTORY);
}

export function objectFile(root: string, slot: number, handle: number): string {
  return join(objectsDirectory(root, slot), `${handle}${OBJECT_SUFFIX}`);
}

function list(directory: string): string[] {
  try {
    return readdirSync(directory).filter((name) => !isLeftover(name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

/** Slot numbers that have a directory, ascending. */
export function storedSlots(root: string): number[] {
  const slots: number[] = [];
  for (const name of list(root)) {
    const match = SLOT_NAME.exec(name);
    if (match !== null && Number(match[1]) <= MAX_SLOT) slots.push(Number(match[1]));
  }
  return slots.sort((a, b) => a - b);
}

/** Handles of the object files of a slot, ascending. */
export function storedHandles(root: string, slot: number): number[] {
  const handles: number[] = [];
  for (const name of list(objectsDirectory(root, slot))) {
    const match = OBJECT_NAME.exec(name);
    if (match !== null && Number.isSafeInteger(Number(match[1]))) handles.push(Number(match[1]));
  }
  return handles.sort((a, b) => a - b);
}
