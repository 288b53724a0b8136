/**
 * Who may do what: the operation table (Huawei operation → audit action, roles, grant operation),
 * the request context every call carries, and the checks behind every call — the principal exists
 * and is enabled, then a role in the request's project allows the operation, or else a grant on the
 * key does.
 *
 * Roles (DESIGN.md "Projects and access"; types.ts ROLES) separate duties: a key administrator
 * manages keys and grants but cannot use them (nor grant itself their use: kms.ts createGrant); a
 * cryptographic user uses keys but cannot change
 * them; an auditor reads metadata and the audit log. Grants add listed operations on one key for
 * one principal (type "user") or for every principal of an account (type "domain"), whatever their
 * roles — also from another project or account, by naming the key's project in the request.
 *
 * What a refusal reveals: a principal whose roles do not allow an operation is refused with
 * KMS.0306 whether or not the key exists (grants are looked up by (project, key), and a missing key
 * has none), so nobody without access learns which keys exist. A principal whose role allows the
 * operation is told KMS.0207 for a missing key — and a key of another project is missing.
 */
import { performance } from "node:perf_hooks";
import { KmsError } from "./errors.js";
import type { GrantOperation, GrantRecord, PrincipalRecord, Role } from "./types.js";
import { DEFAULT_KEY_SERVICES, isDefaultKeyService, type DefaultKeyService } from "./default-keys.js";
import type { KmsStore } from "./store/store.js";

/** What every Kms call carries: who asks, in which project, for which request, from where. */
export interface RequestContext {
  /** The project the request addresses (Huawei's `{project_id}` in the URL). */
  projectId: string;
  /** The authenticated principal (the server authenticates; the Kms checks it exists and is enabled). */
  principalId: string;
  /** X-Request-Id: ties the audit record to the request. */
  requestId: string;
  /** Where the request came from: a client address, "cli", "library". */
  source: string;
  /**
   * The cloud service making the request on the user's behalf, if any: a sealing request that names
   * no key then uses `<service>/default` (created on first use; default-keys.ts).
   */
  service?: DefaultKeyService | undefined;
}

/** Longest context field (characters). */
const MAX_CONTEXT_FIELD = 256;

/** Checks the request context's shape; a malformed one is the caller's programming error (KMS.0308). */
function checkContextField(value: unknown, name: string): void {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_CONTEXT_FIELD) {
    throw new KmsError("KMS.0308", `request context ${name} must be a string of 1..${MAX_CONTEXT_FIELD} characters`);
  }
}

export function checkRequestContext(ctx: RequestContext): void {
  if (typeof ctx !== "object" || ctx === null) throw new KmsError("KMS.0308", "the request context must be an object");
  // Written out, not looped over the names: every request passes here, and a keyed load by a
  // name from a list is a megamorphic lookup where a property load is a fixed-offset read.
  checkContextField(ctx.projectId, "projectId");
  checkContextField(ctx.principalId, "principalId");
  checkContextField(ctx.requestId, "requestId");
  checkContextField(ctx.source, "source");
  if (ctx.service !== undefined && !isDefaultKeyService(ctx.service)) {
    throw new KmsError("KMS.0308", `request context service must be one of ${DEFAULT_KEY_SERVICES.join(", ")}`);
  }
}

/** Who is allowed: roles, and the grant operation that allows it on one key (null: no grant can). */
interface OperationRule {
  action: string;
  roles: readonly Role[];
  grant: GrantOperation | null;
}

const ADMIN: readonly Role[] = ["key_admin"];
const CRYPTO: readonly Role[] = ["crypto_user"];
const READERS: readonly Role[] = ["key_admin", "crypto_user", "auditor"];
const ADMIN_AUDITOR: readonly Role[] = ["key_admin", "auditor"];
const AUDITOR: readonly Role[] = ["auditor"];
const NOBODY: readonly Role[] = [];

/**
 * Every operation: Huawei's operation name (the path after `/v1.0/{project_id}/kms/`, or a name in
 * its style for the tag and audit operations), the audit action (Huawei CTS names where CTS has
 * one; types.ts AUDIT_ACTIONS), the roles that may perform it, and the grant operation that allows
 * it on one key.
 *
 * | operation                          | roles                        | grant                |
 * |------------------------------------|------------------------------|----------------------|
 * | create-key, update-*, enable/disable, schedule/cancel deletion, rotation changes, rotate-on-demand, revoke-grant, tags | key_admin | — |
 * | create-grant                       | key_admin                    | create-grant         |
 * | describe-key                       | key_admin, crypto_user, auditor | describe-key      |
 * | list-keys, list tags               | key_admin, crypto_user, auditor | —                 |
 * | user-quotas, user-instances, get-key-rotation-status, list-grants, key usage | key_admin, auditor | — |
 * | encrypt-data, decrypt-data, create-datakey(-without-plaintext), encrypt-datakey, decrypt-datakey | crypto_user | the same name |
 * | re-encrypt                         | crypto_user                  | decrypt on the source key and encrypt on the destination (see kms.ts) |
 * | gen-random                         | crypto_user                  | —                    |
 * | retire-grant                       | — (the grant's issuer, retiring principal, or grantee holding retire-grant) | retire-grant |
 * | list-retirable-grants              | — (any enabled principal: it lists their own) | — |
 * | audit query, export, verify        | auditor                      | —                    |
 */
