/**
 * The KMS backend over graphene-pk11 (the contract is in backend.ts). One implementation for the
 * emulator (`module: new Emulator(…)`) and for any PKCS#11 library (`module: "/path/to/lib.so"`),
 * with the token chosen by label and the user PIN from configuration.
 *
 * Token objects it keeps (created on first start when `createKeys` is true, found by label after;
 * a found object must be a secret key of the right type that is private, sensitive and not
 * extractable, or the backend refuses to start rather than use a key that may exist outside the
 * token or that works without the PIN):
 *
 * | label (default)        | type                    | attributes                                             |
 * |------------------------|-------------------------|--------------------------------------------------------|
 * | `hsmkit-kms-root`      | CKK_AES, 32 bytes       | token, private, sensitive, ¬extractable, ¬modifiable, wrap, unwrap only |
 * | `hsmkit-kms-audit-mac` | CKK_GENERIC_SECRET, 32 B | token, private, sensitive, ¬extractable, ¬modifiable, sign, verify only |
 *
 * Session objects: a version being created (AES-256, sensitive, extractable only to be wrapped, no
 * usage) lives for one C_GenerateKey–C_WrapKey–C_DestroyObject sequence; a version in use is
 * unwrapped (AES-KWP) into an object that is sensitive, not extractable and encrypt/decrypt only,
 * owned by the pool's owner session and held in the LRU handle cache.
 *
 * Recovery: a failure that says the backend's view of the token is stale (session closed or
 * invalid, not logged in, handle invalid, operation state confused, token removed) drops every
 * session and cached handle, reconnects (slot by label, login, token keys by label) and retries the
 * call once; if that fails too, the error is reported and the next call reconnects again. The
 * exception is a token that refuses the PIN when logging in again (changed meanwhile): the backend
 * never tries that PIN again, since every try counts toward locking it for everyone.
 *
 * Room in the token: real tokens hold far fewer objects than the cache's default bound (a YubiHSM 2
 * a few hundred in all; Luna and CloudHSM partitions have object and session-memory quotas). When
 * creating an object fails with CKR_DEVICE_MEMORY or CKR_HOST_MEMORY, the backend evicts cached
 * versions, lowers the cache's bound below what the token held, warns, and tries once more (see
 * makeRoom).
 */
// Imported: the global Buffer is an accessor on globalThis, and these paths read it on every call.
import { Buffer } from "node:buffer";
import { KmsError } from "../errors.js";
import {
  GCM_IV_BYTES, GCM_TAG_BYTES, MAC_BYTES, MAX_DATA_BYTES, MAX_RANDOM_BYTES, WRAPPED_VERSION_KEY_BYTES, VERSION_KEY_BYTES,
  type BackendInfo, type KmsBackend, type VersionRef,
} from "./backend.js";
import { HandleCache } from "./handle-cache.js";
import { acquireModule, type ModuleLease, type ModuleSource } from "./module-loader.js";
import { DECRYPT_REJECTED, ckrOf, graphene, isOutOfMemory, isPinRefused, isRecoverable, pkcs11, tokenError, type Key, type PKCS11, type Pkcs11AesGcm, type Pkcs11Mechanism, type Session, type Slot } from "./pkcs11.js";
import { SessionPool, UnclosedSessions } from "./session-pool.js";

const P = pkcs11;

export const DEFAULT_ROOT_KEY_LABEL = "hsmkit-kms-root";
export const DEFAULT_MAC_KEY_LABEL = "hsmkit-kms-audit-mac";
/** Worker sessions (besides the owner session). */
export const DEFAULT_SESSIONS = 4;
/** Unwrapped CMK versions kept as session objects. */
export const DEFAULT_CACHE_SIZE = 1024;
/**
 * When the token runs out of memory, the cache's bound drops to what it held less this fraction of
 * it (at least one): a margin for the objects others create meanwhile (other worker threads and
 * applications on the token, a version being created), so that the next miss does not meet the
 * same wall.
 */
const MEMORY_BACKOFF = 1 / 8;

export interface GrapheneBackendOptions {
  /** A PKCS#11 library path (e.g. /usr/lib/softhsm/libsofthsm2.so), or a pkcs11js-shaped object such as `new Emulator(…)` (which the caller keeps and closes). */
  module: ModuleSource;
  /** CKA_LABEL of the token (CK_TOKEN_INFO.label, trailing blanks ignored). */
  tokenLabel: string;
  /** The token's user PIN. Held only to log in again after the token drops its sessions. */
  pin: string;
  /** Label of the root key (default "hsmkit-kms-root"). */
  rootKeyLabel?: string;
  /** Label of the audit MAC key (default "hsmkit-kms-audit-mac"). */
  macKeyLabel?: string;
  /**
   * Create the root and MAC keys when absent (default true). With several KMS processes or worker
   * threads on one token, let one create them first (`hsmkit init`, or the main thread) and open the
   * others with false: two creators racing would each make a root key, and the backend refuses to
   * choose between two objects with one label.
   */
  createKeys?: boolean;
  /** Worker sessions, 1..64 (default 4). */
  sessions?: number;
  /**
   * Unwrapped versions kept in the token, 1..1 000 000 (default 1024). A token that runs out of
   * memory first lowers the effective bound (info().cache.capacity) and says so through `warn`.
   */
  cacheSize?: number;
  /** Operator messages (the token ran out of memory for the cache); must not throw. Default: process.emitWarning. No key material reaches them. */
  warn?: (message: string) => void;
}

