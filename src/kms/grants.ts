/**
 * Grants: a key's administrator (or a grantee holding create-grant) lets one principal — or every
 * principal of an account — perform listed operations on one key. Rules from Huawei (OTC api-ref
 * "Creating a Grant", "Retiring a Grant"; shared/reference/kms-apis.md §1.2):
 * - operations are a subset of GRANT_OPERATIONS, and create-grant cannot be the only one
 *   (KMS.2401);
 * - grantee_principal and retiring_principal match `^[a-zA-Z0-9]{1,64}$` (KMS.2402); name matches
 *   `^[a-zA-Z0-9:/_-]{1,255}$`; grant ids are 64 hex digits (KMS.2501 otherwise);
 * - at most `grantsPerKey` grants per key (KMS.2404), none on default keys (KMS.0211);
 * - a grant is retired by its issuer, its retiring principal, or its grantee when the grant
 *   includes retire-grant; revoked by a key administrator.
 * A grantee holding create-grant may pass on only operations it holds itself (hsmkit's rule, as
 * AWS KMS has it: a grant cannot widen access).
 */
import { KmsError } from "./errors.js";
import { GRANT_OPERATIONS, type GranteePrincipalType, type GrantOperation, type GrantRecord } from "./types.js";

const PRINCIPAL = /^[a-zA-Z0-9]{1,64}$/u;
const NAME = /^[a-zA-Z0-9:/_-]{1,255}$/u;
const GRANT_ID = /^[A-Fa-f0-9]{64}$/u;

/** grantee_principal / retiring_principal. KMS.2402. */
export function checkPrincipalId(value: unknown, name: string): string {
  if (typeof value !== "string" || !PRINCIPAL.test(value)) throw new KmsError("KMS.2402", `${name} must match ^[a-zA-Z0-9]{1,64}$`);
  return value;
}

/** grantee_principal_type: user (default) or domain. KMS.0308. */
export function checkGranteeType(value: unknown): GranteePrincipalType {
  if (value === undefined || value === "user") return "user";
  if (value === "domain") return "domain";
  throw new KmsError("KMS.0308", "grantee_principal_type must be user or domain");
}

/** operations: a non-empty subset of GRANT_OPERATIONS, not create-grant alone. KMS.0308 / KMS.2401. */
export function checkGrantOperations(value: unknown): GrantOperation[] {
  if (!Array.isArray(value) || value.length === 0) throw new KmsError("KMS.0308", "operations must be a non-empty list");
  const operations = new Set<GrantOperation>();
  for (const operation of value as unknown[]) {
    if (typeof operation !== "string" || !(GRANT_OPERATIONS as readonly string[]).includes(operation)) {
      throw new KmsError("KMS.0308", `unknown grant operation ${String(operation)}`);
    }
    operations.add(operation as GrantOperation);
  }
  if (operations.size === 1 && operations.has("create-grant")) throw new KmsError("KMS.2401");
  return GRANT_OPERATIONS.filter((operation) => operations.has(operation));
}

/** name (optional). KMS.0308. */
export function checkGrantName(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || !NAME.test(value)) throw new KmsError("KMS.0308", "a grant name must match ^[a-zA-Z0-9:/_-]{1,255}$");
  return value;
}

/** grant_id. KMS.2501. */
export function checkGrantId(value: unknown): string {
  if (typeof value !== "string" || !GRANT_ID.test(value)) throw new KmsError("KMS.2501", "a grant id is 64 hex digits");
  return value.toLowerCase();
}

/** Whether `principalId` (of account `domainId`) may retire the grant. */
export function mayRetire(grant: GrantRecord, principalId: string, domainId: string): boolean {
  if (grant.creator === principalId || grant.retiringPrincipal === principalId) return true;
  const grantee = grant.granteePrincipalType === "user" ? grant.granteePrincipal === principalId : grant.granteePrincipal === domainId;
  return grantee && grant.operations.includes("retire-grant");
}
