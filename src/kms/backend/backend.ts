/**
 * The KMS backend: everything the KMS asks of the HSM, and nothing else. The service layer
 * (src/kms/kms.ts) and the envelope (src/kms/envelope/) use only this interface; the one
 * implementation, over graphene-pk11, is in graphene.ts and serves the emulator and any PKCS#11
 * module (SoftHSMv2, vendor HSMs) with the same code.
 *
 * Key hierarchy (shared/DESIGN.md, src/kms):
 * - the *root key* is one AES-256 token object (sensitive, never extractable, wrap/unwrap only),
 *   created on first start and found by its label afterwards;
 * - a *CMK version* is an AES-256 key generated in the token and handed out only wrapped under the
 *   root key with AES-KWP (RFC 5649, CKM_AES_KEY_WRAP_PAD): 40 bytes that the service stores. To
 *   use a version, the backend unwraps it into a session object (sensitive, non-extractable,
 *   encrypt/decrypt only) and keeps that handle in a bounded LRU cache; the token's object count
 *   therefore stays constant however many CMKs exist;
 * - the *MAC key* is one HMAC-SHA256 token object (generic secret, 32 bytes, sensitive, never
 *   extractable, sign/verify only), created on first start and found by its label afterwards; the
 *   audit log MACs its checkpoints with it.
 * Every cryptographic operation happens in the token; key bytes never enter this process.
 *
 * Why synchronous: graphene-pk11 is synchronous (pkcs11js offers callbacks on a few C_ functions,
 * which run on the libuv pool); for the KMS's messages (≤ 4 KiB) an operation takes microseconds
 * in the token, less than the thread hop an asynchronous call would add, and a PKCS#11 session runs
 * one operation at a time anyway. The KMS is single-threaded per process; it scales with worker
 * threads, each with its own backend over the same module (initialized once per process with
 * CKF_OS_LOCKING_OK; see module-loader.ts). A network HSM with millisecond latencies would call for
 * an asynchronous variant of this interface; none is needed for the emulator or SoftHSMv2.
 *
 * Errors: every method throws only KmsError (src/kms/errors.ts):
 * - KMS.2201, the one opaque error, when decryption fails for any reason that the ciphertext, IV,
 *   AAD or key could cause (tag mismatch, wrong length); no detail distinguishes the cases;
 * - KMS.0104 (503) when the token is unavailable (removed, not present, device error), after which
 *   the next call tries to reopen it;
 * - KMS.0101 (500) for every other token failure, with the PKCS#11 function and CKR name in the
 *   error's `detail` (for logs; never key material);
 * - KMS.0308 for arguments outside the documented ranges (a programming error in the caller).
 */

/** A CMK version as the service stores it: a unique id and the key wrapped under the root key. */
export interface VersionRef {
  /**
   * Unique for the life of the store, e.g. `${keyId}:${version}`; never reused for another key. The
   * handle cache is keyed by it (and checks that `wrapped` matches what it unwrapped).
   */
  readonly id: string;
  /** The 40-byte AES-KWP wrapping of the version key, as createVersionKey returned it. */
  readonly wrapped: Uint8Array;
}

/** Bytes in a CMK version key (AES-256). */
export const VERSION_KEY_BYTES = 32;
/** Bytes of a wrapped version key: AES-KWP of 32 bytes is 32 + 8 (RFC 5649 §4.1). */
export const WRAPPED_VERSION_KEY_BYTES = 40;
/** GCM IV bytes (96 bits, NIST SP 800-38D §5.2.1.1, the length GCM is designed for). */
export const GCM_IV_BYTES = 12;
/** GCM tag bytes (128 bits, the full tag). */
export const GCM_TAG_BYTES = 16;
/** HMAC-SHA256 output bytes. */
export const MAC_BYTES = 32;
/** Largest plaintext, AAD or MAC input the backend takes (64 KiB); the KMS's own limits are far lower (4096-byte plaintext). */
export const MAX_DATA_BYTES = 65536;
/** Largest single random request (64 KiB); Huawei's gen-random asks at most 1024 bytes. */
export const MAX_RANDOM_BYTES = 65536;

