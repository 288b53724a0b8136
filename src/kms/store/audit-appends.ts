/**
 * The audit records of requests on their way to the writer, already encoded. Every request the
 * Kms serves appends one record; sending each as an object (structured clone to the writer
 * thread, a promise and a rebuilt record each) was a third of a request's time on the event loop.
 * Instead the store encodes each record's canonical body (audit/chain.ts) into one buffer per
 * group commit, with its seq left blank for the writer to number, and the whole buffer travels as
 * one write — transferred, not copied — whose single promise every request in it awaits.
 *
 * The buffer is framed as u32 length ‖ body, repeated. Alongside it travel what the writer needs
 * without decoding: the records' time range and the block search terms they add (audit/blocks.ts).
 * The usage counts the records add (successes on a key) are summed here, for the store to add once
 * the write has committed.
 */
import { checkFields, encodeBodyInto, maxEncodedLength, type ChainedFields } from "../audit/chain.js";
import { BlockTerms } from "../audit/blocks.js";
import type { AuditEvent, AuditOutcome } from "../types.js";


/** What crosses to the writer: the op "audit.records" (sqlite-writes.ts). */
export interface SealedAppends {
  /** u32 length ‖ body per record; the bytes are this array's own buffer (transferable). */
  records: Uint8Array;
  count: number;
  minTime: number;
  maxTime: number;
  terms: Array<[string, string]>;
}

/** Usage a batch adds: per key and action, count and last use. */
export interface UsageSum {
  projectId: string;
  keyId: string;
  action: string;
  count: number;
  lastUsedAt: number;
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
  #buffer = Buffer.allocUnsafeSlow(16384);
  #length = 0;
  #count = 0;
  #minTime = Infinity;
  #maxTime = -Infinity;
  readonly #terms = new BlockTerms();
  /** Successes per project, key and action. */
  readonly #usage = new Map<string, Map<string, Map<string, UsageSum>>>();
  #sealed = false;
  /** Settles after the commit of the write carrying these records (set by the store). */
  done: Promise<void> | null = null;

  /** `limit`: records before this batch is full and a new one starts. */
  constructor(private readonly limit: number) {}

  /** Whether more records may join (not yet handed to the writer, not full). */
  get open(): boolean {
    return !this.#sealed && this.#count < this.limit;
  }

  get count(): number {
    return this.#count;
  }

  /**
   * Encodes a record. Throws TypeError/RangeError (nothing added) when a field cannot be encoded,
   * as audit.append does.
   */
  add(event: AuditEvent, outcome: AuditOutcome, errorCode: string | null): void {
    if (this.#sealed) throw new Error("these audit records were handed to the writer");
    const fields = eventFields(event, outcome, errorCode);
    checkFields(fields);
    const room = 4 + maxEncodedLength(fields);
    if (this.#length + room > this.#buffer.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.#length + room, this.#buffer.length * 2));
      this.#buffer.copy(bigger, 0, 0, this.#length);
      this.#buffer = bigger;
    }
    const end = encodeBodyInto(this.#buffer, this.#length + 4, fields);
    this.#buffer.writeUInt32BE(end - this.#length - 4, this.#length);
    this.#length = end;
    this.#count++;
    if (fields.time < this.#minTime) this.#minTime = fields.time;
    if (fields.time > this.#maxTime) this.#maxTime = fields.time;
    this.#terms.note(fields.projectId, fields.keyId, fields.action);
    if (fields.keyId !== null && outcome === "success" && fields.projectId !== null) this.#countUse(fields.projectId, fields.keyId, fields.action, fields.time);
  }

  /** Hands the records over: no more may join. The buffer is the writer's from now on. */
  seal(): SealedAppends {
    this.#sealed = true;
    return {
      records: new Uint8Array(this.#buffer.buffer, this.#buffer.byteOffset, this.#length),
      count: this.#count,
      minTime: this.#minTime,
      maxTime: this.#maxTime,
      terms: this.#terms.list(),
    };
  }

  /** The usage counts these records add. */
  *usage(): Generator<UsageSum> {
    for (const keys of this.#usage.values()) for (const actions of keys.values()) yield* actions.values();
  }

  #countUse(projectId: string, keyId: string, action: string, time: number): void {
    let keys = this.#usage.get(projectId);
    if (keys === undefined) this.#usage.set(projectId, (keys = new Map()));
    let actions = keys.get(keyId);
    if (actions === undefined) keys.set(keyId, (actions = new Map()));
    const sum = actions.get(action);
    if (sum === undefined) actions.set(action, { projectId, keyId, action, count: 1, lastUsedAt: time });
    else {
      sum.count++;
      if (time > sum.lastUsedAt) sum.lastUsedAt = time;
    }
  }
}
