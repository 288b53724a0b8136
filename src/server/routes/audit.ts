/**
 * Audit and usage routes: hsmkit's own, for the auditor role (Huawei keeps KMS's audit trail in
 * CTS, outside the KMS API, so there is no Huawei shape to follow). They sit under the same prefix
 * and follow the same conventions: POST with a closed JSON body, snake_case fields, times as strings
 * of ms since the epoch, paging by marker/limit with next_marker "" on the last page.
 *
 *   POST /audit/query    the project's audit records matching the filters, a page at a time
 *   POST /audit/export   the same selection as JSON lines (application/x-ndjson; audit/export.ts)
 *   POST /audit/verify   the whole log's chain and MACed checkpoints: intact, or the first bad record
 *   POST /key-usage      a key's successful operations by action, with counts and last use
 *
 * The export's body is text, which fastify sends as it is, past the response schema's allowlist:
 * its lines are built by audit/export.ts's recordLine/headerLine from named fields, and an audit
 * record holds no key material or plaintext to begin with (kms/types.ts AuditEvent.detail).
 */
import type * as Api from "../../kms/api.js";
import type { AuditPage, AuditQuery } from "../../kms/store/store.js";
import type { AuditRecord, UsageRecord } from "../../kms/types.js";
import { bytes, dateString, integerString, object, SEQUENCE, string, type JsonSchema, type KmsRoute } from "../route.js";
import { KEY_ID, KEY_REQUEST, keyRequest } from "./keys.js";

const TAG = "Audit";

/** A time filter: ms since the epoch, as a string of digits (or a JSON integer). */
const MS: JsonSchema = {
  anyOf: [{ type: "string", pattern: "^[0-9]{1,15}$" }, { type: "integer", minimum: 0, maximum: 999_999_999_999_999 }],
};

const FILTERS = {
  key_id: { ...KEY_ID, description: "The key id as recorded (a UUID; a request refused before its key was resolved carries the reference it gave)" },
  action: string({ pattern: "^[A-Za-z][A-Za-z0-9]{0,63}$", description: "An audit action, e.g. encryptData, createKey (kms/types.ts AUDIT_ACTIONS)" }),
  outcome: string({ enum: ["success", "failure", "denied"] }),
  from: { ...MS, description: "time >= from (ms since the epoch)" },
  to: { ...MS, description: "time < to (ms since the epoch)" },
};

function filters(body: Record<string, unknown>): Omit<AuditQuery, "projectId" | "afterSeq" | "limit"> {
  const ms = (name: string): number | undefined => (body[name] === undefined ? undefined : Number(body[name]));
  return {
    keyId: body["key_id"] as string | undefined,
    action: body["action"] as string | undefined,
    outcome: body["outcome"] as AuditQuery["outcome"],
    from: ms("from"),
    to: ms("to"),
  };
}

const nullableString = (description?: string): JsonSchema => ({ type: "string", nullable: true, ...(description ? { description } : {}) });

const RECORD_SCHEMA = object({
  seq: { type: "integer", description: "1, 2, … without gaps, in commit order" },
  time: string({ description: "ms since the epoch" }),
  request_id: string(),
  project_id: nullableString(),
  principal_id: nullableString("null when authentication failed"),
  source: string({ description: "Client address, cli, library or scheduler" }),
  action: string(),
  key_id: nullableString("null for operations on no key"),
  outcome: string({ description: "success, failure or denied" }),
  error_code: nullableString("KMS.XXXX of a failure or denial"),
  detail: nullableString(),
  hash: string({ description: "hex SHA-256 chain value after this record" }),
});

function recordBody(r: AuditRecord): Record<string, unknown> {
  return {
    seq: r.seq,
    time: dateString(r.time),
    request_id: r.requestId,
    project_id: r.projectId,
    principal_id: r.principalId,
    source: r.source,
    action: r.action,
    key_id: r.keyId,
    outcome: r.outcome,
    error_code: r.errorCode,
    detail: r.detail,
    hash: bytes(r.hash).toString("hex"),
  };
}

