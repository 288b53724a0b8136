/**
 * The KMS thread: the server's thread runs HTTP (parsing, schema validation, base64/hex, the
 * SHA-256 of signed bodies, serialization) and hands each KMS call to one worker thread that owns
 * everything with state — the token, the store and its audit chain, the authenticator
 * (thread-worker.ts runs a KmsService there). One owner keeps the audit chain in one order and
 * the token's sessions in one place, while the two threads use two cores. docs/server-design.md
 * explains the choice and gives the measured costs.
 *
 * Protocol. Every postMessage in either direction carries an array: the messages queued during
 * one turn of the event loop, posted together from a setImmediate. A round trip costs ~60 µs
 * alone, and structured clone plus the wake-up dominate it, so one message per call caps the
 * thread at 30 000–75 000 calls/s while batches of tens carry 2–10 times that (measured, see the
 * design document).
 *
 *   main → KMS thread   PackedCall: [id, method, projectId, requestId, source, request, 0, accessKey, signature, stringToSign, signedAt]
 *                               or  [id, method, projectId, requestId, source, request, 1, token]   (a ServiceCall)
 *                       { t: "op", id, op: "authenticate" | "issueToken" | "health" | "stats", arg? }
 *                       { t: "close" }                         (last: nothing is sent after it)
 *   KMS thread → main   { t: "ready", credentialsFile, health } (first, once the service is open)
 *                       { t: "failed", error }                 (instead of ready; the thread ends)
 *                       [id, value] (a result)  { t: "fail", id, error }
 *                       { t: "log", level, message, fields? }  (the service's log lines, in order)
 *                       { t: "closed", error? }                (after KmsService.close(); the thread ends)
 *
 * The per-request messages (calls and their results) are arrays: structured clone writes every
 * property name of an object, and packing saves 15–30 % of a call's round trip at batches of 16–64
 * (bench/kms-thread.ts; nothing measurable for lone calls, where the wake-ups dominate).
 *
 * Values are structured-cloned, which turns a Buffer into a Uint8Array on the other side; the Kms
 * takes Uint8Array inputs and the routes read results through bytes() (server/route.ts). A Buffer
 * is never transferred itself (a small one shares Node's pool with unrelated Buffers, and it may
 * still be referenced where it came from); one that views a larger buffer is replaced by an exact
 * copy, which is transferred (ownBytes): cloning the view would copy the whole pool block, other
 * requests' bytes included. A KmsError crosses as its code and detail and is rebuilt as
 * `new KmsError(code, detail)`; any other error as its name, message, string `code` and stack.
 *
 * Failure. If the KMS thread dies (an uncaught exception or unhandled rejection in it), every
 * pending call rejects with KMS.0104, later calls too, health() reports the reason,
 * and the reason is logged at error. There is no automatic restart: the token's lock, sessions and
 * the audit chain's head belonged to the dead thread and must be reopened by a fresh process, which
 * is the operator's supervisor's job.
 */
import { Worker } from "node:worker_threads";
import { ConfigError, type HsmkitConfig } from "../config/config.js";
import { KMS_ERRORS, KmsError, type KmsErrorCode } from "../kms/errors.js";
import type { AuthEvidence } from "./auth/authenticator.js";
import { CredentialsFileError } from "./identity.js";
import type { IssuedToken, IssueTokenRequest, ServiceCall, ServiceHealth, ServiceLog, ServicePort, ServiceStats } from "./service.js";

/** An error as it crosses the thread boundary. */
export type SerializedError =
  | { kind: "kms"; code: string; detail: string | null }
  | { kind: "error"; name: string; message: string; code: string | null; stack: string | null };

export type Operation =
  | { op: "issueToken"; arg: IssueTokenRequest }
  | { op: "authenticate"; arg: { auth: AuthEvidence; projectId: string } }
  | { op: "health" }
  | { op: "stats" };

/** A ServiceCall as it crosses to the KMS thread (see the protocol above). */
export type PackedCall =
  | [id: number, method: ServiceCall["method"], projectId: string, requestId: string, source: string, request: unknown,
    aksk: 0, accessKey: string, signature: string, stringToSign: string, signedAt: number]
  | [id: number, method: ServiceCall["method"], projectId: string, requestId: string, source: string, request: unknown, token: 1, token: string];

