/**
 * A token directory: the emulator's Persistence (emulator/state.ts) over files, so token objects
 * and PINs survive restarts. Layout in layout.ts, file formats in token-record.ts and
 * object-codec.ts, durability in atomic-file.ts, ownership in lock.ts; docs/emulator-storage.md
 * tells the whole story.
 *
 * Life cycle: open() takes the directory's lock and reads every token.json — enough for
 * C_GetTokenInfo and C_Login (label, serial, flags, PIN records and failure counters). Objects are
 * sealed under keys that only a PIN unlocks, so they are read at the first login (loggedIn), or
 * are known from the start when the token was initialized in this process. Until then a restarted
 * token shows no objects, public ones included. close() drops every key and releases the lock;
 * reopen() (C_Initialize after close()) takes it again and reads the directory afresh.
 *
 * Every Persistence call writes before it returns, so a change PKCS#11 acknowledged is on disk;
 * a failed write is CKR_DEVICE_ERROR (CKR_DEVICE_MEMORY for a full disk) and the function fails.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { generateKey, type KeyHandle } from "../../src/crypto/keys.js";
import { keyUnwrapKey, keyWrapKey } from "../../src/crypto/keywrap.js";
import { randomBytes } from "../../src/crypto/random.js";
import { CkrError } from "../errors.js";
import { backfillCheckValue } from "../objects/check-value.js";
import { P11Object } from "../objects/object.js";
import { pkcs11 } from "../pkcs11.js";
import type { ModuleState, Persistence } from "../state.js";
import { DEFAULT_KDF, Token, type KdfParams } from "../token.js";
import {
  DIRECTORY_MODE, fsyncDirectory, makeDirectoryDurable, removeDirectoryDurable, removeFileDurable, sweepLeftovers, writeFileAtomic,
} from "../../src/util/atomic-file.js";
import { TokenDirectoryLockedError, TokenFileError } from "./errors.js";
import { OBJECTS_DIRECTORY, objectFile, objectsDirectory, slotDirectory, storedHandles, storedSlots, tokenFile } from "./layout.js";
import { acquireTokenDirectoryLock, type DirectoryLock } from "./lock.js";
import { ObjectFileError, openObject, sealObject, type ObjectKeys } from "./object-codec.js";
import { checkKdf, decodeTokenRecord, encodeTokenRecord, TOKEN_ID_BYTES, type TokenRecord } from "./token-record.js";

const P = pkcs11;

export interface TokenDirectoryOptions {
  /** scrypt cost of PIN records written from now on (stored records keep their own). */
  kdf?: KdfParams;
  /** Where warnings go (a stale lock taken over, an object file that does not open); default process.emitWarning. */
  warn?: (message: string, code: string) => void;
}

/** What the directory knows of one slot's token. */
interface Entry {
  slot: number;
  token: Token;
  /** As last read or written; null while the token is uninitialized. */
  record: TokenRecord | null;
  /** token.json's bytes as last read or written: an unchanged token is not rewritten. */
  written: Buffer | null;
  /** The object key, unwrapped once the token key is known. */
  objectKey: KeyHandle | null;
  /** Whether the object files have been read into token.objects. */
  loaded: boolean;
}

function defaultWarn(message: string, code: string): void {
  process.emitWarning(message, { code });
}

/** A serial number for a new token: 16 hex digits, CK_TOKEN_INFO.serialNumber's width. */
function newSerial(): string {
  return randomBytes(8).toString("hex");
}

export class TokenDirectory implements Persistence {
  private readonly entries = new Map<Token, Entry>();
  private readonly bySlot = new Map<number, Entry>();
  private highestHandle = 0;
  private readonly kdf: KdfParams;
  private readonly warn: (message: string, code: string) => void;

  private constructor(
    /** Absolute path of the directory. */
    readonly path: string,
    private lock: DirectoryLock | null,
    options: TokenDirectoryOptions,
  ) {
    this.kdf = options.kdf ?? DEFAULT_KDF;
    this.warn = options.warn ?? defaultWarn;
  }

