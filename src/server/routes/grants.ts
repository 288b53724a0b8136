/**
 * Grant routes (Huawei KMS v1.0): create-grant, list-grants, list-retirable-grants, revoke-grant,
 * retire-grant. Fields as the Huawei SDK's models (create_grant_request_body.py, grants.py,
 * list_grants_response.py): creation_date a string of ms, truncated "true"/"false", total an
 * integer; revoke and retire answer an empty object. Absent optional values (name, retiring
 * principal, an unknown issuer) are "".
 */
import type * as Api from "../../kms/api.js";
import { GRANT_OPERATIONS } from "../../kms/types.js";
import { dateString, integerString, object, PAGE_LIMIT, SEQUENCE, string, type JsonSchema, type KmsRoute } from "../route.js";
import { KEY_ID } from "./keys.js";

const TAG = "Grants";

/** grantee_principal / retiring_principal (create_grant_request_body.py). */
const PRINCIPAL = string({ pattern: "^[a-zA-Z0-9]{1,64}$", description: "A user id (type user) or an account id (type domain)" });
const GRANT_ID = string({ pattern: "^[A-Fa-f0-9]{64}$", description: "64 hex digits" });
const MARKER = string({ max: 32, description: "The previous page's next_marker" });

const GRANT_SCHEMA: JsonSchema = object({
  key_id: string(),
  grant_id: string(),
  grantee_principal: string(),
  grantee_principal_type: string({ description: "user or domain" }),
  operations: { type: "array", items: { type: "string" } },
  issuing_principal: string({ description: "Who created the grant" }),
  creation_date: string({ description: "ms since the epoch" }),
  name: string(),
  retiring_principal: string(),
});

const GRANT_LIST_SCHEMA: JsonSchema = object({
  grants: { type: "array", items: GRANT_SCHEMA },
  next_marker: string({ description: "Empty on the last page" }),
  truncated: string({ description: "true: more pages follow" }),
  total: { type: "integer" },
});

function grantBody(g: Api.GrantDetails): Record<string, unknown> {
  return {
    key_id: g.keyId,
    grant_id: g.grantId,
    grantee_principal: g.granteePrincipal,
    grantee_principal_type: g.granteePrincipalType,
    operations: g.operations,
    issuing_principal: g.issuingPrincipal ?? "",
    creation_date: dateString(g.creationDate),
    name: g.name ?? "",
    retiring_principal: g.retiringPrincipal ?? "",
  };
}

function grantList(result: unknown): unknown {
  const r = result as Api.ListGrantsResult;
  return { grants: r.grants.map(grantBody), next_marker: r.nextMarker ?? "", truncated: String(r.truncated), total: r.total };
}

const GRANT_REQUEST = object({ key_id: KEY_ID, grant_id: GRANT_ID, sequence: SEQUENCE }, ["key_id", "grant_id"]);

function grantRequest(body: Record<string, unknown>): Api.GrantRequest {
  return { keyId: body["key_id"] as string, grantId: body["grant_id"] as string };
}

const str = (body: Record<string, unknown>, name: string): string | undefined => body[name] as string | undefined;

export const GRANT_ROUTES: KmsRoute[] = [
  {
    method: "POST", path: "/create-grant", operationId: "CreateGrant", tag: TAG, call: "createGrant",
    summary: "Let a principal (or every principal of an account) perform listed operations on a key; not create-grant alone, not on a default key",
    body: object({
      key_id: KEY_ID,
      grantee_principal: PRINCIPAL,
      grantee_principal_type: string({ enum: ["user", "domain"], description: "Default user" }),
      operations: { type: "array", minItems: 1, maxItems: GRANT_OPERATIONS.length, items: string({ enum: [...GRANT_OPERATIONS] }) },
      name: string({ pattern: "^[a-zA-Z0-9:/_-]{1,255}$" }),
      retiring_principal: PRINCIPAL,
      sequence: SEQUENCE,
    }, ["key_id", "grantee_principal", "operations"]),
    response: object({ grant_id: string({ description: "64 hex digits" }) }),
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string,
      granteePrincipal: body["grantee_principal"] as string,
      granteePrincipalType: str(body, "grantee_principal_type") as Api.CreateGrantRequest["granteePrincipalType"],
      operations: body["operations"] as Api.CreateGrantRequest["operations"],
      name: str(body, "name"),
      retiringPrincipal: str(body, "retiring_principal"),
    } satisfies Api.CreateGrantRequest),
    toResponse: (result) => ({ grant_id: (result as Api.CreateGrantResult).grantId }),
  },
  {
    method: "POST", path: "/list-grants", operationId: "ListGrants", tag: TAG, call: "listGrants",
    summary: "A key's grants, a page at a time (marker/limit)",
    body: object({ key_id: KEY_ID, limit: PAGE_LIMIT, marker: MARKER, sequence: SEQUENCE }, ["key_id"]),
    response: GRANT_LIST_SCHEMA,
    toRequest: ({ body }) => ({
      keyId: body["key_id"] as string, limit: body["limit"] as Api.IntegerField | undefined, marker: str(body, "marker"),
    } satisfies Api.ListGrantsRequest),
    toResponse: grantList,
  },
  {
    method: "POST", path: "/list-retirable-grants", operationId: "ListRetirableGrants", tag: TAG, call: "listRetirableGrants",
    summary: "The project's grants whose retiring principal is the caller, a page at a time (marker/limit)",
    body: object({ limit: PAGE_LIMIT, marker: MARKER, sequence: SEQUENCE }),
    response: GRANT_LIST_SCHEMA,
    toRequest: ({ body }) => ({ limit: body["limit"] as Api.IntegerField | undefined, marker: str(body, "marker") } satisfies Api.ListRetirableGrantsRequest),
    toResponse: grantList,
  },
  {
    method: "POST", path: "/revoke-grant", operationId: "CancelGrant", tag: TAG, call: "revokeGrant",
    summary: "Revoke a grant (key administrators)", body: GRANT_REQUEST, response: object({}),
    toRequest: ({ body }) => grantRequest(body), toResponse: () => ({}),
  },
  {
    method: "POST", path: "/retire-grant", operationId: "CancelSelfGrant", tag: TAG, call: "retireGrant",
    summary: "Retire a grant (its issuer, its retiring principal, or its grantee holding retire-grant)", body: GRANT_REQUEST, response: object({}),
    toRequest: ({ body }) => grantRequest(body), toResponse: () => ({}),
  },
];
