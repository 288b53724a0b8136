/**
 * The audit log as JSON lines, one JSON object per line, in this order:
 *
 *   {"type":"header","format":"hsmkit-audit-export","version":1,"logId":"<32 hex>","exportedAt":"<ISO 8601>","complete":true}
 *   {"type":"checkpoint","index":1,"seq":1024,"hash":"<64 hex>","time":"<ISO 8601>","reason":"count","mac":"<hex>"}   …
 *   {"type":"record","seq":1,"time":"<ISO 8601>","requestId":"…","projectId":"…"|null,"principalId":"…"|null,
 *    "source":"…","action":"createKey","keyId":"…"|null,"outcome":"success","errorCode":null,"detail":null,"hash":"<64 hex>"}   …
 *
 * Times are ISO 8601 UTC with milliseconds, which is exactly the stored millisecond value. A
 * complete export (no filter) carries every record from seq 1 and the checkpoints up to its last
 * record, so it verifies on its own (verifyAuditExport) with the MAC key — no database needed. A
 * filtered export ("complete": false) is for reading: its records are a selection, so the chain
 * cannot be recomputed across it.
 */
import type { AuditCheckpoint, AuditOutcome, AuditRecord, CheckpointReason } from "../types.js";
import { AUDIT_OUTCOMES, HASH_LENGTH, LOG_ID_LENGTH } from "./chain.js";
import { CHECKPOINT_REASONS, type AuditMac } from "./checkpoints.js";
import { ChainVerifier, type AuditVerification, type VerifyOptions } from "./verify.js";

export const EXPORT_FORMAT = "hsmkit-audit-export";
export const EXPORT_VERSION = 1;

export interface ExportHeader {
  type: "header";
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  logId: string;
  exportedAt: string;
  /** True when the export holds the whole log up to its last record (verifiable on its own). */
  complete: boolean;
}

export type ExportLine =
  | ExportHeader
  | { type: "checkpoint"; checkpoint: AuditCheckpoint }
  | { type: "record"; record: AuditRecord };

const iso = (ms: number): string => new Date(ms).toISOString();

export function headerLine(logId: Buffer, complete: boolean, now = Date.now()): string {
  const header: ExportHeader = {
    type: "header", format: EXPORT_FORMAT, version: EXPORT_VERSION, logId: logId.toString("hex"), exportedAt: iso(now), complete,
  };
  return JSON.stringify(header);
}

export function recordLine(record: AuditRecord): string {
  return JSON.stringify({
    type: "record",
    seq: record.seq,
    time: iso(record.time),
    requestId: record.requestId,
    projectId: record.projectId,
    principalId: record.principalId,
    source: record.source,
    action: record.action,
    keyId: record.keyId,
    outcome: record.outcome,
    errorCode: record.errorCode,
    detail: record.detail,
    hash: record.hash.toString("hex"),
  });
}

export function checkpointLine(checkpoint: AuditCheckpoint): string {
  return JSON.stringify({
    type: "checkpoint",
    index: checkpoint.index,
    seq: checkpoint.seq,
    hash: checkpoint.hash.toString("hex"),
    time: iso(checkpoint.time),
    reason: checkpoint.reason,
    mac: checkpoint.mac.toString("hex"),
  });
}

/** A line that is not a valid export line; `line` is its 1-based number. */
export class AuditExportFormatError extends Error {
  override readonly name = "AuditExportFormatError";
  readonly code = "ERR_KMS_AUDIT_EXPORT_FORMAT";
  constructor(readonly line: number, reason: string) {
    super(`audit export line ${line}: ${reason}`);
  }
}

type Json = Record<string, unknown>;

function field<T>(object: Json, name: string, check: (value: unknown) => value is T, what: string): T {
  const value = object[name];
  if (!check(value)) throw new TypeError(`"${name}" must be ${what}`);
  return value;
}

const isString = (value: unknown): value is string => typeof value === "string";
const isNullableString = (value: unknown): value is string | null => value === null || typeof value === "string";
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function time(object: Json, name: string): number {
  const text = field(object, name, isString, "an ISO 8601 time");
  const ms = Date.parse(text);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(text) || !Number.isSafeInteger(ms) || iso(ms) !== text) {
    throw new TypeError(`"${name}" must be an ISO 8601 UTC time with milliseconds`);
  }
  return ms;
}

function hex(object: Json, name: string, length?: number): Buffer {
  const text = field(object, name, isString, "hex");
  if (!/^(?:[0-9a-f]{2})*$/.test(text) || (length !== undefined && text.length !== length * 2)) {
    throw new TypeError(`"${name}" must be ${length === undefined ? "" : `${length} bytes of `}lowercase hex`);
  }
  return Buffer.from(text, "hex");
}

