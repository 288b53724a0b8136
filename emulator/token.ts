/**
 * A token: its label and identity, its PINs and login state, its objects.
 *
 * PINs are never stored. Each initialized PIN keeps a salt and the token key wrapped (AES-KWP,
 * in the native core) under a key derived from the PIN with scrypt, a memory-hard KDF; a login
 * derives that key and unwraps, and the KWP integrity check is what tells a wrong PIN. The same
 * token key later encrypts the token's objects at rest (emulator/store).
 */
import { scryptSync, timingSafeEqual } from "node:crypto";
import { generateKey, importKey, type KeyHandle } from "../src/crypto/keys.js";
import { keyUnwrapKey, keyWrapKey } from "../src/crypto/keywrap.js";
import { isNativeError } from "../src/crypto/errors.js";
import { randomBytes } from "../src/crypto/random.js";
import { CkrError } from "./errors.js";
import { pkcs11 } from "./pkcs11.js";
import type { P11Object } from "./objects/object.js";

const P = pkcs11;

/** PIN length limits (bytes), as SoftHSMv2's: 4..255. */
export const MIN_PIN = 4;
export const MAX_PIN = 255;
/** Consecutive wrong PINs before the PIN locks. */
export const MAX_PIN_FAILURES = 10;

/** scrypt cost: N = 2^14, r = 8 (16 MiB, tens of milliseconds per login). */
export interface KdfParams {
  N: number;
  r: number;
  p: number;
}
export const DEFAULT_KDF: KdfParams = { N: 1 << 14, r: 8, p: 1 };

export interface PinRecord {
  salt: Buffer;
  kdf: KdfParams;
  /** The token key, KWP-wrapped under scrypt(PIN, salt). */
  wrappedTokenKey: Buffer;
  failures: number;
}

export type LoginState = "public" | "user" | "so";

function derive(pin: Buffer, salt: Buffer, kdf: KdfParams): KeyHandle {
  const bytes = scryptSync(pin, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r });
  try {
    return importKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

export function checkPinFormat(pin: Buffer): void {
  if (pin.length < MIN_PIN || pin.length > MAX_PIN) throw new CkrError(P.CKR_PIN_LEN_RANGE, `PIN must be ${MIN_PIN}..${MAX_PIN} bytes`);
}

export class Token {
  label = "";
  readonly serialNumber: string;
  initialized = false;
  so: PinRecord | null = null;
  user: PinRecord | null = null;
  login: LoginState = "public";
  /** The token key while known (from initialization or a login); null when locked away. */
  tokenKey: KeyHandle | null = null;
  readonly objects = new Map<number, P11Object>();
  kdf: KdfParams;

  constructor(serialNumber: string, kdf: KdfParams = DEFAULT_KDF) {
    this.serialNumber = serialNumber;
    this.kdf = kdf;
  }

  private record(pin: Buffer, tokenKey: KeyHandle): PinRecord {
    checkPinFormat(pin);
    const salt = randomBytes(16);
    const kek = derive(pin, salt, this.kdf);
    try {
      return { salt, kdf: { ...this.kdf }, wrappedTokenKey: keyWrapKey(kek, "kwp", tokenKey), failures: 0 };
    } finally {
      kek.destroy();
    }
  }

  /** C_InitToken: a fresh token key, the SO PIN, no user PIN, no objects. */
  initialize(soPin: Buffer, label: string): void {
    for (const object of this.objects.values()) object.destroy();
    this.objects.clear();
    this.tokenKey?.destroy();
    this.tokenKey = generateKey(32);
    this.so = this.record(soPin, this.tokenKey);
    this.user = null;
    this.label = label;
    this.initialized = true;
    this.login = "public";
  }

  /**
   * Checks `pin` against the SO's or the user's record; on success returns the unwrapped token
   * key. Counts failures and locks the PIN at MAX_PIN_FAILURES (CKR_PIN_LOCKED).
   */
  verify(who: "so" | "user", pin: Buffer): KeyHandle {
    const record = who === "so" ? this.so : this.user;
    if (record === null) throw new CkrError(who === "so" ? P.CKR_GENERAL_ERROR : P.CKR_USER_PIN_NOT_INITIALIZED);
    if (record.failures >= MAX_PIN_FAILURES) throw new CkrError(P.CKR_PIN_LOCKED);
    if (pin.length < MIN_PIN || pin.length > MAX_PIN) {
      record.failures++;
      throw new CkrError(record.failures >= MAX_PIN_FAILURES ? P.CKR_PIN_LOCKED : P.CKR_PIN_INCORRECT);
    }
    const kek = derive(pin, record.salt, record.kdf);
    try {
      const key = keyUnwrapKey(kek, "kwp", record.wrappedTokenKey);
      record.failures = 0;
      return key;
    } catch (error) {
      if (!isNativeError(error, "ERR_NATIVE_UNWRAP")) throw error;
      record.failures++;
      // The attempt that exhausts the PIN is told so: CKR_PIN_LOCKED from then on.
      throw new CkrError(record.failures >= MAX_PIN_FAILURES ? P.CKR_PIN_LOCKED : P.CKR_PIN_INCORRECT);
    } finally {
      kek.destroy();
    }
  }

  /** Takes the token key from a successful login, checking it is the one this token has. */
  adoptTokenKey(key: KeyHandle): void {
    if (this.tokenKey === null) {
      this.tokenKey = key;
      return;
    }
    // The two exports are the token key in the clear: wiped at once, not left to the collector.
    const held = this.tokenKey.exportBytes();
    const offered = key.exportBytes();
    let same: boolean;
    try {
      same = timingSafeEqual(held, offered);
    } finally {
      held.fill(0);
      offered.fill(0);
      key.destroy();
    }
    if (!same) throw new CkrError(P.CKR_GENERAL_ERROR, "PIN records disagree on the token key");
  }

  setPin(who: "so" | "user", pin: Buffer): void {
    if (this.tokenKey === null) throw new CkrError(P.CKR_USER_NOT_LOGGED_IN, "token key unavailable");
    const record = this.record(pin, this.tokenKey);
    if (who === "so") this.so = record;
    else this.user = record;
  }

  /** CKF_* token flags (§3.2 CK_TOKEN_INFO). */
  get flags(): number {
    let flags = P.CKF_RNG | P.CKF_LOGIN_REQUIRED | P.CKF_RESTORE_KEY_NOT_NEEDED;
    if (this.initialized) flags |= P.CKF_TOKEN_INITIALIZED;
    if (this.user !== null) flags |= P.CKF_USER_PIN_INITIALIZED;
    flags |= pinFlags(this.user, P.CKF_USER_PIN_COUNT_LOW, P.CKF_USER_PIN_FINAL_TRY, P.CKF_USER_PIN_LOCKED);
    flags |= pinFlags(this.so, P.CKF_SO_PIN_COUNT_LOW, P.CKF_SO_PIN_FINAL_TRY, P.CKF_SO_PIN_LOCKED);
    return flags;
  }
}

function pinFlags(record: PinRecord | null, low: number, finalTry: number, locked: number): number {
  if (record === null || record.failures === 0) return 0;
  if (record.failures >= MAX_PIN_FAILURES) return locked | low;
  if (record.failures === MAX_PIN_FAILURES - 1) return finalTry | low;
  return low;
}
