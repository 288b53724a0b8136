/**
 * The audit records of requests on their way to the writer. Every request the Kms serves appends
 * one record; sending each as an object (structured clone to the writer thread, a promise and a
 * rebuilt record each) was a third of a request's time on the event loop, and encoding each
 * record's canonical body on the event loop still cost ~1.5 µs a record (string by string,
 * character by character). So the event loop keeps only what the writer cannot know: each
 * record's time and its fields as numbers into a table of the batch's distinct strings — the
 * project, principal, source, action and key of a busy service repeat from record to record, and
 * a repeated string costs one map lookup. The writer thread turns them into canonical bodies
 * (frameRecords, below: each distinct string encoded once), numbers and chains them.
 *
 * Fields are validated here, as the record is added, so that a caller still learns synchronously
 * that a record cannot be written (TypeError/RangeError, as audit.append throws).
 *
 * The numbers travel in one array's own buffer (transferred, not copied): per record 9 u32 string
 * ids (0 for null) — outcome, action, requestId, source, projectId, principalId, keyId, errorCode,
 * detail — then, 8-aligned, the f64 times. The strings travel as an array (structured clone).
 */
import { BlockTerms } from "../audit/blocks.js";
import { checkAction, checkInteger, checkString, writeStr, type ChainedFields } from "../audit/chain.js";
import { frameSealed, SEALED_FIELDS } from "../../crypto/audit-chain.js";
import type { AuditEvent, AuditOutcome } from "../types.js";

/** String ids per record. */
const FIELDS = SEALED_FIELDS;
const OUTCOME = 0;
const ACTION = 1;
const REQUEST_ID = 2;
const SOURCE = 3;
const PROJECT_ID = 4;
const PRINCIPAL_ID = 5;
const KEY_ID = 6;
const ERROR_CODE = 7;
const DETAIL = 8;

/** What crosses to the writer: the op "audit.records" (sqlite-writes.ts). */
export interface SealedAppends {
  /** The string ids, then the times (at timesOffset); the bytes are this array's own buffer (transferable). */
  records: Uint8Array;
  count: number;
  timesOffset: number;
  /** Id i (from 1) is strings[i - 1]. */
  strings: string[];
}

/** Usage a batch adds: per key and action, count and last use. */
export interface UsageSum {
  projectId: string;
  keyId: string;
  action: string;
  count: number;
  lastUsedAt: number;
}

/** Records ready for the chain: u32 length ‖ body (seq blank) per record, and what the block and the usage counters need. */
export interface FramedRecords {
  framed: Buffer;
  minTime: number;
  maxTime: number;
  terms: Array<[string, string]>;
  /**
   * Per (project, key, action) with successes: project id, key id, action (string ids of the
   * batch), count, last use — five numbers each. Numbers, not objects: the list travels back to
   * the event loop, where structured clone reads an object's every property name.
   */
  usage: number[];
}

/** The usage sums of flat `usage` (FramedRecords) with the batch's strings. */
export function usageSums(usage: readonly number[], strings: readonly string[]): UsageSum[] {
  const sums: UsageSum[] = [];
  for (let i = 0; i + 4 < usage.length; i += 5) {
    sums.push({ projectId: strings[usage[i]! - 1]!, keyId: strings[usage[i + 1]! - 1]!, action: strings[usage[i + 2]! - 1]!, count: usage[i + 3]!, lastUsedAt: usage[i + 4]! });
  }
  return sums;
}

/** The record an event makes with its outcome — seq 0, for the writer to number; not checked. */
export function eventFields(event: AuditEvent, outcome: AuditOutcome, errorCode: string | null): ChainedFields {
  return {
    seq: 0,
    time: event.time ?? Date.now(),
    requestId: event.requestId,
    projectId: event.projectId ?? null,
    principalId: event.principalId ?? null,
    source: event.source,
    action: event.action,
    keyId: event.keyId ?? null,
    outcome,
    errorCode,
    detail: event.detail ?? null,
  };
}

export class AuditAppends {
  readonly #ids = new Map<string, number>();
  readonly #strings: string[] = [];
  readonly #buffer: ArrayBuffer;
  readonly #fields: Uint32Array;
  readonly #times: Float64Array;
  readonly #timesOffset: number;
  #count = 0;
  #sealed = false;
  /** Settles after the commit of the write carrying these records (set by the store). */
  done: Promise<void> | null = null;

  /** `limit`: records before this batch is full and a new one starts. */
  constructor(private readonly limit: number) {
    this.#timesOffset = Math.ceil((limit * FIELDS * 4) / 8) * 8;
    this.#buffer = new ArrayBuffer(this.#timesOffset + limit * 8);
    this.#fields = new Uint32Array(this.#buffer, 0, limit * FIELDS);
    this.#times = new Float64Array(this.#buffer, this.#timesOffset, limit);
  }

  /** Whether more records may join (not yet handed to the writer, not full). */
  get open(): boolean {
    return !this.#sealed && this.#count < this.limit;
  }

  get count(): number {
    return this.#count;
  }