export const AUDIT_ROUTES: KmsRoute[] = [
  {
    method: "POST", path: "/audit/query", operationId: "QueryAuditLog", tag: TAG, call: "queryAuditLog",
    summary: "hsmkit (auditor): the project's audit records matching key_id, action, outcome and the time window [from, to), " +
      "in seq order, a page at a time (limit 1-1000, default 100; marker = the previous page's next_marker)",
    body: object({
      ...FILTERS,
      limit: integerString("1-1000 (default 100)"),
      marker: string({ pattern: "^([0-9]{1,15}(:[0-9]{1,15})?)?$", description: "The previous page's next_marker (the last seq read, and the end of the log as the first page found it)" }),
      sequence: SEQUENCE,
    }),
    response: object({
      records: { type: "array", items: RECORD_SCHEMA },
      next_marker: string({ description: "Empty on the last page" }),
      truncated: string({ description: "true: more pages follow" }),
    }),
    toRequest: ({ body }) => {
      // "<after>:<through>": a page reads on from the last record of the previous one, and only as
      // far as the log reached when the first page was read (store.ts AuditQuery.throughSeq).
      const [after, through] = ((body["marker"] as string | undefined) ?? "").split(":");
      return {
        ...filters(body),
        limit: body["limit"] === undefined ? undefined : Number(body["limit"]),
        afterSeq: after === undefined || after === "" ? undefined : Number(after),
        throughSeq: through === undefined ? undefined : Number(through),
      } satisfies Omit<AuditQuery, "projectId">;
    },
    toResponse: (result) => {
      const r = result as AuditPage;
      return { records: r.records.map(recordBody), next_marker: r.nextSeq === null ? "" : `${r.nextSeq}:${r.throughSeq}`, truncated: String(r.nextSeq !== null) };
    },
  },
  {
    method: "POST", path: "/audit/export", operationId: "ExportAuditLog", tag: TAG, call: "exportAuditLog",
    summary: "hsmkit (auditor): the project's audit records matching the filters as JSON lines (application/x-ndjson): " +
      "a header line, then one record per line (docs: src/kms/audit/export.ts); at most 100 000 lines (KMS.0203 beyond: narrow from/to)",
    contentType: "application/x-ndjson",
    body: object({ ...FILTERS, sequence: SEQUENCE }),
    response: { type: "string", description: "JSON lines" },
    toRequest: ({ body }) => filters(body),
    toResponse: (result) => {
      const lines = (result as { lines: string[] }).lines;
      return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
    },
  },
  {
    method: "POST", path: "/audit/verify", operationId: "VerifyAuditLog", tag: TAG, call: "verifyAuditLog",
    summary: "hsmkit (auditor): verify the whole audit log (hash chain and MACed checkpoints, after a checkpoint of everything so far). " +
      "ok true with what was covered, or ok false with the problem and the first record that cannot be trusted",
    body: object({ sequence: SEQUENCE }),
    response: object({
      ok: { type: "boolean" },
      records: { type: "integer", description: "Records checked (intact ones before the problem, when not ok)" },
      checkpoints: { type: "integer" },
      head_seq: { type: "integer" },
      head_hash: string({ description: "hex" }),
      last_checkpoint_seq: { type: "integer" },
      unanchored: { type: "integer", description: "Records after the newest checkpoint" },
      recovery_checkpoints: { type: "array", items: { type: "integer" } },
      problem: string({ description: "record-hash, sequence-gap, checkpoint-mismatch, checkpoint-mac, truncated, …" }),
      first_bad_seq: { type: "integer", nullable: true },
      checkpoint_index: { type: "integer", nullable: true },
      message: string(),
    }),
    toRequest: () => ({}),
    toResponse: (result) => {
      const v = result as Api.AuditVerification;
      if (v.ok) {
        return {
          ok: true, records: v.records, checkpoints: v.checkpoints, head_seq: v.headSeq,
          head_hash: bytes(v.headHash).toString("hex"),
          last_checkpoint_seq: v.lastCheckpointSeq, unanchored: v.unanchored, recovery_checkpoints: v.recoveryCheckpoints,
        };
      }
      return { ok: false, records: v.records, problem: v.problem, first_bad_seq: v.firstBadSeq, checkpoint_index: v.checkpointIndex, message: v.message };
    },
  },
  {
    method: "POST", path: "/key-usage", operationId: "ShowKeyUsage", tag: TAG, call: "getKeyUsage",
    summary: "hsmkit (key administrators, auditors): a key's successful operations by audit action, with their count and last use",
    body: KEY_REQUEST,
    response: object({
      usage: { type: "array", items: object({ action: string(), count: { type: "integer" }, last_used_time: string({ description: "ms since the epoch" }) }) },
    }),
    toRequest: ({ body }) => keyRequest(body),
    toResponse: (result) => ({
      usage: (result as UsageRecord[]).map((u) => ({ action: u.action, count: u.count, last_used_time: dateString(u.lastUsedAt) })),
    }),
  },
];
