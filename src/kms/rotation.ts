/**
 * Key rotation: the interval's bounds, when a key is due, and the status record. A rotation adds a
 * version (generated in the token, wrapped under the root key) and makes it current: encryption
 * uses the newest version, every older version keeps decrypting until the key is deleted (the blob
 * names its version). Old versions are never re-encrypted or dropped.
 *
 * Three ways a version is added (kms.ts):
 * - rotate-on-demand (audit action rotateKeyOnDemand), by a key administrator, whether or not
 *   automatic rotation is enabled;
 * - the scheduler (Kms.rotateDueKeys, audit action autoRotateKey, reason=schedule), for keys with
 *   rotation enabled whose interval has passed since their last rotation or since rotation was
 *   enabled, whichever is later (nextRotationAt);
 * - the seal limit (audit action autoRotateKey, reason=seal-limit), when the current version has
 *   made `sealsPerVersion` seals (config.ts, versions.ts) — default keys included (default-keys.ts).
 *
 * Sources: rotation_interval 30–365 days, default 365 (OTC api-ref "Changing the rotation interval
 * for a CMK", "Enabling rotation for a CMK"); status fields key_rotation_enabled, rotation_interval,
 * last_rotation_time, number_of_rotations (OTC "Querying the rotation status of a CMK").
 */
import { KmsError } from "./errors.js";
import { integerField } from "./lifecycle.js";
import { KEY_STATE, type KeyRecord } from "./types.js";

export const MIN_ROTATION_INTERVAL_DAYS = 30;
export const MAX_ROTATION_INTERVAL_DAYS = 365;
export const DEFAULT_ROTATION_INTERVAL_DAYS = 365;
export const DAY_MS = 86_400_000;

/** rotation_interval: 30..365 days (number or numeric string). KMS.3001. */
export function checkRotationInterval(value: unknown): number {
  const days = integerField(value, "rotation_interval", "KMS.3001");
  if (days === undefined || days < MIN_ROTATION_INTERVAL_DAYS || days > MAX_ROTATION_INTERVAL_DAYS) {
    throw new KmsError("KMS.3001", `rotation_interval must be ${MIN_ROTATION_INTERVAL_DAYS}..${MAX_ROTATION_INTERVAL_DAYS} days`);
  }
  return days;
}

/**
 * When the key's next scheduled rotation falls due (ms), or null when rotation is disabled: one
 * interval after the last rotation or after rotation was turned on, whichever is later (AWS
 * EnableKeyRotation: "rotates the key material one year from the enable date"), so a key older
 * than its interval is not rotated the moment rotation is enabled, and a new interval counts from
 * the same point. The store's rotation index computes the same (store/migrations.ts ROTATION_DUE_AT).
 */
export function nextRotationAt(key: KeyRecord): number | null {
  if (!key.rotationEnabled) return null;
  const since = Math.max(key.lastRotatedAt ?? key.createdAt, key.rotationEnabledAt ?? key.createdAt);
  return since + key.rotationIntervalDays * DAY_MS;
}

/** Whether the scheduler should rotate the key at `now`. */
export function rotationDue(key: KeyRecord, now: number): boolean {
  const at = nextRotationAt(key);
  return at !== null && at <= now && !key.defaultKey;
}

/**
 * key_rotation_enabled as the key reports it: false while the key is pending deletion, since it is
 * not rotated then, and as stored otherwise, so that cancelling the deletion brings the setting
 * back (OTC umn "Key Rotation Overview": a key pending deletion is not rotated, and after the
 * deletion is cancelled "the previous key rotation status will be restored"; AWS
 * GetKeyRotationStatus: "While a KMS key is pending deletion, its key rotation status is false").
 * A disabled key keeps reporting its setting: it resumes rotating once enabled.
 */
export function reportedRotationEnabled(key: KeyRecord): boolean {
  return key.rotationEnabled && key.state !== KEY_STATE.PENDING_DELETION;
}

/** get-key-rotation-status. */
export interface KeyRotationStatus {
  keyRotationEnabled: boolean;
  /** Days. */
  rotationInterval: number;
  /** ms since the epoch; null before the first rotation. */
  lastRotationTime: number | null;
  numberOfRotations: number;
  /** The key's versions (1 … current), oldest first: every one decrypts; the last encrypts. */
  keyMaterials: Array<{ version: number; createdAt: number; current: boolean }>;
}