/** The message for call `id`; its values are the call's own (not copied: structured clone copies them). */
export function packCall(id: number, call: ServiceCall): PackedCall {
  const { auth } = call;
  return auth.kind === "aksk"
    ? [id, call.method, call.projectId, call.requestId, call.source, call.request, 0, auth.accessKey, auth.signature, auth.stringToSign, auth.signedAt]
    : [id, call.method, call.projectId, call.requestId, call.source, call.request, 1, auth.token];
}

/** The ServiceCall a packCall() message carries (on the KMS thread: the cloned values). */
export function unpackCall(packed: PackedCall): ServiceCall {
  const auth: AuthEvidence = packed[6] === 0
    ? { kind: "aksk", accessKey: packed[7], signature: packed[8], stringToSign: packed[9], signedAt: packed[10] }
    : { kind: "token", token: packed[7] };
  return { auth, projectId: packed[2], requestId: packed[3], source: packed[4], method: packed[1], request: packed[5] };
}

export type ToKmsThread = PackedCall | ({ t: "op"; id: number } & Operation) | { t: "close" };

/** A call's result as it crosses back: [id, value]. */
export type PackedResult = [id: number, value: unknown];

export type LogLevel = "info" | "warn" | "error";

export type FromKmsThread =
  | { t: "ready"; credentialsFile: string; health: ServiceHealth }
  | { t: "failed"; error: SerializedError }
  | PackedResult
  | { t: "fail"; id: number; error: SerializedError }
  | { t: "log"; level: LogLevel; message: string; fields?: Record<string, unknown> }
  | { t: "closed"; error?: SerializedError };

/** What the worker receives as workerData. */
export interface KmsThreadData {
  config: HsmkitConfig;
  sweep: boolean;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof KmsError) return { kind: "kms", code: error.code, detail: error.detail ?? null };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { kind: "error", name: error.name, message: error.message, code: typeof code === "string" ? code : null, stack: error.stack ?? null };
  }
  return { kind: "error", name: "Error", message: describeThrown(error), code: null, stack: null };
}

/** A thrown non-Error as text; String() itself throws for an object without toString (Object.create(null)). */
function describeThrown(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The error on this side: a KmsError with the same code and detail, or an Error with the same name, message, code and (remote) stack. */
export function reviveError(error: SerializedError): Error {
  if (error.kind === "kms") {
    if (Object.hasOwn(KMS_ERRORS, error.code)) return new KmsError(error.code as KmsErrorCode, error.detail ?? undefined);
    return new KmsError("KMS.0101", `the KMS thread reported an unknown error code ${error.code}: ${error.detail ?? ""}`);
  }
  // The worker's configuration check (a module without a PIN) and its credentials file are the user's to fix, so they keep their class.
  const revived = error.name === "ConfigError" ? new ConfigError(error.message)
    : error.name === "CredentialsFileError" ? new CredentialsFileError(error.message) : new Error(error.message);
  if (error.name !== "Error") Object.defineProperty(revived, "name", { value: error.name, configurable: true, writable: true });
  if (error.code !== null) Object.assign(revived, { code: error.code });
  // The main thread's stack would only show the message handler; the KMS thread's says where it failed.
  if (error.stack !== null) revived.stack = error.stack;
  return revived;
}

/**
 * Messages for one port, posted as one array per turn of the event loop. A message that cannot be
 * cloned (DataCloneError) would fail the whole array, so then each is posted alone and the one that
 * fails is handed to `undeliverable`, which may return a replacement to post instead.
 */
export class Outbox<T> {
  #queue: T[] = [];
  /** The buffers of the exact copies ownBytes made for each queued message, transferred with it. */
  #transfers: ArrayBuffer[][] = [];
  /** What to run once the queued messages have been posted (copied or transferred to the other side). */
  #afterPost: Array<() => void> = [];
  #scheduled = false;

  constructor(
    private readonly port: { postMessage(value: unknown, transfer?: readonly ArrayBuffer[]): void },
    private readonly undeliverable: (message: T, error: Error) => T | null,
  ) {}

  /** Queues `message`; `afterPost` runs once it has been posted (or found undeliverable). */
  push(message: T, afterPost?: () => void): void {
    const transfer: ArrayBuffer[] = [];
    this.#queue.push(ownBytes(message, transfer, 0) as T);
    this.#transfers.push(transfer);
    if (afterPost !== undefined) this.#afterPost.push(afterPost);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Posts what is queued now (also run from the setImmediate that push() scheduled). */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    if (batch.length === 0) return;
    const transfers = this.#transfers;
    const afterPost = this.#afterPost;
    this.#queue = [];
    this.#transfers = [];
    this.#afterPost = [];
    try {
      this.#post(batch, transfers);
    } finally {
      for (const run of afterPost) run();
    }
  }

  #post(batch: T[], transfers: ArrayBuffer[][]): void {
    try {
      this.port.postMessage(batch, transfers.flat());
      return;
    } catch {
      // Cloning failed before anything was posted (nothing was transferred): find the message at fault.
    }
    for (const [position, message] of batch.entries()) {
      try {
        this.port.postMessage([message], transfers[position]);
      } catch (error) {
        const replacement = this.undeliverable(message, error as Error);
        if (replacement !== null) this.port.postMessage([replacement]);
      }
    }
  }
}

