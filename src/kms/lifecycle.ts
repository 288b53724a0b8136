/**
 * The key lifecycle: Huawei's numeric states, which operation each state allows and the error code
 * of each refusal, and the checks of the lifecycle's request fields.
 *
 * States (types.ts KEY_STATE; Huawei key_details.py): 1 pending activation, 2 enabled, 3 disabled,
 * 4 pending deletion, 5 pending import. hsmkit creates keys with origin "kms" only, so its keys
 * live in 2, 3 and 4 (1 and 5 are refused like "not enabled" wherever they would matter).
 *
 *     create-key ──▶ 2 ──disable-key──▶ 3 ──enable-key──▶ 2
 *                    │                  │
 *                    └─schedule-key-deletion─▶ 4 ──cancel-key-deletion──▶ 3
 *                                              └── due: deleted (versions destroyed, gone for good)
 *
 * The table of refusals, by operation and state (— allowed; D: default keys refused with KMS.0211):
 *
 * | operation                    | 1    | 2    | 3    | 4    | 5    | D    |
 * |------------------------------|------|------|------|------|------|------|
 * | describe, list, list grants, tags read, rotation status, usage | — | — | — | — | — | — |
 * | enable-key                   | 1201 | 1201 | —    | 0210 | 1201 |      |
 * | disable-key                  | 1301 | —    | 1301 | 0210 | 1301 | 0211 |
 * | schedule-key-deletion        | —    | —    | —    | 1402 | —    | 0211 |
 * | cancel-key-deletion          | 1501 | 1501 | 1501 | —    | 1501 |      |
 * | update-key-alias             | —    | —    | —    | 0210 | —    | 0211 |
 * | update-key-description       | —    | —    | —    | 0210 | —    | 0211 |
 * | encrypt/decrypt data and data keys, re-encrypt (both keys) | 1301 | — | 0209 | 0210 | 1301 | |
 * | enable/disable rotation, interval, rotate-on-demand | 1301 | — | 0209 | 0210 | 1301 | 0211 |
 * | create-grant                 | —    | —    | —    | 0210 | —    | 0211 |
 * | revoke-grant, retire-grant   | —    | —    | —    | —    | —    |      |
 * | tags create                  | —    | —    | —    | 0210 | —    | 0211 |
 * | tags delete                  | —    | —    | —    | 0210 | —    |      |
 *
 * Sources: Huawei's error codes (OTC api-ref/source/appendix/error_code.rst): KMS.0209 "The key
 * has been disabled", KMS.0210 "… Scheduled deletion state and cannot be used", KMS.0211 "Cannot
 * perform this operation on Default Master Keys", KMS.1201 "The key is not disabled", KMS.1301 "The
 * key is not enabled", KMS.1402 "already in Pending deletion state", KMS.1501 "not in Pending
 * deletion state". Default keys cannot be disabled or scheduled for deletion (OTC FAQ "What is a
 * default key"), re-aliased or re-described (OTC "Viewing a Key": "A default key … does not allow
 * name and description changes"), rotated (OTC "Enabling rotation for a CMK": "Default Master Keys
 * do not support rotation"), granted on (OTC "Creating a Grant": "A Default Master Key … does not
 * allow permission granting") or tagged (OTC "Adding a Tag": "Tags cannot be added to default
 * keys"). Deleting tags stays allowed: it adds nothing, and clears tags a default key may carry
 * from before this rule.
 */
import { KmsError, type KmsErrorCode } from "./errors.js";
import { DEFAULT_ALIAS_SUFFIX } from "./default-keys.js";
import type { KeyGuard } from "./store/store.js";
import type { KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage } from "./types.js";
import { KEY_STATE, KEY_STATES } from "./types.js";

const NOT_USABLE = { 1: "KMS.1301", 3: "KMS.0209", 4: "KMS.0210", 5: "KMS.1301" } as const satisfies Partial<Record<KeyState, KmsErrorCode>>;

/** Guards by operation (the store checks them inside the write's transaction; crypto operations check them in memory). */
export const GUARDS = {
  read: {},
  enable: { states: { 1: "KMS.1201", 2: "KMS.1201", 4: "KMS.0210", 5: "KMS.1201" } },
  disable: { states: { 1: "KMS.1301", 3: "KMS.1301", 4: "KMS.0210", 5: "KMS.1301" }, defaultKey: "KMS.0211" },
  scheduleDeletion: { states: { 4: "KMS.1402" }, defaultKey: "KMS.0211" },
  cancelDeletion: { states: { 1: "KMS.1501", 2: "KMS.1501", 3: "KMS.1501", 5: "KMS.1501" } },
  updateAlias: { states: { 4: "KMS.0210" }, defaultKey: "KMS.0211" },
  updateDescription: { states: { 4: "KMS.0210" }, defaultKey: "KMS.0211" },
  use: { states: NOT_USABLE },
  rotation: { states: NOT_USABLE, defaultKey: "KMS.0211" },
  createGrant: { states: { 4: "KMS.0210" }, defaultKey: "KMS.0211" },
  removeGrant: {},
  tags: { states: { 4: "KMS.0210" }, defaultKey: "KMS.0211" },
  untag: { states: { 4: "KMS.0210" } },
  /** The deletion sweeper: only a key still pending deletion is destroyed. */
  destroy: { states: { 1: "KMS.1501", 2: "KMS.1501", 3: "KMS.1501", 5: "KMS.1501" } },
  /** Service-made versions (scheduled rotation, the seal limit): on a usable key only, default keys included. */
  autoRotate: { states: NOT_USABLE },
} as const satisfies Record<string, KeyGuard>;

