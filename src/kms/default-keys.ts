/**
 * Default keys (Huawei "Default Master Keys"): one key per cloud service and project, aliased
 * `<service>/default`, created the first time that service asks the KMS to encrypt in the project
 * (OTC umn/source/faqs/what_is_a_default_key.rst; shared/reference/kms-apis.md §1.3).
 *
 * What sets them apart, and where it is enforced:
 * - created on first use by a sealing request that names `<service>/default` (or carries the
 *   service in its request context), with the store's `existingAlias: "return"` so that concurrent
 *   first uses make one key (kms.ts);
 * - listed like any key, with `defaultKeyFlag` true (details.ts);
 * - never disabled, scheduled for deletion, re-aliased, re-described, rotated by request, granted
 *   on or tagged (KMS.0211, lifecycle.ts), and not counted in the custom-key quota (the store's
 *   maxCustomKeys);
 * - a custom key may not take an alias ending in `/default` (KMS.1101, lifecycle.ts).
 *
 * IV safety: a default key cannot be rotated by request, yet its versions are subject to the same
 * random-IV bound as every key (config.ts sealsPerVersion). The service therefore adds a version to
 * a default key by itself when the current one has made that many seals — the one rotation a
 * default key ever sees. It is invisible to clients (every version still decrypts; the key's
 * rotation stays "disabled") and recorded in the audit log as `autoRotateKey` with
 * `reason=seal-limit`.
 */

/** The services that have a default key (Huawei's list). */
export const DEFAULT_KEY_SERVICES = ["obs", "evs", "ims", "sfs", "rds", "dds"] as const;

export type DefaultKeyService = (typeof DEFAULT_KEY_SERVICES)[number];

/** The alias suffix that marks a default key. */
export const DEFAULT_ALIAS_SUFFIX = "/default";

/** `<service>/default`. */
export function defaultAlias(service: DefaultKeyService): string {
  return `${service}${DEFAULT_ALIAS_SUFFIX}`;
}

/** The service whose default key `alias` names, or undefined when it names none. */
export function defaultKeyService(alias: string): DefaultKeyService | undefined {
  if (!alias.endsWith(DEFAULT_ALIAS_SUFFIX)) return undefined;
  const service = alias.slice(0, -DEFAULT_ALIAS_SUFFIX.length);
  return (DEFAULT_KEY_SERVICES as readonly string[]).includes(service) ? (service as DefaultKeyService) : undefined;
}

/** Whether `service` is one of DEFAULT_KEY_SERVICES. */
export function isDefaultKeyService(service: unknown): service is DefaultKeyService {
  return typeof service === "string" && (DEFAULT_KEY_SERVICES as readonly string[]).includes(service);
}

/** The description a default key is created with. */
export function defaultKeyDescription(service: DefaultKeyService): string {
  return `Default master key of ${service}, created on its first use`;
}