/** Opens a backend: loads/initializes the module, finds the token, logs in, finds or creates the token keys. */
export function openBackend(options: GrapheneBackendOptions): KmsBackend {
  return new GrapheneBackend(options);
}

// Templates (graphene ITemplate names). Every usage flag is stated: tokens default them differently
// (SoftHSMv2 and the emulator default them to true).
const NO_USAGE = { encrypt: false, decrypt: false, wrap: false, unwrap: false, sign: false, verify: false, derive: false } as const;

const KWP = { name: P.CKM_AES_KEY_WRAP_PAD, params: null };
const HMAC = { name: P.CKM_SHA256_HMAC, params: null };
/** What decryptsSoundly seals and opens: no secret, and the same whatever the version. */
const PROBE = Buffer.from("hsmkit decrypt probe");
const PROBE_AAD = Buffer.alloc(0);
/** AES key generation as pkcs11js takes it (generateVersionKey calls the module directly). */
const AES_KEY_GEN_MECHANISM = { mechanism: P.CKM_AES_KEY_GEN };
/** HMAC as pkcs11js takes it (mac() calls the module directly, as the GCM path does). */
const HMAC_MECHANISM = { mechanism: P.CKM_SHA256_HMAC };

const VERSION_GENERATE_TEMPLATE = {
  keyType: P.CKK_AES, valueLen: VERSION_KEY_BYTES, token: false, private: true, sensitive: true, extractable: true, ...NO_USAGE,
};
const VERSION_UNWRAP_TEMPLATE = {
  class: P.CKO_SECRET_KEY, keyType: P.CKK_AES, token: false, private: true, sensitive: true, extractable: false,
  ...NO_USAGE, encrypt: true, decrypt: true,
};