/** Throws the guard's KmsError if the key's state or kind is refused (the store's checkGuard, in memory). */
export function checkGuard(key: KeyRecord, guard: KeyGuard): void {
  if (key.defaultKey && guard.defaultKey !== undefined) throw new KmsError(guard.defaultKey, "guard: default key");
  const code = guard.states?.[key.state];
  if (code !== undefined) throw new KmsError(code, `guard: key state ${key.state}`);
}

// ---------------------------------------------------------------------------------------------
// Request fields

/** Huawei create-key key_alias: `^[a-zA-Z0-9:/_-]{1,255}$` (kms-apis.md §1.2). */
const ALIAS = /^[a-zA-Z0-9:/_-]{1,255}$/u;
/** key_description: 0–255 characters (kms-apis.md §1.2). */
export const MAX_DESCRIPTION_CHARS = 255;

/** A custom key's alias: the pattern, and not ending in /default (reserved for default keys). KMS.1101. */
export function checkCustomAlias(alias: unknown): string {
  if (typeof alias !== "string" || !ALIAS.test(alias)) throw new KmsError("KMS.1101", "key_alias must match ^[a-zA-Z0-9:/_-]{1,255}$");
  if (alias.endsWith(DEFAULT_ALIAS_SUFFIX)) throw new KmsError("KMS.1101", "key_alias must not end in /default (reserved for default keys)");
  return alias;
}

/**
 * A lone UTF-16 surrogate is no character, and the store's UTF-8 would keep it as U+FFFD: a text
 * other than the one accepted (tags.ts refuses it in tags for the same reason).
 */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * key_description: a string of 0..255 characters (absent: ""). KMS.1103. Characters are code
 * points, as the HTTP schema counts them, so a character outside the BMP counts once.
 */
export function checkDescription(description: unknown): string {
  if (description === undefined) return "";
  if (typeof description !== "string" || LONE_SURROGATE.test(description) || [...description].length > MAX_DESCRIPTION_CHARS) {
    throw new KmsError("KMS.1103", `key_description must be a string of at most ${MAX_DESCRIPTION_CHARS} characters`);
  }
  return description;
}

/** key_spec: AES_256 (the default) is the only spec hsmkit creates. KMS.0308 otherwise. */
export function checkKeySpec(spec: unknown): KeySpec {
  if (spec === undefined || spec === "AES_256") return "AES_256";
  throw new KmsError("KMS.0308", "key_spec must be AES_256 (the only key spec hsmkit creates)");
}

/** Huawei's key_spec enumeration (kms-apis.md §1.3): what a list-keys filter may name. */
const HUAWEI_KEY_SPECS: ReadonlySet<string> = new Set([
  "AES_256", "SM4", "RSA_2048", "RSA_3072", "RSA_4096", "EC_P256", "EC_P384", "SECP256K1", "SM2", "ED25519",
  "HMAC_256", "HMAC_384", "HMAC_512", "HMAC_SM3",
]);

/**
 * list-keys' key_spec filter: one of Huawei's key specs, or ALL for every key; absent or "" means
 * AES_256, as in Huawei's ListKeys. KMS.0308 for anything else.
 */
export function checkListKeySpec(spec: unknown): string {
  if (spec === undefined || spec === "") return "AES_256";
  if (typeof spec === "string" && (spec === "ALL" || HUAWEI_KEY_SPECS.has(spec))) return spec;
  throw new KmsError("KMS.0308", `key_spec must be ALL or one of ${[...HUAWEI_KEY_SPECS].join(", ")}`);
}

/** key_usage: ENCRYPT_DECRYPT (the default). KMS.0308 otherwise. */
export function checkKeyUsage(usage: unknown): KeyUsage {
  if (usage === undefined || usage === "ENCRYPT_DECRYPT") return "ENCRYPT_DECRYPT";
  throw new KmsError("KMS.0308", "key_usage must be ENCRYPT_DECRYPT");
}

/** origin: kms (the default). Imported material ("external") is not implemented: KMS.0308. */
export function checkOrigin(origin: unknown): KeyOrigin {
  if (origin === undefined || origin === "kms") return "kms";
  throw new KmsError("KMS.0308", "origin must be kms (importing key material is not implemented)");
}

/** A key_state filter: 1..5 (number or numeric string, as Huawei sends it). KMS.0308. */
export function checkStateFilter(state: unknown): KeyState | undefined {
  if (state === undefined || state === null || state === "") return undefined;
  const n = typeof state === "string" && /^\d$/u.test(state) ? Number(state) : state;
  if (typeof n !== "number" || !(KEY_STATES as readonly number[]).includes(n)) throw new KmsError("KMS.0308", "key_state must be 1..5");
  return n as KeyState;
}

/**
 * An integer field that Huawei sends as a JSON string ("7"): a safe integer, or a string of digits.
 * Anything else throws `code`. Absent (undefined, "" or null) gives undefined.
 */
export function integerField(value: unknown, name: string, code: KmsErrorCode): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (typeof value === "string" && /^-?\d{1,15}$/u.test(value)) return Number(value);
  throw new KmsError(code, `${name} must be an integer`);
}

/** The states as a readable name, for details and logs. */
export const STATE_NAMES: Readonly<Record<KeyState, string>> = Object.freeze({
  [KEY_STATE.PENDING_ACTIVATION]: "pending activation",
  [KEY_STATE.ENABLED]: "enabled",
  [KEY_STATE.DISABLED]: "disabled",
  [KEY_STATE.PENDING_DELETION]: "pending deletion",
  [KEY_STATE.PENDING_IMPORT]: "pending import",
});