/**
 * The message with every byte array among its values (the message, its elements, and theirs: a
 * call's request fields, a result's fields) given a buffer of its own, those buffers listed for
 * transfer. Structured clone copies a view's whole buffer, and a Buffer from Node's pool views 8 KiB
 * shared with unrelated Buffers — other requests' plaintexts and data keys, which would otherwise
 * be copied to the other thread with it. An array that already owns exactly its buffer is left to
 * be copied (it may still be referenced where it came from).
 *
 * The containers on the way to a replaced array are copied, never written: they are the caller's
 * (a ServiceCall's request), and the copies' buffers are detached once posted, so writing them in
 * would leave the caller's request holding empty arrays — a retry of the same call would then fail —
 * and would throw on a frozen request.
 */
function ownBytes(value: unknown, transfer: ArrayBuffer[], depth: number): unknown {
  if (value instanceof Uint8Array) {
    if (value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) return value;
    // Not value.slice(): on a Buffer that is a view, not a copy.
    const copy = new Uint8Array(value);
    transfer.push(copy.buffer);
    return copy;
  }
  if (depth >= 2 || typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let owned: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const own = ownBytes(item, transfer, depth + 1);
      if (own !== item) (owned ??= value.slice())[i] = own;
    }
    return owned ?? value;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    const record = value as Record<string, unknown>;
    let owned: Record<string, unknown> | undefined;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item !== "object" || item === null) continue;
      const own = ownBytes(item, transfer, depth + 1);
      if (own !== item) (owned ??= { ...record })[key] = own;
    }
    return owned ?? value;
  }
  return value;
}

export interface ThreadServiceOptions {
  /** Run the deletion and rotation sweepers in the KMS thread (default true). */
  sweep?: boolean;
  /**
   * The KMS thread's entry module (default: thread-worker.js beside this file). Tests start a
   * wrapper of it that can be made to crash, to exercise the failure path.
   */
  entry?: URL;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** How long the KMS thread may take to end by itself after reporting "closed" before it is terminated, ms. */
const EXIT_GRACE_MS = 5000;

function forwardLog(log: ServiceLog, message: Extract<FromKmsThread, { t: "log" }>): void {
  log[message.level](message.message, message.fields);
}

/** ServicePort over the KMS thread. Open with ThreadServicePort.open(). */
export class ThreadServicePort implements ServicePort {
  /** The default identity's file (<data>/credentials.json); the KMS thread logged it at start. */
  readonly credentialsFile: string;
  /** The KMS thread's worker_threads id. */
  readonly threadId: number;
  readonly #worker: Worker;
  readonly #log: ServiceLog;
  readonly #outbox: Outbox<ToKmsThread>;
  readonly #pending = new Map<number, Pending>();
  readonly #token: ServiceHealth["token"];
  readonly #exited: Promise<void>;
  #nextId = 1;
  #state: "open" | "closing" | "closed" | "dead" = "open";
  /** Why the thread is gone, when it died. */
  #problem: string | undefined;
  #crashStack: string | undefined;
  #closeError: Error | undefined;
  #closing: Promise<void> | undefined;
  #exitTimer: NodeJS.Timeout | undefined;