  /**
   * Takes a record in. Throws TypeError/RangeError (nothing added) when a field cannot be encoded,
   * as audit.append does.
   */
  add(event: AuditEvent, outcome: AuditOutcome, errorCode: string | null): void {
    if (this.#sealed) throw new Error("these audit records were handed to the writer");
    if (this.#count >= this.limit) throw new RangeError("this batch of audit records is full");
    const time = event.time ?? Date.now();
    checkInteger(time, "time");
    if (outcome !== "success" && outcome !== "failure" && outcome !== "denied") {
      throw new TypeError(`audit outcome must be success, failure or denied, not ${String(outcome)}`);
    }
    checkAction(event.action);
    // Every id is found (or the string checked and added) before any is stored: a field that
    // throws leaves no record behind (at most an unused string in the table).
    const outcomeId = this.#id(outcome, "outcome");
    const actionId = this.#id(event.action, "action");
    // A request id is new with nearly every record, and a detail is rare and varied: they join the
    // table without a lookup (a repeat is only a repeated entry).
    const requestId = this.#unique(event.requestId, "requestId");
    const sourceId = this.#id(event.source, "source");
    const projectId = this.#optional(event.projectId, "projectId");
    const principalId = this.#optional(event.principalId, "principalId");
    const keyId = this.#optional(event.keyId, "keyId");
    const errorId = this.#optional(errorCode, "errorCode");
    const detailId = event.detail === null || event.detail === undefined ? 0 : this.#unique(event.detail, "detail");
    const fields = this.#fields;
    const at = this.#count * FIELDS;
    fields[at + OUTCOME] = outcomeId;
    fields[at + ACTION] = actionId;
    fields[at + REQUEST_ID] = requestId;
    fields[at + SOURCE] = sourceId;
    fields[at + PROJECT_ID] = projectId;
    fields[at + PRINCIPAL_ID] = principalId;
    fields[at + KEY_ID] = keyId;
    fields[at + ERROR_CODE] = errorId;
    fields[at + DETAIL] = detailId;
    this.#times[this.#count++] = time;
  }

  /** The batch's strings (id i is strings[i - 1]): to read what the writer reports back. */
  get strings(): readonly string[] {
    return this.#strings;
  }

  /** Hands the records over: no more may join. The buffer is the writer's from now on. */
  seal(): SealedAppends {
    this.#sealed = true;
    return { records: new Uint8Array(this.#buffer), count: this.#count, timesOffset: this.#timesOffset, strings: this.#strings };
  }

  /** A required string's id. */
  #id(value: unknown, name: string): number {
    const known = this.#ids.get(value as string);
    if (known !== undefined) return known;
    checkString(value as string, name);
    const id = this.#strings.push(value as string);
    this.#ids.set(value as string, id);
    return id;
  }

  /** A string's id without looking for it: a new entry. */
  #unique(value: unknown, name: string): number {
    checkString(value as string, name);
    return this.#strings.push(value as string);
  }

  /** An optional string's id: 0 for null or absent. */
  #optional(value: string | null | undefined, name: string): number {
    return value === null || value === undefined ? 0 : this.#id(value, name);
  }
}

/**
 * The writer's half: the canonical bodies (audit/chain.ts's layout, seq left blank) of sealed
 * records, framed as u32 length ‖ body for chainRecords; their time range and block search terms;
 * the usage they add (successes on a key). Each distinct string is encoded once here; the bodies
 * are put together in the native core (src/crypto/audit-chain.ts frameSealed). Throws RangeError
 * if the records do not hold together (nothing is written from them then).
 */
export function frameRecords(sealed: SealedAppends): FramedRecords {
  const { count, strings, timesOffset, records } = sealed;
  if (records.byteOffset % 8 !== 0 || timesOffset % 8 !== 0 || timesOffset < count * FIELDS * 4 || records.length < timesOffset + count * 8) {
    throw new RangeError("audit records do not hold together");
  }
  const fields = new Uint32Array(records.buffer, records.byteOffset, count * FIELDS);
  const times = new Float64Array(records.buffer, records.byteOffset + timesOffset, count);
  // Each string once, as str (u32 length ‖ UTF-8): string id i at offsets[i - 1]..offsets[i].
  const offsets = new Uint32Array(strings.length + 1);
  for (let id = 1; id <= strings.length; id++) offsets[id] = offsets[id - 1]! + 4 + Buffer.byteLength(strings[id - 1]!, "utf8");
  const encoded = Buffer.allocUnsafe(offsets[strings.length]!);
  for (let id = 1; id <= strings.length; id++) writeStr(encoded, offsets[id - 1]!, strings[id - 1]!);
  // Checks every id and time before the loop below reads strings by them.
  const framed = frameSealed(fields, times, encoded, offsets, count);
  const terms = new BlockTerms();
  // (project, key, action) as one number, for the terms noted and the usage summed.
  const ids = strings.length + 1;
  const seen = new Set<number>();
  /** Where each triple's sum sits in `usage`. */
  const sums = new Map<number, number>();
  const usage: number[] = [];
  let minTime = Infinity;
  let maxTime = -Infinity;
  for (let r = 0; r < count; r++) {
    const f = r * FIELDS;
    const time = times[r]!;
    if (time < minTime) minTime = time;
    if (time > maxTime) maxTime = time;
    const project = fields[f + PROJECT_ID]!;
    const key = fields[f + KEY_ID]!;
    const action = fields[f + ACTION]!;
    const triple = (project * ids + key) * ids + action;
    const projectId = project === 0 ? null : strings[project - 1]!;
    const keyId = key === 0 ? null : strings[key - 1]!;
    if (!seen.has(triple)) {
      seen.add(triple);
      terms.note(projectId, keyId, strings[action - 1]!);
    }
    if (projectId !== null && keyId !== null && strings[fields[f + OUTCOME]! - 1] === "success") {
      const sum = sums.get(triple);
      if (sum === undefined) {
        sums.set(triple, usage.length);
        usage.push(project, key, action, 1, time);
      } else {
        usage[sum + 3] = usage[sum + 3]! + 1;
        if (time > usage[sum + 4]!) usage[sum + 4] = time;
      }
    }
  }
  return { framed, minTime, maxTime, terms: terms.list(), usage };
}
