/**
 * Quotas: how many custom keys a project may hold, grants a key may carry and tags a key may bear
 * (config.ts KmsLimits, with their sources). They are enforced inside the store's transactions
 * (maxCustomKeys, maxGrantsPerKey, maxTagsPerKey), so concurrent requests cannot both pass them:
 * KMS.1105 too many keys, KMS.2404 too many grants on the key, KMS.0409 too many tags.
 *
 * Reported in Huawei's user-quotas shape (OTC api-ref "Querying the Quota of a User"):
 *
 *     { quotas: { resources: [ { type: "CMK", used, quota }, { type: "grant_per_CMK", used, quota } ] } }
 *
 * plus hsmkit's `tag_per_CMK` in the same form. For the per-key quotas, `used` is the most any one
 * key of the project uses (the figure that decides whether the next grant or tag fits somewhere).
 * Default keys count for neither CMK figure (OTC: "The quota does not include Default Master Keys").
 */
import type { KmsLimits } from "./config.js";
import { isKmsError } from "./errors.js";
import type { KmsStore } from "./store/store.js";

export type QuotaType = "CMK" | "grant_per_CMK" | "tag_per_CMK";

export interface QuotaResource {
  type: QuotaType;
  used: number;
  quota: number;
}

export interface UserQuotas {
  quotas: { resources: QuotaResource[] };
}

/** Keys read per page while scanning a project. */
const PAGE = 1000;

/**
 * The project's quotas and their use. Scans the project's keys for the per-key figures (one page of
 * 1000 keys and two counts per key at a time): a management call, linear in the project's keys.
 */
export async function userQuotas(store: KmsStore, projectId: string, limits: KmsLimits): Promise<UserQuotas> {
  const customKeys = await store.keys.count(projectId, { customOnly: true });
  let grants = 0;
  let tags = 0;
  let marker: string | undefined;
  for (;;) {
    const page = await store.keys.list(projectId, { limit: PAGE, marker });
    for (const key of page.items) {
      try {
        grants = Math.max(grants, await store.grants.count(projectId, key.keyId));
        tags = Math.max(tags, await store.tags.count(projectId, key.keyId));
      } catch (error) {
        // Deleted while we scanned: it holds nothing any more.
        if (!isKmsError(error, "KMS.0207")) throw error;
      }
    }
    if (page.nextMarker === null) break;
    marker = page.nextMarker;
  }
  return {
    quotas: {
      resources: [
        { type: "CMK", used: customKeys, quota: limits.customKeysPerProject },
        { type: "grant_per_CMK", used: grants, quota: limits.grantsPerKey },
        { type: "tag_per_CMK", used: tags, quota: limits.tagsPerKey },
      ],
    },
  };
}