  /**
   * Opens (creating it if needed) the token directory at `path`: takes its lock — throwing
   * TokenDirectoryLockedError, whose message names the owner, if another process or another
   * Emulator of this one has it — clears what an interrupted writer left, and reads every
   * token's metadata. A token.json that does not parse is a TokenFileError naming it.
   */
  static open(path: string, options: TokenDirectoryOptions = {}): TokenDirectory {
    if (options.kdf !== undefined) {
      const bad = checkKdf(options.kdf);
      if (bad !== undefined) throw new RangeError(`kdf: ${bad}`);
    }
    const root = resolve(path);
    const created = mkdirSync(root, { recursive: true, mode: DIRECTORY_MODE });
    // New directories are durable once each parent of one is synced.
    for (let dir = root; created !== undefined && dir.length >= created.length; dir = dirname(dir)) fsyncDirectory(dirname(dir));
    const warn = options.warn ?? defaultWarn;
    const lock = acquireTokenDirectoryLock(root, { warn: (message) => warn(message, "HSMKIT_STALE_LOCK") });
    const directory = new TokenDirectory(root, lock, options);
    try {
      directory.scan();
    } catch (error) {
      lock.release();
      throw error;
    }
    return directory;
  }

  /** Slots the directory holds tokens for: one more than the highest stored slot number (0 if none). */
  get slotCount(): number {
    let count = 0;
    for (const entry of this.bySlot.values()) if (entry.record !== null) count = Math.max(count, entry.slot + 1);
    return count;
  }

  /** Whether the lock is held (from open() to close(), and again after reopen()). */
  get isOpen(): boolean {
    return this.lock?.isHeld ?? false;
  }

  /** The token of `slot`: the stored one, or a new uninitialized token (stored once C_InitToken runs). */
  token(slot: number): Token {
    const known = this.bySlot.get(slot);
    if (known !== undefined) return known.token;
    const token = new Token(newSerial(), this.kdf);
    this.register({ slot, token, record: null, written: null, objectKey: null, loaded: true });
    return token;
  }

  /** Makes this directory `state`'s persistence; new object handles start above the stored ones. */
  attach(state: ModuleState): void {
    state.persistence = this;
    state.reserveObjectHandles(this.highestHandle);
  }

  /** Cleanses every key and loaded object, and releases the lock. Idempotent. */
  close(): void {
    for (const entry of this.entries.values()) this.forget(entry);
    this.lock?.release();
    this.lock = null;
  }

  /**
   * After close(): takes the lock again and reads the directory afresh into `state`'s slots
   * (C_Initialize after close(), as a real module reads its store when loaded). A held lock is
   * CKR_DEVICE_ERROR, its owner named in a process warning (code HSMKIT_TOKEN_DIR_LOCKED). No-op
   * while open.
   */
  reopen(state: ModuleState): void {
    if (this.isOpen) return;
    try {
      this.lock = acquireTokenDirectoryLock(this.path, { warn: (message) => this.warn(message, "HSMKIT_STALE_LOCK") });
    } catch (error) {
      if (!(error instanceof TokenDirectoryLockedError)) throw error;
      this.warn(error.message, "HSMKIT_TOKEN_DIR_LOCKED");
      throw new CkrError(P.CKR_DEVICE_ERROR, error.message);
    }
    this.entries.clear();
    this.bySlot.clear();
    this.highestHandle = 0;
    try {
      this.scan();
    } catch (error) {
      this.close();
      throw new CkrError(P.CKR_DEVICE_ERROR, (error as Error).message);
    }
    for (const slot of state.slots) {
      const token = this.token(slot.id);
      if (slot.token !== null) slot.token = token;
      else slot.removed = token;
    }
    this.attach(state);
  }

  /**
   * Removes the token of `slot` and its objects from disk (`hsmkit token delete`). Not for a
   * directory attached to a running emulator.
   */
  deleteToken(slot: number): void {
    this.checkOpen();
    const entry = this.bySlot.get(slot);
    if (entry === undefined || entry.record === null) throw new Error(`slot ${slot} of ${this.path} holds no initialized token`);
    this.forget(entry);
    this.entries.delete(entry.token);
    this.bySlot.delete(slot);
    removeDirectoryDurable(slotDirectory(this.path, slot));
  }

  // Persistence (emulator/state.ts)

  /**
   * C_InitToken (or an Emulator slot's `token` option): a new token id and object key, no objects.
   * Token.initialize has already replaced the token in memory; if token.json cannot be written,
   * the token goes back to what the disk holds (see revert), so a failed C_InitToken changes nothing.
   */
  tokenInitialized(token: Token): void {
    const entry = this.entry(token);
    try {
      this.initialize(entry);
    } catch (error) {
      this.revert(entry);
      throw error;
    }
  }