  /**
   * Starts the KMS thread and opens the service there. Resolves once it is open; rejects with the
   * service's own error (the data directory locked by another process, a wrong PIN, a bad
   * configuration) after the thread has ended.
   */
  static open(config: Readonly<HsmkitConfig>, log: ServiceLog, options: ThreadServiceOptions = {}): Promise<ThreadServicePort> {
    const data: KmsThreadData = { config, sweep: options.sweep ?? true };
    const worker = new Worker(options.entry ?? new URL("./thread-worker.js", import.meta.url), {
      workerData: data,
      // Also how V8 paces the thread's major collections (config.ts, server.kmsThreadHeapMb).
      resourceLimits: { maxOldGenerationSizeMb: config.server.kmsThreadHeapMb },
    });
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    return new Promise<ThreadServicePort>((resolve, reject) => {
      let failure: Error | undefined;
      const onMessage = (batch: FromKmsThread[]): void => {
        for (let i = 0; i < batch.length; i++) {
          const message = batch[i]!;
          // No call has been made before "ready": there are no results to receive yet.
          if (Array.isArray(message)) continue;
          if (message.t === "log") {
            forwardLog(log, message);
          } else if (message.t === "ready") {
            worker.off("message", onMessage);
            worker.off("error", onError);
            const port = new ThreadServicePort(worker, log, message, exited, config.server.kmsThreadHeapMb);
            port.#receive(batch.slice(i + 1));
            resolve(port);
            return;
          } else if (message.t === "failed") {
            failure ??= reviveError(message.error);
            // It ends by itself; terminate() makes sure nothing it left open keeps it running.
            void worker.terminate();
          }
        }
      };
      const onError = (error: Error): void => {
        failure ??= error;
      };
      worker.on("message", onMessage);
      worker.on("error", onError);
      void exited.then((code) => {
        // After "ready" this promise has been resolved and reject() does nothing.
        reject(failure ?? new Error(`the KMS thread exited (code ${code}) before the service was open`));
      });
    });
  }

  private constructor(worker: Worker, log: ServiceLog, ready: Extract<FromKmsThread, { t: "ready" }>, exited: Promise<number>, heapMb: number) {
    this.#worker = worker;
    this.#log = log;
    this.threadId = worker.threadId;
    this.credentialsFile = ready.credentialsFile;
    this.#token = ready.health.token;
    this.#outbox = new Outbox<ToKmsThread>(worker, (message, error) => {
      if (Array.isArray(message)) this.#settle(message[0], undefined, new KmsError("KMS.0101", `the ${message[1]} call could not be passed to the KMS thread: ${error.message}`));
      else if (message.t === "op") this.#settle(message.id, undefined, new KmsError("KMS.0101", `the ${message.op} request could not be passed to the KMS thread: ${error.message}`));
      return null;
    });
    worker.on("message", (batch: FromKmsThread[]) => this.#receive(batch));
    // An uncaught exception: the thread exits right after, and #onExit reports it.
    worker.on("error", (error) => {
      this.#problem ??= (error as NodeJS.ErrnoException).code === "ERR_WORKER_OUT_OF_MEMORY"
        ? `the KMS thread ran out of its ${heapMb} MB V8 heap (server.kmsThreadHeapMb): raise the limit, or look for what grew (the hsmkit_kms_heap_bytes metric)`
        : `the KMS thread failed: ${error.name}: ${error.message}`;
      this.#crashStack ??= error.stack;
    });
    this.#exited = exited.then((code) => this.#onExit(code));
    // An idle KMS thread does not keep the process alive; one with calls in flight, or closing, does.
    worker.unref();
  }