/** Parses one line (1-based number `number`, for errors). */
export function parseLine(text: string, number: number): ExportLine {
  let object: Json;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TypeError("not a JSON object");
    object = value as Json;
  } catch (error) {
    throw new AuditExportFormatError(number, (error as Error).message);
  }
  try {
    switch (object.type) {
      case "header": {
        if (object.format !== EXPORT_FORMAT || object.version !== EXPORT_VERSION) throw new TypeError(`not an ${EXPORT_FORMAT} version ${EXPORT_VERSION} header`);
        hex(object, "logId", LOG_ID_LENGTH);
        return {
          type: "header", format: EXPORT_FORMAT, version: EXPORT_VERSION,
          logId: object.logId as string,
          exportedAt: field(object, "exportedAt", isString, "a time"),
          complete: field(object, "complete", (value): value is boolean => typeof value === "boolean", "a boolean"),
        };
      }
      case "checkpoint": {
        const reason = field(object, "reason", (value): value is CheckpointReason => CHECKPOINT_REASONS.includes(value as CheckpointReason), "a checkpoint reason");
        return {
          type: "checkpoint",
          checkpoint: {
            index: field(object, "index", isCount, "a count"),
            seq: field(object, "seq", isCount, "a count"),
            hash: hex(object, "hash", HASH_LENGTH),
            time: time(object, "time"),
            reason,
            mac: hex(object, "mac"),
          },
        };
      }
      case "record":
        return {
          type: "record",
          record: {
            seq: field(object, "seq", isCount, "a count"),
            time: time(object, "time"),
            requestId: field(object, "requestId", isString, "a string"),
            projectId: field(object, "projectId", isNullableString, "a string or null"),
            principalId: field(object, "principalId", isNullableString, "a string or null"),
            source: field(object, "source", isString, "a string"),
            action: field(object, "action", isString, "a string"),
            keyId: field(object, "keyId", isNullableString, "a string or null"),
            outcome: field(object, "outcome", (value): value is AuditOutcome => AUDIT_OUTCOMES.includes(value as AuditOutcome), "success, failure or denied"),
            errorCode: field(object, "errorCode", isNullableString, "a string or null"),
            detail: field(object, "detail", isNullableString, "a string or null"),
            hash: hex(object, "hash", HASH_LENGTH),
          },
        };
      default:
        throw new TypeError(`unknown line type ${JSON.stringify(object.type)}`);
    }
  } catch (error) {
    if (error instanceof AuditExportFormatError) throw error;
    throw new AuditExportFormatError(number, (error as Error).message);
  }
}

/** An export read back: its header, checkpoints and records. */
export interface AuditExport {
  header: ExportHeader;
  checkpoints: AuditCheckpoint[];
  records: AuditRecord[];
}

async function* numbered(lines: Iterable<string> | AsyncIterable<string>): AsyncGenerator<[string, number]> {
  let number = 0;
  for await (const line of lines) {
    number++;
    if (line.trim() === "") continue;
    yield [line, number];
  }
}

/**
 * Reads an export (lines without their newline, e.g. from readline) in order: header, then
 * checkpoints, then records. Throws AuditExportFormatError at the first line out of place.
 */
export async function readAuditExport(lines: Iterable<string> | AsyncIterable<string>): Promise<AuditExport> {
  const result: Partial<AuditExport> & { checkpoints: AuditCheckpoint[]; records: AuditRecord[] } = { checkpoints: [], records: [] };
  for await (const [text, number] of numbered(lines)) {
    const line = parseLine(text, number);
    if (result.header === undefined) {
      if (line.type !== "header") throw new AuditExportFormatError(number, "the first line must be the header");
      result.header = line;
    } else if (line.type === "header") {
      throw new AuditExportFormatError(number, "a second header");
    } else if (line.type === "checkpoint") {
      if (result.records.length > 0) throw new AuditExportFormatError(number, "checkpoints come before records");
      result.checkpoints.push(line.checkpoint);
    } else {
      result.records.push(line.record);
    }
  }
  if (result.header === undefined) throw new AuditExportFormatError(0, "empty export: no header");
  return result as AuditExport;
}

/**
 * Verifies a complete export as verify() verifies the database, streaming the records (only the
 * checkpoints are held in memory). A filtered export is refused (it cannot verify).
 */
export async function verifyAuditExport(
  lines: Iterable<string> | AsyncIterable<string>,
  mac: AuditMac,
  options: VerifyOptions = {},
): Promise<AuditVerification> {
  let header: ExportHeader | undefined;
  const checkpoints: AuditCheckpoint[] = [];
  let verifier: ChainVerifier | undefined;
  for await (const [text, number] of numbered(lines)) {
    const line = parseLine(text, number);
    if (header === undefined) {
      if (line.type !== "header") throw new AuditExportFormatError(number, "the first line must be the header");
      if (!line.complete) throw new AuditExportFormatError(number, "a filtered export cannot be verified: export the whole log");
      header = line;
      continue;
    }
    if (line.type === "header") throw new AuditExportFormatError(number, "a second header");
    if (line.type === "checkpoint") {
      if (verifier !== undefined) throw new AuditExportFormatError(number, "checkpoints come before records");
      checkpoints.push(line.checkpoint);
      continue;
    }
    verifier ??= new ChainVerifier(Buffer.from(header.logId, "hex"), mac, checkpoints, options);
    if (!verifier.push(line.record)) break;
  }
  if (header === undefined) throw new AuditExportFormatError(0, "empty export: no header");
  verifier ??= new ChainVerifier(Buffer.from(header.logId, "hex"), mac, checkpoints, options);
  return verifier.finish();
}