export interface BackendInfo {
  module: {
    /** "emulator", or the resolved path of the PKCS#11 library. */
    source: string;
    manufacturer: string;
    description: string;
    /** Library version, "major.minor". */
    version: string;
  };
  token: { label: string; manufacturer: string; model: string; serialNumber: string };
  rootKey: {
    label: string;
    /** True when this backend created it (first start), false when it was found by label. */
    created: boolean;
    /** CKA_ID, hex (random, set at creation). */
    id: string;
    /** CKA_ALWAYS_SENSITIVE && CKA_NEVER_EXTRACTABLE: the key's value never existed outside the token. */
    neverExposed: boolean;
  };
  macKey: { label: string; created: boolean; id: string; neverExposed: boolean };
  /** The PKCS#11 mechanisms in use. */
  mechanisms: { wrap: "CKM_AES_KEY_WRAP_PAD"; encrypt: "CKM_AES_GCM"; mac: "CKM_SHA256_HMAC" };
  sessions: { open: number; idle: number; size: number };
  /**
   * The unwrapped-version cache: `capacity` is its bound now, `configured` the one asked for
   * (token.cacheSize); the bound is lower after the token ran out of memory for an object
   * (`memoryShrinks` times), and grows back slowly.
   */
  cache: { size: number; capacity: number; hits: number; misses: number; evictions: number; unwraps: number; configured: number; memoryShrinks: number };
  /** Times the backend dropped its sessions and reopened them after a token failure. */
  recoveries: number;
}

export interface KmsBackend {
  /**
   * Creates a CMK version: an AES-256 key generated in the token as a session object that is
   * extractable only so that it can be wrapped, wrapped under the root key with AES-KWP, and
   * destroyed. Returns the 40-byte wrapping; the key exists nowhere else.
   */
  createVersionKey(): Buffer;

  /**
   * AES-256-GCM in the token under a CMK version: returns ciphertext ‖ 16-byte tag
   * (plaintext.length + 16 bytes).
   * @param iv 12 bytes, never reused with this version (the envelope draws it from random()).
   * @param aad 0..MAX_DATA_BYTES bytes of additional authenticated data.
   * @param plaintext 1..MAX_DATA_BYTES bytes.
   * @param out where to write the result, at its start (at least plaintext.length + 16 bytes, not
   *   overlapping the inputs); the result is then `out` or a view of it. Without it, a new Buffer.
   *   The envelope passes the rest of its blob, so the sealed bytes are written once, in place.
   */
  encrypt(version: VersionRef, iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Buffer;

  /**
   * Opens what encrypt produced. Any mismatch of key, IV, AAD, ciphertext or tag, and a `sealed`
   * shorter than 17 bytes, throws the opaque KMS.2201; no plaintext is released before the tag is
   * verified.
   */
  decrypt(version: VersionRef, iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Buffer;

  /**
   * Forgets a version: destroys its unwrapped session object, if cached. Idempotent. The wrapped
   * key in the store is the service's to delete; once it is gone, so is the version.
   */
  destroyVersion(id: string): void;

  /** `length` (1..MAX_RANDOM_BYTES) bytes from the token's generator (C_GenerateRandom). */
  random(length: number): Buffer;

  /** HMAC-SHA256 of `data` (0..MAX_DATA_BYTES bytes) under the token's MAC key: 32 bytes. */
  mac(data: Uint8Array): Buffer;

  /** Whether `mac` is the HMAC-SHA256 of `data` under the MAC key (verified in the token; false for a wrong length). */
  verifyMac(data: Uint8Array, mac: Uint8Array): boolean;

  /** What the backend runs on, and its counters. Makes no token call except when reopening. */
  info(): BackendInfo;

  /**
   * Why the backend will serve nothing until the process is restarted with a corrected
   * configuration, or undefined while it can serve: the token refused the configured PIN when the
   * backend logged in again (a PIN it never tries again), or the backend is closed. Passing
   * failures (a removed token, a device error) are retried by every call and do not show here.
   * Makes no token call; the text names the cause and the remedy, never a secret.
   */
  unserviceable(): string | undefined;

  /**
   * Destroys the cached session objects, closes the sessions and releases the module (finalized if
   * this thread initialized it and no other backend uses it). Idempotent; later calls throw.
   */
  close(): void;
}
