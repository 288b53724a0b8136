/**
 * The KMS's limits and tunables: one defaults object, each value with its unit and where it comes
 * from, validated and frozen by resolveKmsConfig(). Field limits of single requests (alias length,
 * plaintext size …) are not configurable: they are Huawei's API and live next to the operation
 * that checks them (lifecycle.ts, kms.ts, envelope/).
 */

export interface KmsLimits {
  /**
   * Custom keys per project (Huawei "CMK" quota: 100; default keys are not counted —
   * OTC umn/source/faqs/is_there_a_limit…rst, api-ref querying_the_quota_of_a_user.rst).
   */
  customKeysPerProject: number;
  /** Grants per key (Huawei: at most 100 — OTC umn/…/managing_a_grant/creating_a_grant.rst). */
  grantsPerKey: number;
  /** Tags per key (Huawei: at most 10 — OTC api-ref adding_a_cmk_tag.rst). */
  tagsPerKey: number;
}

export interface KmsTunables {
  /**
   * Seals (GCM encryptions with random 96-bit IVs) one key version may make before the service adds
   * a new version by itself. NIST SP 800-38D §8.3 bounds random-IV GCM at 2^32 invocations per key;
   * the default, 2^30, rolls over at a quarter of that so that counts lost in a crash (at most the
   * requests in flight) and concurrent requests never come near the bound.
   */
  sealsPerVersion: number;
  /**
   * Keys (records and their loaded versions) kept in memory, 1..10^7 (default 4096): a bounded LRU,
   * not the store. A few times the backend's handle cache (1024 unwrapped versions): beyond that a
   * miss here costs two indexed reads, small beside the unwrap in the token a cold key needs anyway.
   */
  keyCacheSize: number;
  /**
   * How long a principal's record and roles are reused before being read again, ms (default 1000).
   * Role changes made through this Kms take effect at once; changes written to the store by anyone
   * else take effect within this time. 0 reads them on every request.
   */
  principalCacheMs: number;
  /** Keys the deletion and rotation sweepers handle per call, 1..10 000 (default 1000). */
  sweepBatch: number;
  /** The region name reported as key details' `realm` (Huawei: e.g. "eu-de"; default "hsmkit"). */
  realm: string;
}

export interface KmsConfig {
  limits: KmsLimits;
  tunables: KmsTunables;
}

export const DEFAULT_LIMITS: Readonly<KmsLimits> = Object.freeze({
  customKeysPerProject: 100,
  grantsPerKey: 100,
  tagsPerKey: 10,
});

export const DEFAULT_TUNABLES: Readonly<KmsTunables> = Object.freeze({
  sealsPerVersion: 2 ** 30,
  keyCacheSize: 4096,
  principalCacheMs: 1000,
  sweepBatch: 1000,
  realm: "hsmkit",
});

/** The most seals a version may ever make (SP 800-38D §8.3): a configured rollover must stay below it. */
export const MAX_SEALS_PER_VERSION = 2 ** 32;

function integer(value: number, name: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new RangeError(`${name} must be an integer ${min}..${max}, not ${String(value)}`);
  return value;
}

/** Defaults overridden by `overrides`, validated (RangeError/TypeError), frozen. */
export function resolveKmsConfig(overrides: { limits?: Partial<KmsLimits>; tunables?: Partial<KmsTunables> } = {}): Readonly<KmsConfig> {
  const limits = { ...DEFAULT_LIMITS, ...overrides.limits };
  const tunables = { ...DEFAULT_TUNABLES, ...overrides.tunables };
  integer(limits.customKeysPerProject, "limits.customKeysPerProject", 0, 1_000_000_000);
  integer(limits.grantsPerKey, "limits.grantsPerKey", 0, 100_000);
  integer(limits.tagsPerKey, "limits.tagsPerKey", 0, 1000);
  integer(tunables.sealsPerVersion, "tunables.sealsPerVersion", 1, MAX_SEALS_PER_VERSION - 1);
  integer(tunables.keyCacheSize, "tunables.keyCacheSize", 1, 10_000_000);
  integer(tunables.principalCacheMs, "tunables.principalCacheMs", 0, 3_600_000);
  integer(tunables.sweepBatch, "tunables.sweepBatch", 1, 10_000);
  if (typeof tunables.realm !== "string" || tunables.realm.length === 0 || tunables.realm.length > 64) {
    throw new TypeError("tunables.realm must be a string of 1..64 characters");
  }
  return Object.freeze({ limits: Object.freeze(limits), tunables: Object.freeze(tunables) });
}
