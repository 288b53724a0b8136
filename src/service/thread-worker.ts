/**
 * The KMS thread's entry (worker_threads; started by thread.ts, whose header describes the
 * protocol): opens a KmsService on the configuration in workerData and runs the ServicePort calls
 * the server's thread sends, concurrently and in the order they arrive, exactly as the service
 * would run them in the server's thread. Its log lines go back to the server's log.
 *
 * Closing: calls already received finish and their results are posted first, then
 * KmsService.close() (which flushes the store's pending group commit and closes the token), then
 * "closed"; with its port no longer listened to, nothing keeps the thread alive and it ends.
 */
import { parentPort, workerData } from "node:worker_threads";
import { KmsError } from "../kms/errors.js";
import type { AuthEvidence } from "./auth/authenticator.js";
import { KmsService, type IssueTokenRequest, type ServiceLog, type ServiceMethod } from "./service.js";
import { Outbox, serializeError, unpackCall, type FromKmsThread, type KmsThreadData, type LogLevel, type PackedCall, type ToKmsThread } from "./thread.js";

if (parentPort === null) throw new Error("thread-worker.js runs as the KMS thread of the server (service/thread.ts)");
const port = parentPort;

const outbox = new Outbox<FromKmsThread>(port, (message, error) => {
  // A result or log field that structured clone refuses: the caller gets an error instead of nothing.
  if (Array.isArray(message)) {
    return { t: "fail", id: message[0], error: serializeError(new KmsError("KMS.0101", `the result could not be passed to the server's thread: ${error.message}`)) };
  }
  if (message.t === "log" && message.fields !== undefined) return { t: "log", level: message.level, message: message.message };
  return null;
});

function logAt(level: LogLevel): ServiceLog[LogLevel] {
  return (message, fields) => outbox.push(fields === undefined ? { t: "log", level, message } : { t: "log", level, message, fields });
}

const log: ServiceLog = { info: logAt("info"), warn: logAt("warn"), error: logAt("error") };
const { config, sweep } = workerData as KmsThreadData;

let service: KmsService | null = null;
try {
  service = await KmsService.open(config, { log, sweep });
  outbox.push({ t: "ready", credentialsFile: service.credentialsFile, health: await service.health() });
} catch (error) {
  if (service !== null) await service.close().catch(() => undefined);
  service = null;
  outbox.push({ t: "failed", error: serializeError(error) });
  outbox.flush();
}

if (service !== null) serve(service);

/**
 * Methods whose results hold plaintext or data keys. The HTTP thread wipes the copy it receives
 * once encoded (routes/crypto.ts); this thread's own buffers are wiped once the result has been
 * posted, instead of lingering in its heap until collected.
 */
const SECRET_RESULTS: ReadonlySet<ServiceMethod> = new Set<ServiceMethod>(["decryptData", "createDataKey", "decryptDataKey"]);

/** Zeroes the byte arrays among a result's own fields. */
function wipeBytes(value: unknown): void {
  if (typeof value !== "object" || value === null) return;
  for (const field of Object.values(value)) if (field instanceof Uint8Array) field.fill(0);
}

function serve(service: KmsService): void {
  let inFlight = 0;
  let idle: (() => void) | null = null;
  let closing = false;

  const run = (message: PackedCall | Extract<ToKmsThread, { t: "op" }>): void => {
    const id = Array.isArray(message) ? message[0] : message.id;
    if (closing) {
      outbox.push({ t: "fail", id, error: serializeError(new KmsError("KMS.0104", "the service is shutting down")) });
      return;
    }
    inFlight++;
    let result: Promise<unknown>;
    let secret = false;
    if (Array.isArray(message)) {
      const call = unpackCall(message);
      secret = SECRET_RESULTS.has(call.method);
      result = service.call(call);
    }
    else switch (message.op) {
      case "issueToken": result = service.issueToken(message.arg as IssueTokenRequest); break;
      case "authenticate": {
        const { auth, projectId } = message.arg as { auth: AuthEvidence; projectId: string };
        result = service.authenticate(auth, projectId);
        break;
      }
      case "health": result = service.health(); break;
      case "stats": result = service.stats(); break;
      default: result = Promise.reject(new KmsError("KMS.0101", `unknown operation ${String((message as { op: unknown }).op)}`));
    }
    result
      .then(
        (value) => outbox.push([id, value], secret ? () => wipeBytes(value) : undefined),
        (error: unknown) => outbox.push({ t: "fail", id, error: serializeError(error) }),
      )
      .finally(() => {
        if (--inFlight === 0 && idle !== null) idle();
      });
  };

  const close = async (): Promise<void> => {
    closing = true;
    if (inFlight > 0) await new Promise<void>((resolve) => (idle = resolve));
    let failure: FromKmsThread | null = null;
    try {
      await service.close();
    } catch (error) {
      failure = { t: "closed", error: serializeError(error) };
    }
    outbox.push(failure ?? { t: "closed" });
    outbox.flush();
    port.off("message", onMessage);
  };

  const onMessage = (batch: ToKmsThread[]): void => {
    for (const message of batch) {
      if (!Array.isArray(message) && message.t === "close") {
        if (!closing) void close();
      } else {
        run(message);
      }
    }
  };
  port.on("message", onMessage);
}