  private initialize(entry: Entry): void {
    const token = entry.token;
    this.io("initializing the token", () => {
      const tokenKey = token.tokenKey;
      if (tokenKey === null || token.so === null) throw new CkrError(P.CKR_GENERAL_ERROR, "an initialized token has a token key and an SO PIN");
      const objectKey = generateKey(32);
      try {
        const record: TokenRecord = {
          serial: token.serialNumber,
          label: token.label,
          initializedAt: new Date().toISOString(),
          tokenId: randomBytes(TOKEN_ID_BYTES),
          wrappedObjectKey: keyWrapKey(tokenKey, "kwp", objectKey),
          so: token.so,
          user: token.user,
        };
        makeDirectoryDurable(slotDirectory(this.path, entry.slot));
        makeDirectoryDurable(objectsDirectory(this.path, entry.slot));
        this.writeRecord(entry, record);
      } catch (error) {
        objectKey.destroy();
        throw error;
      }
      entry.objectKey?.destroy();
      entry.objectKey = objectKey;
      entry.loaded = true;
      // Objects of the previous initialization: their token id no longer matches, so they could
      // never open again; a crash before this point leaves them for ensureLoaded to remove.
      for (const handle of storedHandles(this.path, entry.slot)) removeFileDurable(objectFile(this.path, entry.slot, handle));
    });
  }

  /** Label, PIN records or failure counters changed. */
  tokenChanged(token: Token): void {
    const entry = this.entry(token);
    if (entry.record === null || !token.initialized || token.so === null) return;
    const record: TokenRecord = { ...entry.record, label: token.label, so: token.so, user: token.user };
    this.io("saving the token", () => this.writeRecord(entry, record));
  }

  /** A login made the token key known: the objects can be read now. */
  loggedIn(token: Token): void {
    this.ensureLoaded(this.entry(token));
  }

  objectSaved(token: Token, object: P11Object): void {
    const entry = this.entry(token);
    this.io("saving an object", () => {
      const file = sealObject(object, this.keys(entry));
      writeFileAtomic(objectFile(this.path, entry.slot, object.handle), file);
      this.highestHandle = Math.max(this.highestHandle, object.handle);
    });
  }

  objectDeleted(token: Token, handle: number): void {
    const entry = this.entry(token);
    this.io("deleting an object", () => {
      removeFileDurable(objectFile(this.path, entry.slot, handle));
    });
  }

  // Internals

  private register(entry: Entry): void {
    this.entries.set(entry.token, entry);
    this.bySlot.set(entry.slot, entry);
  }

  private entry(token: Token): Entry {
    const entry = this.entries.get(token);
    if (entry === undefined) throw new CkrError(P.CKR_GENERAL_ERROR, "token does not belong to this token directory");
    return entry;
  }

  private checkOpen(): void {
    if (!this.isOpen) throw new CkrError(P.CKR_DEVICE_ERROR, `token directory ${this.path} is closed`);
  }

  /** Runs a storage step; file-system failures become CKR_DEVICE_MEMORY (disk full) or CKR_DEVICE_ERROR. */
  private io<T>(what: string, body: () => T): T {
    this.checkOpen();
    try {
      return body();
    } catch (error) {
      if (error instanceof CkrError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      const rv = code === "ENOSPC" || code === "EDQUOT" ? P.CKR_DEVICE_MEMORY : P.CKR_DEVICE_ERROR;
      throw new CkrError(rv, `${what} in ${this.path}: ${(error as Error).message}`);
    }
  }

  /** Reads every slot directory (after taking the lock). */
  private scan(): void {
    sweepLeftovers(this.path);
    for (const slot of storedSlots(this.path)) {
      const directory = slotDirectory(this.path, slot);
      // Only the lock's owner writes in a slot's directories, so every temporary there is
      // abandoned, whatever its pid: after a restart that pid often names a live process (a
      // container's server is pid 1 every time). The root keeps the pid check, for a contender
      // for the lock may be writing its candidate file there now.
      sweepLeftovers(directory, { livePids: false });
      sweepLeftovers(objectsDirectory(this.path, slot), { livePids: false });
      const path = tokenFile(this.path, slot);
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        // The first C_InitToken creates the directories, then token.json: a crash in between
        // leaves them empty, and they are nothing yet. Anything else there is not ours to remove.
        const objects = objectsDirectory(this.path, slot);
        const empty = readdirSync(directory).every((name) => name === OBJECTS_DIRECTORY) && (!existsSync(objects) || readdirSync(objects).length === 0);
        if (!empty) throw new TokenFileError(path, "missing, but the slot directory holds other files");
        removeDirectoryDurable(directory);
        continue;
      }
      const record = decodeTokenRecord(bytes, path);
      const token = new Token(record.serial, this.kdf);
      token.label = record.label;
      token.so = record.so;
      token.user = record.user;
      token.initialized = true;
      this.register({ slot, token, record, written: bytes, objectKey: null, loaded: false });
      for (const handle of storedHandles(this.path, slot)) this.highestHandle = Math.max(this.highestHandle, handle);
    }
  }