export const OPERATIONS = {
  "create-key": { action: "createKey", roles: ADMIN, grant: null },
  "describe-key": { action: "describeKey", roles: READERS, grant: "describe-key" },
  "list-keys": { action: "listKeys", roles: READERS, grant: null },
  "update-key-alias": { action: "updateKeyAlias", roles: ADMIN, grant: null },
  "update-key-description": { action: "updateKeyDescription", roles: ADMIN, grant: null },
  "enable-key": { action: "enableKey", roles: ADMIN, grant: null },
  "disable-key": { action: "disableKey", roles: ADMIN, grant: null },
  "schedule-key-deletion": { action: "scheduleKeyDeletion", roles: ADMIN, grant: null },
  "cancel-key-deletion": { action: "cancelKeyDeletion", roles: ADMIN, grant: null },
  "user-quotas": { action: "getUserQuotas", roles: ADMIN_AUDITOR, grant: null },
  "user-instances": { action: "getUserInstances", roles: ADMIN_AUDITOR, grant: null },
  "encrypt-data": { action: "encryptData", roles: CRYPTO, grant: "encrypt-data" },
  "decrypt-data": { action: "decryptData", roles: CRYPTO, grant: "decrypt-data" },
  "re-encrypt": { action: "reEncryptData", roles: CRYPTO, grant: null },
  "create-datakey": { action: "createDataKey", roles: CRYPTO, grant: "create-datakey" },
  "create-datakey-without-plaintext": { action: "createDataKeyWithoutPlaintext", roles: CRYPTO, grant: "create-datakey-without-plaintext" },
  "encrypt-datakey": { action: "encryptDatakey", roles: CRYPTO, grant: "encrypt-datakey" },
  "decrypt-datakey": { action: "decryptDatakey", roles: CRYPTO, grant: "decrypt-datakey" },
  "gen-random": { action: "genRandom", roles: CRYPTO, grant: null },
  "enable-key-rotation": { action: "enableKeyRotation", roles: ADMIN, grant: null },
  "disable-key-rotation": { action: "disableKeyRotation", roles: ADMIN, grant: null },
  "update-key-rotation-interval": { action: "updateKeyRotationInterval", roles: ADMIN, grant: null },
  "get-key-rotation-status": { action: "getKeyRotationStatus", roles: ADMIN_AUDITOR, grant: null },
  "rotate-on-demand": { action: "rotateKeyOnDemand", roles: ADMIN, grant: null },
  "create-grant": { action: "createGrant", roles: ADMIN, grant: "create-grant" },
  "list-grants": { action: "listGrants", roles: ADMIN_AUDITOR, grant: null },
  "list-retirable-grants": { action: "listRetirableGrants", roles: NOBODY, grant: null },
  "revoke-grant": { action: "revokeGrant", roles: ADMIN, grant: null },
  "retire-grant": { action: "retireGrant", roles: NOBODY, grant: "retire-grant" },
  "create-key-tag": { action: "dealUnifiedTags", roles: ADMIN, grant: null },
  "delete-key-tag": { action: "dealUnifiedTags", roles: ADMIN, grant: null },
  "batch-key-tags": { action: "dealUnifiedTags", roles: ADMIN, grant: null },
  "list-key-tags": { action: "listKeyTags", roles: READERS, grant: null },
  "list-project-tags": { action: "listProjectTags", roles: READERS, grant: null },
  "list-keys-by-tags": { action: "listKmsByTags", roles: READERS, grant: null },
  "key-usage": { action: "getKeyUsage", roles: ADMIN_AUDITOR, grant: null },
  "query-audit-log": { action: "queryAuditLog", roles: AUDITOR, grant: null },
  "export-audit-log": { action: "exportAuditLog", roles: AUDITOR, grant: null },
  "verify-audit-log": { action: "verifyAuditLog", roles: AUDITOR, grant: null },
} as const satisfies Record<string, OperationRule>;

export type KmsOperation = keyof typeof OPERATIONS;

/** The principal making a request, with their roles in the request's project. */
export interface Caller {
  principal: PrincipalRecord;
  roles: ReadonlySet<Role>;
}

interface CachedCaller {
  caller: Caller | null;
  at: number;
}

/** KMS.0306, the one refusal (audited with outcome "denied"). */
export function denied(detail: string): KmsError {
  return new KmsError("KMS.0306", detail);
}

/** Whether a refusal is an authorization one (the audit outcome "denied" rather than "failure"). */
export function isDenial(error: unknown): boolean {
  return error instanceof KmsError && (error.code === "KMS.0306" || error.code === "KMS.0307");
}