/** Mechanisms the backend needs from the token, checked when it connects. */
const REQUIRED_MECHANISMS: ReadonlyArray<[number, string]> = [
  [P.CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"],
  [P.CKM_AES_GCM, "CKM_AES_GCM"],
  [P.CKM_AES_KEY_WRAP_PAD, "CKM_AES_KEY_WRAP_PAD"],
  [P.CKM_GENERIC_SECRET_KEY_GEN, "CKM_GENERIC_SECRET_KEY_GEN"],
  [P.CKM_SHA256_HMAC, "CKM_SHA256_HMAC"],
];

interface TokenKeySpec {
  role: "root key" | "MAC key";
  label: string;
  generate: { name: number; params: null };
  template: Record<string, unknown>;
  keyTypes: readonly number[];
  usage: readonly ("wrap" | "unwrap" | "sign" | "verify")[];
  minLength: number;
}

interface TokenKey {
  key: Key;
  created: boolean;
  id: string;
  neverExposed: boolean;
}

/** What a reset drops: the slot, the sessions, the token keys' handles. */
interface Connection {
  slot: Slot;
  pool: SessionPool;
  root: Key;
  macKey: Key;
}

interface CachedVersion {
  key: Key;
  wrapped: Buffer;
}

/** Broken: anything but a KmsError (those are decided outcomes, e.g. a rejected tag) may leave a session mid-operation. */
function isBroken(error: unknown): boolean {
  return !(error instanceof KmsError);
}

/**
 * CK_MECHANISM for AES-GCM with a full tag, as graphene's AesGcmParams.toCKI() builds it for
 * pkcs11js (CK_PARAMS_AES_GCM: CK_GCM_PARAMS with ulIvLen, ulIvBits, AAD and ulTagBits).
 */
function gcmMechanism(iv: Uint8Array, aad: Uint8Array): Pkcs11Mechanism {
  const ivBytes = asBuffer(iv);
  const parameter: Pkcs11AesGcm = { type: P.CK_PARAMS_AES_GCM, iv: ivBytes, ivBits: ivBytes.length * 8, aad: asBuffer(aad), tagBits: GCM_TAG_BYTES * 8 };
  return { mechanism: P.CKM_AES_GCM, parameter };
}

/** A Buffer over the same bytes (pkcs11js takes Buffers only). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Byte equality of two short arrays (wrapped keys, 40 bytes): a loop costs less than a call into Buffer.compare. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkBytes(value: unknown, name: string, min: number, max: number): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new KmsError("KMS.0308", `${name} must be a Uint8Array`);
  if (value.length < min || value.length > max) throw new KmsError("KMS.0308", `${name} must be ${min}..${max} bytes, got ${value.length}`);
}

function checkVersion(version: VersionRef): void {
  if (typeof version !== "object" || version === null || typeof version.id !== "string" || version.id.length === 0) {
    throw new KmsError("KMS.0308", "version.id must be a non-empty string");
  }
  checkBytes(version.wrapped, "version.wrapped", 0, 1024);
  if (version.wrapped.length !== WRAPPED_VERSION_KEY_BYTES) {
    // The store handed us something that cannot be a wrapped version key: a server fault, not the client's.
    throw new KmsError("KMS.0101", `version ${version.id}: wrapped key is ${version.wrapped.length} bytes, expected ${WRAPPED_VERSION_KEY_BYTES}`);
  }
}

function integer(value: number | undefined, name: string, fallback: number, min: number, max: number): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < min || n > max) throw new KmsError("KMS.0308", `${name} must be an integer ${min}..${max}, got ${String(value)}`);
  return n;
}

/** CK_TOKEN_INFO text fields are blank-padded (SoftHSMv2 pads with blanks or NULs). */
function field(text: string): string {
  return text.replace(/[\0 ]+$/u, "");
}

export class GrapheneBackend implements KmsBackend {
  private readonly lease: ModuleLease;
  /**
   * The pkcs11js-shaped object graphene wraps (the loaded library, or the emulator). The per-call
   * operations (GCM, random) call it directly with graphene's session and key handles: graphene
   * would make a parameter object, a Cipher and a copy of the input on every call, and the C_
   * calls, their arguments and their errors are the same either way.
   */
  private readonly lib: PKCS11;
  private readonly options: Required<Omit<GrapheneBackendOptions, "module">>;
  private readonly cache: HandleCache<CachedVersion>;
  /** Sessions of this backend's pools, past and present, that the token failed to close: closed again later (see UnclosedSessions). */
  private readonly unclosed = new UnclosedSessions();
  private connection: Connection | undefined;
  private closed = false;
  private unwraps = 0;
  private recoveries = 0;
  private destroyFailures = 0;
  /** Times the token ran out of memory for an object and the cache's bound was lowered (makeRoom). */
  private memoryShrinks = 0;
  /** Unwraps into a full cache since its bound last moved, while it is below cacheSize (see regrow). */
  private fullUnwraps = 0;
  /**
   * An evicted version's C_DestroyObject failed, so its object may still be in the token: the next
   * operation drops the connection (closing the owner session takes every object it made), or the
   * cache's bound would no longer bound the token's objects.
   */
  private leaked = false;
  /** Why the token refused our PIN on reconnecting; set once, every later operation fails with it without calling the token. */
  private pinRefused: string | undefined;
  private tokenInfo: BackendInfo["token"] = { label: "", manufacturer: "", model: "", serialNumber: "" };
  private rootInfo: BackendInfo["rootKey"] | undefined;
  private macInfo: BackendInfo["macKey"] | undefined;

  constructor(options: GrapheneBackendOptions) {
    if (typeof options.tokenLabel !== "string" || options.tokenLabel.length === 0 || Buffer.byteLength(options.tokenLabel) > 32) {
      throw new KmsError("KMS.0308", "tokenLabel must be 1..32 bytes");
    }
    if (typeof options.pin !== "string" || options.pin.length === 0) throw new KmsError("KMS.0308", "pin must be a non-empty string");
    this.options = {
      tokenLabel: options.tokenLabel,
      pin: options.pin,
      rootKeyLabel: options.rootKeyLabel ?? DEFAULT_ROOT_KEY_LABEL,
      macKeyLabel: options.macKeyLabel ?? DEFAULT_MAC_KEY_LABEL,
      createKeys: options.createKeys ?? true,
      sessions: integer(options.sessions, "sessions", DEFAULT_SESSIONS, 1, 64),
      cacheSize: integer(options.cacheSize, "cacheSize", DEFAULT_CACHE_SIZE, 1, 1_000_000),
      warn: options.warn ?? ((message) => process.emitWarning(message, { code: "HSMKIT_KMS" })),
    };
    this.cache = new HandleCache<CachedVersion>(this.options.cacheSize, (entry) => this.destroyObject(entry.key));
    try {
      this.lease = acquireModule(options.module);
      this.lib = this.lease.module.lib;
    } catch (error) {
      // The loader's own error may name only the first missing directory of the path, not the path configured.
      throw tokenError(error, typeof options.module === "string" ? `loading the PKCS#11 module ${options.module}` : "loading the PKCS#11 module");
    }
    try {
      this.connection = this.connect(true);
    } catch (error) {
      this.lease.release();
      throw tokenError(error, "opening the token");
    }
  }

  createVersionKey(): Buffer {
    return this.operation("creating a version key", (c) =>
      c.pool.run((session) => {
        const key = this.createObject("creating a version key", () => this.generateVersionKey(session));
        let wrapped: Buffer;
        try {
          wrapped = session.wrapKey(KWP, c.root, key);
        } finally {
          // If this throws, the operation fails and the worker session is closed, which destroys the key with it.
          key.destroy();
        }
        if (wrapped.length !== WRAPPED_VERSION_KEY_BYTES) {
          throw new KmsError("KMS.0101", `C_WrapKey returned ${wrapped.length} bytes, expected ${WRAPPED_VERSION_KEY_BYTES}`);
        }
        return Buffer.from(wrapped);
      }, isBroken));
  }

  /**
   * C_GenerateKey of a version being created, as graphene's Session.generateKey makes it but without
   * the C_GetAttributeValue (CKA_CLASS) that follows there: when that read failed, graphene threw
   * with the key made and its handle lost, left in a worker session that stays open (and for a
   * memory failure, createObject went on to make a second key).
   */
  private generateVersionKey(session: Session): Key {
    const template = graphene.Template.toPkcs11({ ...VERSION_GENERATE_TEMPLATE, class: P.CKO_SECRET_KEY });
    return new graphene.Key(this.lib.C_GenerateKey(session.handle, AES_KEY_GEN_MECHANISM, template), session, this.lib);
  }

  encrypt(version: VersionRef, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Buffer {
    checkVersion(version);
    checkBytes(iv, "iv", GCM_IV_BYTES, GCM_IV_BYTES);
    checkBytes(aad, "aad", 0, MAX_DATA_BYTES);
    checkBytes(plaintext, "plaintext", 1, MAX_DATA_BYTES);
    const length = plaintext.length + GCM_TAG_BYTES;
    if (out !== undefined) checkBytes(out, "out", length, Number.MAX_SAFE_INTEGER);
    return this.operation("encrypting", (c) => {
      const key = this.versionKey(c, version);
      const session = c.pool.take();
      let healthy = true;
      try {
        // Written in full before it is returned: no need for zeroed memory.
        const target = out === undefined ? Buffer.allocUnsafe(length) : asBuffer(out);
        this.lib.C_EncryptInit(session.handle, gcmMechanism(iv, aad), key.handle);
        const sealed = this.lib.C_Encrypt(session.handle, asBuffer(plaintext), target);
        if (sealed.length !== length) {
          throw new KmsError("KMS.0101", `C_Encrypt (AES-GCM) returned ${sealed.length} bytes for ${plaintext.length}`);
        }
        return sealed;
      } catch (error) {
        healthy = !isBroken(error);
        throw error;
      } finally {
        c.pool.give(session, healthy);
      }
    });
  }

  decrypt(version: VersionRef, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer {
    checkVersion(version);
    checkBytes(iv, "iv", GCM_IV_BYTES, GCM_IV_BYTES);
    checkBytes(aad, "aad", 0, MAX_DATA_BYTES);
    checkBytes(sealed, "sealed", 0, MAX_DATA_BYTES + GCM_TAG_BYTES);
    if (sealed.length <= GCM_TAG_BYTES) throw new KmsError("KMS.2201", `sealed data of ${sealed.length} bytes is shorter than a tag and one byte`);
    return this.operation("decrypting", (c) => {
      const key = this.versionKey(c, version);
      const session = c.pool.take();
      let healthy = true;
      try {
        this.lib.C_DecryptInit(session.handle, gcmMechanism(iv, aad), key.handle);
        // SoftHSMv2 wants room for the whole input (tag included) before it will decrypt.
        const out = Buffer.allocUnsafe(sealed.length);
        try {
          return this.lib.C_Decrypt(session.handle, asBuffer(sealed), out);
        } catch (error) {
          out.fill(0);
          const failure = ckrOf(error);
          if (failure !== undefined && (DECRYPT_REJECTED.has(failure.rv) || (failure.rv === P.CKR_GENERAL_ERROR && this.decryptsSoundly(session, key)))) {
            throw new KmsError("KMS.2201", "AES-GCM authentication failed", { cause: error });
          }
          throw error;
        }
      } catch (error) {
        healthy = !isBroken(error);
        throw error;
      } finally {
        c.pool.give(session, healthy);
      }
    });
  }

  /**
   * Whether the token, on `session` and under `key`, seals and opens a probe right now. Asked only
   * after C_Decrypt answered CKR_GENERAL_ERROR, which SoftHSMv2 returns for a GCM tag that does not
   * verify (measured, 2.6.1) and any token returns for a fault of its own: a sound round trip says
   * the ciphertext was refused (the opaque KMS.2201), a failed one that the token is at fault
   * (KMS.0101), so an outage is not reported as bad input. Every rejected ciphertext takes the same
   * path, so the answer tells one kind of bad ciphertext from another no more than before. The
   * probe's IV is fresh from the token like every seal's, and its ciphertext never leaves this
   * function, so no one could see two messages under one IV even if the draw repeated one.
   */
  private decryptsSoundly(session: Session, key: Key): boolean {
    try {
      const mechanism = gcmMechanism(this.lib.C_GenerateRandom(session.handle, Buffer.alloc(GCM_IV_BYTES)), PROBE_AAD);
      this.lib.C_EncryptInit(session.handle, mechanism, key.handle);
      const sealed = this.lib.C_Encrypt(session.handle, PROBE, Buffer.alloc(PROBE.length + GCM_TAG_BYTES));
      this.lib.C_DecryptInit(session.handle, mechanism, key.handle);
      return this.lib.C_Decrypt(session.handle, sealed, Buffer.alloc(sealed.length)).equals(PROBE);
    } catch {
      return false;
    }
  }

  destroyVersion(id: string): void {
    this.checkOpen();
    this.cache.delete(id);
  }

  random(length: number): Buffer {
    if (!Number.isInteger(length) || length < 1 || length > MAX_RANDOM_BYTES) {
      throw new KmsError("KMS.0308", `random length must be an integer 1..${MAX_RANDOM_BYTES}, got ${String(length)}`);
    }
    return this.operation("generating random bytes", (c) => {
      const session = c.pool.take();
      let healthy = true;
      try {
        return this.lib.C_GenerateRandom(session.handle, Buffer.allocUnsafe(length));
      } catch (error) {
        healthy = !isBroken(error);
        throw error;
      } finally {
        c.pool.give(session, healthy);
      }
    });
  }

  mac(data: Uint8Array): Buffer {
    checkBytes(data, "data", 0, MAX_DATA_BYTES);
    return this.operation("computing a MAC", (c) =>
      c.pool.run((session) => {
        this.lib.C_SignInit(session.handle, HMAC_MECHANISM, c.macKey.handle);
        // A buffer larger than the tag: a token that wanted more would say CKR_BUFFER_TOO_SMALL, not truncate.
        const out = Buffer.alloc(2 * MAC_BYTES);
        // pkcs11js passes an empty Buffer as a NULL pointer, which SoftHSMv2's C_Sign refuses (CKR_ARGUMENTS_BAD): empty input goes straight to C_SignFinal.
        const tag = data.length === 0 ? this.lib.C_SignFinal(session.handle, out) : this.lib.C_Sign(session.handle, asBuffer(data), out);
        if (tag.length !== MAC_BYTES) throw new KmsError("KMS.0101", `C_Sign (HMAC-SHA256) returned ${tag.length} bytes`);
        return Buffer.from(tag);
      }, isBroken));
  }

  verifyMac(data: Uint8Array, mac: Uint8Array): boolean {
    checkBytes(data, "data", 0, MAX_DATA_BYTES);
    checkBytes(mac, "mac", 0, MAX_DATA_BYTES);
    if (mac.length !== MAC_BYTES) return false;
    // graphene's Verify answers false for CKR_SIGNATURE_INVALID and throws anything else.
    return this.operation("verifying a MAC", (c) =>
      c.pool.run((session) => {
        const verifier = session.createVerify(HMAC, c.macKey);
        return data.length === 0 ? verifier.final(asBuffer(mac)) : verifier.once(asBuffer(data), asBuffer(mac));
      }, isBroken));
  }

  info(): BackendInfo {
    this.checkOpen();
    const module = this.lease.module;
    const version = module.libraryVersion;
    return {
      module: {
        source: this.lease.source,
        manufacturer: field(module.manufacturerID),
        description: field(module.libraryDescription),
        version: `${version.major}.${version.minor}`,
      },
      token: { ...this.tokenInfo },
      rootKey: { ...this.rootInfo! },
      macKey: { ...this.macInfo! },
      mechanisms: { wrap: "CKM_AES_KEY_WRAP_PAD", encrypt: "CKM_AES_GCM", mac: "CKM_SHA256_HMAC" },
      sessions: this.connection?.pool.stats() ?? { open: 0, idle: 0, size: this.options.sessions },
      cache: { ...this.cache.stats(), unwraps: this.unwraps, configured: this.options.cacheSize, memoryShrinks: this.memoryShrinks },
      recoveries: this.recoveries,
    };
  }

  unserviceable(): string | undefined {
    if (this.closed) return "the backend is closed";
    return this.pinRefused;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Closing the owner session destroys every session object it made: the cache is dropped, not destroyed one by one.
    this.cache.clear(false);
    this.connection?.pool.close();
    this.connection = undefined;
    this.unclosed.retry();
    this.lease.release();
  }

  private checkOpen(): void {
    if (this.closed) throw new KmsError("KMS.0101", "the backend is closed");
  }

  /**
   * Runs one backend operation: connects if needed; on a recoverable token failure resets and
   * retries once; reports failures as KmsErrors (see tokenError).
   */
  private operation<T>(step: string, body: (connection: Connection) => T): T {
    this.checkOpen();
    if (this.pinRefused !== undefined) throw new KmsError("KMS.0101", this.pinRefused);
    if (this.leaked) {
      this.leaked = false;
      this.reset();
      this.recoveries++;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        this.connection ??= this.connect(false);
        return body(this.connection);
      } catch (error) {
        if (error instanceof KmsError) throw error;
        const recoverable = isRecoverable(error);
        if (recoverable) this.reset();
        if (recoverable && attempt === 0) {
          this.recoveries++;
          continue;
        }
        throw tokenError(error, step);
      }
    }
  }

  /** Drops the sessions and what lived in them; the next operation reconnects. */
  private reset(): void {
    this.cache.clear(false);
    this.connection?.pool.close();
    this.connection = undefined;
  }

  /** The unwrapped session object of a version: from the cache, or unwrapped now under the root key. */
  private versionKey(c: Connection, version: VersionRef): Key {
    const cached = this.cache.get(version.id);
    if (cached !== undefined && sameBytes(cached.wrapped, version.wrapped)) return cached.key;
    // Its own memory, not a slice of Node's shared pool, which the cache entry would keep alive whole.
    const wrapped = Buffer.allocUnsafeSlow(version.wrapped.length);
    wrapped.set(version.wrapped);
    const step = `unwrapping version ${version.id}`;
    let key: Key;
    try {
      key = this.createObject(step, () => c.pool.owner.unwrapKey(KWP, c.root, wrapped, { ...VERSION_UNWRAP_TEMPLATE }));
    } catch (error) {
      if (isRecoverable(error)) throw error;
      // An integrity failure of the wrapping (or any other refusal) is a fault of the store, not of the request.
      throw tokenError(error, step);
    }
    this.unwraps++;
    if (this.cache.size >= this.cache.capacity && this.cache.capacity < this.options.cacheSize) this.regrow();
    this.cache.set(version.id, { key, wrapped });
    return key;
  }

  /**
   * Runs `create`, a C_ call that makes an object; if the token has no memory for it, makes room
   * (makeRoom) and runs it once more. The second failure, or the first when nothing could be
   * evicted, is thrown as it came (tokenError makes both memory codes KMS.0104).
   */
  private createObject<T>(step: string, create: () => T): T {
    try {
      return create();
    } catch (error) {
      if (!isOutOfMemory(error) || !this.makeRoom(error, step)) throw error;
    }
    return create();
  }

  /**
   * The token refused an object for want of memory while the cache held `size` objects of ours: the
   * token has room for that many, not for the bound. Lowers the bound to that size less a margin
   * (MEMORY_BACKOFF) and evicts, second chance as always, to one below it: room for the object
   * being made.
   * Nothing cached is in use at that moment: the backend is synchronous, and an operation's one
   * version is unwrapped before it is used (or, being created, is not cached at all). Returns false
   * when the cache is empty (the memory is not ours to free).
   */
  private makeRoom(error: unknown, step: string): boolean {
    const held = this.cache.size;
    if (held === 0) return false;
    const bound = Math.max(1, held - Math.ceil(held * MEMORY_BACKOFF));
    this.cache.resize(bound, 1);
    this.memoryShrinks++;
    this.fullUnwraps = 0;
    const failure = ckrOf(error);
    const what = failure === undefined ? "no memory" : `${failure.name}${failure.method === undefined || failure.method === "" ? "" : ` in ${failure.method}`}`;
    this.options.warn(
      `hsmkit KMS backend: ${step}: the token answered ${what} holding ${held} unwrapped CMK versions of this backend; ` +
      `the cache now keeps at most ${bound} (token.cacheSize is ${this.options.cacheSize}): set token.cacheSize to ${bound} or less, or give the token more room`,
    );
    return true;
  }

  /**
   * After a full turn of the cache at a lowered bound (as many unwraps into a full cache as the
   * bound) without the token refusing, the bound grows by one, up to cacheSize: additive increase
   * after makeRoom's multiplicative decrease, as TCP's congestion window does (RFC 5681). Growing
   * back, rather than never, because the wall may have been others' objects that are gone now (a
   * burst of another application or worker thread), and a bound that only ever fell would ratchet
   * down to one unwrap per request. Slowly, because on a token whose size is fixed each step back
   * to the wall costs a refusal, an eviction of an eighth of the cache and a warning: at this pace
   * that happens about once per bound²/8 cold unwraps, and never once cacheSize is set to fit.
   * Each such unwrap is itself evidence: the token held the full cache and the new object.
   */
  private regrow(): void {
    if (++this.fullUnwraps < this.cache.capacity) return;
    this.fullUnwraps = 0;
    this.cache.resize(this.cache.capacity + 1);
  }

  /**
   * C_DestroyObject of an evicted version's session object. A failure cannot undo the eviction (the
   * caller is mid-operation with another key), so it marks the connection to be dropped before the
   * next operation (see `leaked`).
   */
  private destroyObject(key: Key): void {
    try {
      key.destroy();
    } catch {
      this.destroyFailures++;
      this.leaked = true;
    }
  }

  /** Finds the token, opens the sessions and logs in, checks mechanisms, finds or creates the token keys. */
  private connect(first: boolean): Connection {
    const slot = this.findSlot(first);
    const guarded = this.pinGuard(slot);
    if (guarded !== undefined) {
      if (!first) this.pinRefused = guarded;
      throw new KmsError("KMS.0101", guarded);
    }
    let pool: SessionPool;
    try {
      pool = new SessionPool(slot, this.options.pin, this.options.sessions, this.unclosed);
    } catch (error) {
      if (first || !isPinRefused(error)) throw error;
      this.pinRefused = `${tokenError(error, "logging in again").detail ?? ""}; the PIN will not be tried again (each try counts toward locking it): configure the token's current PIN and restart`;
      throw new KmsError("KMS.0101", this.pinRefused, { cause: error });
    }
    try {
      this.checkMechanisms(slot);
      // Keys are created only at the first connection: a token that lost them while away is not ours to refill.
      const create = first && this.options.createKeys;
      const root = this.tokenKey(pool, create, {
        role: "root key",
        label: this.options.rootKeyLabel,
        generate: { name: P.CKM_AES_KEY_GEN, params: null },
        template: { keyType: P.CKK_AES, valueLen: VERSION_KEY_BYTES, ...NO_USAGE, wrap: true, unwrap: true },
        keyTypes: [P.CKK_AES],
        usage: ["wrap", "unwrap"],
        minLength: 32,
      });
      const macKey = this.tokenKey(pool, create, {
        role: "MAC key",
        label: this.options.macKeyLabel,
        generate: { name: P.CKM_GENERIC_SECRET_KEY_GEN, params: null },
        template: { keyType: P.CKK_GENERIC_SECRET, valueLen: MAC_BYTES, ...NO_USAGE, sign: true, verify: true },
        keyTypes: [P.CKK_GENERIC_SECRET, P.CKK_SHA256_HMAC],
        usage: ["sign", "verify"],
        minLength: MAC_BYTES,
      });
      if (first) {
        this.rootInfo = { label: this.options.rootKeyLabel, created: root.created, id: root.id, neverExposed: root.neverExposed };
        this.macInfo = { label: this.options.macKeyLabel, created: macKey.created, id: macKey.id, neverExposed: macKey.neverExposed };
      } else if (root.id !== this.rootInfo?.id || macKey.id !== this.macInfo?.id) {
        // Another object took the label while the token was away: not the key our store's versions are wrapped under.
        throw new KmsError("KMS.0101", "after reconnecting, the token's root or MAC key is not the one found at start");
      }
      return { slot, pool, root: root.key, macKey: macKey.key };
    } catch (error) {
      pool.close();
      throw error;
    }
  }

  /**
   * Why the configured PIN must not be tried on this token now, or undefined: its user PIN is
   * locked, or one more wrong try would lock it (CKF_USER_PIN_FINAL_TRY, after wrong tries from
   * anywhere). A wrong PIN in the configuration, with a supervisor restarting the service, would
   * otherwise lock an HSM's crypto user for good, one try per start; a person checks the PIN and
   * logs in once by hand, which resets the token's count.
   */
  private pinGuard(slot: Slot): string | undefined {
    let flags: number;
    try {
      flags = slot.getToken().flags;
    } catch {
      return undefined; // C_GetTokenInfo failing is the login's to report.
    }
    if ((flags & P.CKF_USER_PIN_LOCKED) !== 0) {
      return "the token's user PIN is locked (CKF_USER_PIN_LOCKED): its security officer must unlock it before the KMS can log in";
    }
    if ((flags & P.CKF_USER_PIN_FINAL_TRY) !== 0) {
      return "one more wrong user PIN would lock the token (CKF_USER_PIN_FINAL_TRY), so the KMS does not try it: check the configured PIN, " +
        "log in once by hand with it (pkcs11-tool --login, say) to reset the token's count, then start again";
    }
    return undefined;
  }

  /**
   * The one slot whose token has our label. A slot whose token cannot be read is passed over when
   * ours is found elsewhere: a slot list with tokens present still holds a card the library does
   * not recognize, and a token unplugged since the list was made (C_GetTokenInfo answers
   * CKR_TOKEN_NOT_RECOGNIZED, CKR_TOKEN_NOT_PRESENT, v2.40 §5.5); another token's trouble must not
   * keep the KMS from its own. When ours is not found, the first such failure is thrown, since it
   * may have been ours.
   */
  private findSlot(first: boolean): Slot {
    const slots = this.lease.module.getSlots(true);
    const matches: Slot[] = [];
    const labels: string[] = [];
    let unreadable: unknown;
    for (let i = 0; i < slots.length; i++) {
      let slot: Slot;
      let token: ReturnType<Slot["getToken"]>;
      try {
        slot = slots.items(i);
        token = slot.getToken();
      } catch (error) {
        if (ckrOf(error) === undefined) throw error;
        unreadable ??= error;
        continue;
      }
      labels.push(`"${field(token.label)}"`);
      if (field(token.label) !== this.options.tokenLabel) continue;
      matches.push(slot);
      this.tokenInfo = {
        label: field(token.label), manufacturer: field(token.manufacturerID), model: field(token.model), serialNumber: field(token.serialNumber),
      };
    }
    if (matches.length === 1) return matches[0]!;
    if (matches.length === 0 && unreadable !== undefined) throw unreadable;
    if (matches.length === 0) {
      // At start this is a configuration error; later, the token went away (and may come back).
      // The labels present show a typo, or a token not initialized (or not visible to this user), at a glance.
      throw new KmsError(first ? "KMS.0101" : "KMS.0104", `no token labelled "${this.options.tokenLabel}" is present (tokens present: ${labels.join(", ") || "none"})`);
    }
    throw new KmsError("KMS.0101", `${matches.length} tokens are labelled "${this.options.tokenLabel}"; refusing to choose`);
  }

  private checkMechanisms(slot: Slot): void {
    const offered = new Set<number>();
    const list = slot.getMechanisms();
    for (let i = 0; i < list.length; i++) offered.add(list.items(i).type);
    const missing = REQUIRED_MECHANISMS.filter(([m]) => !offered.has(m)).map(([, name]) => name);
    if (missing.length > 0) throw new KmsError("KMS.0101", `the token lacks ${missing.join(", ")}`);
  }

  /** Finds the token key with the spec's label (checking it is fit to use), or creates it. */
  private tokenKey(pool: SessionPool, create: boolean, spec: TokenKeySpec): TokenKey {
    const session = pool.owner;
    const found = session.find({ class: P.CKO_SECRET_KEY, token: true, label: spec.label });
    if (found.length > 1) throw new KmsError("KMS.0101", `${found.length} secret keys are labelled "${spec.label}"; refusing to choose a ${spec.role}`);
    if (found.length === 1) return this.checkTokenKey(found.items(0) as unknown as Key, spec, false);
    if (!create) throw new KmsError("KMS.0101", `no ${spec.role} labelled "${spec.label}" on the token (and it is not to be created now)`);
    const id = session.generateRandom(16);
    const key = session.generateKey(spec.generate, {
      ...spec.template, token: true, private: true, sensitive: true, extractable: false, modifiable: false, label: spec.label, id,
    }) as Key;
    return this.checkTokenKey(key, spec, true);
  }

  /**
   * A key found by label must be what we would have made: a secret key of the right type and length,
   * private, sensitive, not extractable, with the usage we need. Anything else could be a key whose
   * value is known outside the token (planted, or imported carelessly), so the backend refuses it.
   * Private matters as much as sensitive: a public object is usable in a session nobody logged in to
   * (v2.40 §4.4), so without the PIN anyone who can load the library could unwrap a stored version
   * into an extractable key and read it, or MAC a forged audit checkpoint; and SoftHSMv2 keeps a
   * public object's value unencrypted in its token directory (SecureDataManager encrypts only
   * CKA_PRIVATE objects).
   */
  private checkTokenKey(key: Key, spec: TokenKeySpec, created: boolean): TokenKey {
    const a = key.getAttribute({
      class: null, keyType: null, valueLen: null, private: null, sensitive: null, extractable: null, alwaysSensitive: null,
      neverExtractable: null, id: null, wrap: null, unwrap: null, sign: null, verify: null,
    }) as Record<string, unknown>;
    const problems: string[] = [];
    if (a.class !== P.CKO_SECRET_KEY) problems.push("not a secret key");
    if (a.private !== true) problems.push("not private");
    if (!spec.keyTypes.includes(a.keyType as number)) problems.push(`key type 0x${Number(a.keyType).toString(16)}`);
    // SoftHSMv2 reports CKA_VALUE_LEN 0 for some keys; only a known short length is refused.
    if (typeof a.valueLen === "number" && a.valueLen !== 0 && a.valueLen < spec.minLength) problems.push(`${a.valueLen} bytes`);
    if (a.sensitive !== true) problems.push("not sensitive");
    if (a.extractable !== false) problems.push("extractable");
    for (const use of spec.usage) if (a[use] !== true) problems.push(`no CKA_${use.toUpperCase()}`);
    if (problems.length > 0) {
      throw new KmsError("KMS.0101", `the object labelled "${spec.label}" cannot serve as the ${spec.role}: ${problems.join(", ")}`);
    }
    const id = Buffer.isBuffer(a.id) ? a.id.toString("hex") : "";
    return { key, created, id, neverExposed: a.alwaysSensitive === true && a.neverExtractable === true };
  }
}