  call(call: ServiceCall): Promise<unknown> {
    return this.#request((id) => packCall(id, call));
  }

  authenticate(auth: AuthEvidence, projectId: string): Promise<void> {
    return this.#request((id) => ({ t: "op", id, ...{ op: "authenticate", arg: { auth, projectId } } })) as Promise<void>;
  }

  issueToken(request: IssueTokenRequest): Promise<IssuedToken> {
    return this.#request((id) => ({ t: "op", id, ...{ op: "issueToken", arg: request } })) as Promise<IssuedToken>;
  }

  health(): Promise<ServiceHealth> {
    if (this.#state === "open") return this.#request((id) => ({ t: "op", id, ...{ op: "health" } })) as Promise<ServiceHealth>;
    const problem = this.#state === "dead" ? this.#problem ?? "the KMS thread stopped" : this.#state;
    return Promise.resolve({ ok: false, token: this.#token, problem });
  }

  stats(): Promise<ServiceStats> {
    return this.#request((id) => ({ t: "op", id, ...{ op: "stats" } })) as Promise<ServiceStats>;
  }

  /**
   * Asks the KMS thread to finish the calls it has, close the service (flushing the store's group
   * commit, closing the token) and end; resolves when the thread has exited, rejects if closing the
   * service failed. Calls made from now on reject with KMS.0104.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#state === "open") {
        this.#state = "closing";
        this.#worker.ref();
        this.#outbox.push({ t: "close" });
        this.#outbox.flush();
      }
      await this.#exited;
      if (this.#closeError !== undefined) throw this.#closeError;
    })();
    return this.#closing;
  }

  #request(message: (id: number) => ToKmsThread): Promise<unknown> {
    if (this.#state !== "open") {
      const detail = this.#state === "dead" ? this.#problem ?? "the KMS thread stopped" : "the service is shutting down";
      return Promise.reject(new KmsError("KMS.0104", detail));
    }
    const id = this.#nextId++;
    return new Promise<unknown>((resolve, reject) => {
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      try {
        this.#outbox.push(message(id));
      } catch (error) {
        // Reading the request failed (a getter that throws): the call fails as an uncloneable one does, and is not left pending.
        this.#settle(id, undefined, new KmsError("KMS.0101", `the request could not be passed to the KMS thread: ${(error as Error).message}`));
      }
    });
  }

  #settle(id: number, value: unknown, error: Error | undefined): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0 && this.#state === "open") this.#worker.unref();
    if (error === undefined) pending.resolve(value);
    else pending.reject(error);
  }

  #receive(batch: readonly FromKmsThread[]): void {
    for (const message of batch) {
      if (Array.isArray(message)) {
        this.#settle(message[0], message[1], undefined);
        continue;
      }
      switch (message.t) {
        case "fail":
          this.#settle(message.id, undefined, reviveError(message.error));
          break;
        case "log":
          forwardLog(this.#log, message);
          break;
        case "closed":
          if (message.error !== undefined) this.#closeError = reviveError(message.error);
          this.#state = "closed";
          this.#exitTimer = setTimeout(() => {
            this.#log.warn(`the KMS thread had closed the service but had not ended ${EXIT_GRACE_MS} ms later; terminating it`);
            void this.#worker.terminate();
          }, EXIT_GRACE_MS);
          break;
        default:
          this.#log.error(`unexpected message from the KMS thread: ${message.t}`);
      }
    }
  }

  #onExit(code: number): void {
    clearTimeout(this.#exitTimer);
    if (this.#state !== "closed") {
      // It ended without having closed the service: a crash, whether or not close() was waiting.
      this.#problem ??= `the KMS thread exited unexpectedly (code ${code})`;
      this.#log.error(`${this.#problem}; every KMS call fails with KMS.0104 until the process is restarted`, { exitCode: code, stack: this.#crashStack });
      if (this.#state === "closing") this.#closeError = new Error(`the KMS thread ended before it had closed the service: ${this.#problem}`);
      this.#state = "dead";
    }
    const error = new KmsError("KMS.0104", this.#problem ?? "the KMS thread ended");
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined, error);
  }
}