/**
 * The access checks, over the store. Principals and their roles are cached for
 * `principalCacheMs` (config.ts) and dropped at once when changed through this object.
 */
export class Access {
  readonly #store: KmsStore;
  readonly #cacheMs: number;
  /** By principal, then project: a lookup joins no strings, and a principal's entries go together. */
  readonly #callers = new Map<string, Map<string, CachedCaller>>();
  #cachedCount = 0;
  /**
   * Bumped by every invalidate(). A lookup caches what it read only if no invalidation happened
   * while it awaited the store: otherwise a read that began before a change (the principal
   * disabled, a role removed) and answered after it would cache the old state for `cacheMs`.
   */
  #generation = 0;

  /** `cacheMs` is measured on the monotonic clock (performance.now), not the Kms's business clock. */
  constructor(store: KmsStore, cacheMs: number) {
    this.#store = store;
    this.#cacheMs = cacheMs;
  }

  /** The principal and their roles in `projectId`; KMS.0306 for an unknown or disabled principal. */
  async caller(principalId: string, projectId: string): Promise<Caller> {
    const now = performance.now();
    const cached = this.#callers.get(principalId)?.get(projectId);
    let caller: Caller | null;
    if (cached !== undefined && now - cached.at < this.#cacheMs) {
      caller = cached.caller;
    } else {
      const generation = this.#generation;
      const principal = await this.#store.principals.get(principalId);
      caller = principal === undefined ? null : {
        principal,
        roles: new Set((await this.#store.principals.listRoles(principalId, projectId)).map((role) => role.role)),
      };
      if (this.#cacheMs > 0 && generation === this.#generation) {
        if (this.#cachedCount >= 10_000) this.invalidate();
        let projects = this.#callers.get(principalId);
        if (projects === undefined) this.#callers.set(principalId, (projects = new Map()));
        if (!projects.has(projectId)) this.#cachedCount++;
        projects.set(projectId, { caller, at: now });
      }
    }
    if (caller === null) throw denied(`unknown principal ${principalId}`);
    if (caller.principal.disabled) throw denied(`principal ${principalId} is disabled`);
    return caller;
  }

  /**
   * The caller when the cache holds them, fresh, known and enabled — without a promise, for the
   * request path; undefined otherwise (then caller() decides, refusals included).
   */
  cached(principalId: string, projectId: string): Caller | undefined {
    const cached = this.#callers.get(principalId)?.get(projectId);
    if (cached === undefined || cached.caller === null || cached.caller.principal.disabled) return undefined;
    return performance.now() - cached.at < this.#cacheMs ? cached.caller : undefined;
  }

  /** Whether one of the caller's roles allows `operation`. */
  roleAllows(caller: Caller, operation: KmsOperation): boolean {
    const roles: readonly Role[] = OPERATIONS[operation].roles;
    for (const role of roles) if (caller.roles.has(role)) return true;
    return false;
  }

  /**
   * The caller's grants on (projectId, keyId): those naming the principal (type user) and those
   * naming their account (type domain). None for a missing key, or a key of another project.
   */
  async grantsOf(caller: Caller, projectId: string, keyId: string): Promise<GrantRecord[]> {
    const principal = caller.principal;
    const byUser = await this.#store.grants.findForGrantee(projectId, keyId, principal.principalId);
    // A principal whose id is its account's id: the one lookup holds both kinds of grant.
    const byDomain = principal.domainId === principal.principalId ? byUser : await this.#store.grants.findForGrantee(projectId, keyId, principal.domainId);
    return [
      ...byUser.filter((grant) => grant.granteePrincipalType === "user"),
      ...byDomain.filter((grant) => grant.granteePrincipalType === "domain"),
    ];
  }

  /** The grant operations the caller holds on the key (the union of their grants). */
  async grantedOperations(caller: Caller, projectId: string, keyId: string): Promise<Set<GrantOperation>> {
    const operations = new Set<GrantOperation>();
    for (const grant of await this.grantsOf(caller, projectId, keyId)) for (const operation of grant.operations) operations.add(operation);
    return operations;
  }

  /** Whether the caller holds a grant allowing `operation` (a grant operation) on the key. */
  async grantAllows(caller: Caller, projectId: string, keyId: string, operation: GrantOperation): Promise<boolean> {
    for (const grant of await this.grantsOf(caller, projectId, keyId)) if (grant.operations.includes(operation)) return true;
    return false;
  }

  /** Forgets cached principals (all, or one): after a change of roles or of the principal. */
  invalidate(principalId?: string): void {
    this.#generation++;
    if (principalId === undefined) {
      this.#callers.clear();
      this.#cachedCount = 0;
      return;
    }
    const projects = this.#callers.get(principalId);
    if (projects === undefined) return;
    this.#cachedCount -= projects.size;
    this.#callers.delete(principalId);
  }
}