  private writeRecord(entry: Entry, record: TokenRecord): void {
    const bytes = encodeTokenRecord(record);
    if (entry.written === null || !entry.written.equals(bytes)) {
      writeFileAtomic(tokenFile(this.path, entry.slot), bytes);
      entry.written = bytes;
    }
    entry.record = record;
  }

  /** The keys objects are sealed with; needs the token key (a login, or an initialization in this process). */
  private keys(entry: Entry): ObjectKeys {
    const tokenKey = entry.token.tokenKey;
    const record = entry.record;
    if (record === null) throw new CkrError(P.CKR_GENERAL_ERROR, "the token is not initialized");
    if (tokenKey === null) throw new CkrError(P.CKR_USER_NOT_LOGGED_IN, "token objects are sealed under the token key, available after a login");
    if (entry.objectKey === null) {
      try {
        entry.objectKey = keyUnwrapKey(tokenKey, "kwp", record.wrappedObjectKey);
      } catch {
        throw new CkrError(P.CKR_DEVICE_ERROR, `${tokenFile(this.path, entry.slot)}: objectKey does not unwrap under the token key`);
      }
    }
    return { tokenId: record.tokenId, objectKey: entry.objectKey, tokenKey };
  }

  /**
   * Reads the token's object files into token.objects, once the token key is known. Files of an
   * earlier initialization are removed; files that fail to open are reported (a process warning,
   * code HSMKIT_OBJECT_UNREADABLE), left in place for inspection, and skipped.
   */
  private ensureLoaded(entry: Entry): void {
    if (entry.loaded || entry.record === null || entry.token.tokenKey === null) return;
    this.io("reading the token's objects", () => {
      const keys = this.keys(entry);
      for (const handle of storedHandles(this.path, entry.slot)) {
        if (entry.token.objects.has(handle)) continue;
        const path = objectFile(this.path, entry.slot, handle);
        let file: Buffer;
        try {
          file = readFileSync(path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
          throw error;
        }
        try {
          const opened = openObject(file, handle, keys);
          backfillCheckValue(opened.attrs, opened.material);
          entry.token.objects.set(handle, new P11Object(handle, opened.attrs, opened.material, undefined));
        } catch (error) {
          if (!(error instanceof ObjectFileError)) throw error;
          if (error.reason === "foreign") {
            removeFileDurable(path);
            continue;
          }
          this.warn(`hsmkit: object file ${path} ${error.message}; it is left in place and not loaded`, "HSMKIT_OBJECT_UNREADABLE");
        }
      }
      entry.loaded = true;
    });
  }

  /**
   * Makes the token what its last written record says, as if just read from disk: the new PIN
   * records of a C_InitToken that did not reach the disk must not stay in memory, where the next
   * tokenChanged would write them beside the old token id and object key — an object key then
   * wrapped under a token key no PIN unlocks, and every stored object lost.
   */
  private revert(entry: Entry): void {
    const token = entry.token;
    const record = entry.record;
    this.forget(entry);
    token.initialized = record !== null;
    token.label = record?.label ?? "";
    token.so = record?.so ?? null;
    token.user = record?.user ?? null;
  }

  /** Cleanses what the entry holds in memory: object key, token key, loaded objects. */
  private forget(entry: Entry): void {
    entry.objectKey?.destroy();
    entry.objectKey = null;
    for (const object of entry.token.objects.values()) object.destroy();
    entry.token.objects.clear();
    entry.token.tokenKey?.destroy();
    entry.token.tokenKey = null;
    entry.loaded = entry.record === null;
  }
}
