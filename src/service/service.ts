/**
 * The KMS service as the server (and the CLI's direct mode) runs it: a data directory's token, store
 * and Kms, the default identity, authentication, and the periodic sweeps — everything that owns
 * state. The HTTP layer talks to it only through ServicePort, as plain data, so the service can run
 * in the server's thread or in a worker thread of its own (thread.ts; docs/server-design.md).
 *
 * Data directory layout:
 *   token/             the emulator's token directory (when token.module is "emulator")
 *   token-pin          the emulator token's user PIN, generated on first start (0600) unless configured
 *   token-so-pin       its SO PIN (0600)
 *   kms/               kms.sqlite (+ WAL) and its lock
 *   credentials.json   the default identity (identity.ts)
 */
import { closeSync, fchmodSync, fstatSync, openSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { getHeapStatistics } from "node:v8";
import { Emulator } from "../../emulator/index.js";
import { configuredPin, ConfigError, type HsmkitConfig } from "../config/config.js";
import { randomStatus } from "../crypto/random.js";
import type { RequestContext } from "../kms/access.js";
import type { BackendInfo } from "../kms/backend/backend.js";
import type { PKCS11 } from "../kms/backend/pkcs11.js";
import { KmsError } from "../kms/errors.js";
import { Kms } from "../kms/kms.js";
import { createFileExclusive, makeDirectoryDurable } from "../util/atomic-file.js";
import { Authenticator, type Authenticated, type AuthEvidence } from "./auth/authenticator.js";
import { credentialSealer } from "./auth/credential-sealer.js";
import { TokenIssuer } from "./auth/tokens.js";
import { ensureIdentity, randomString, type Credentials } from "./identity.js";

/** The Kms methods the API reaches, each `(ctx, request)`. */
export const SERVICE_METHODS = [
  "createKey", "describeKey", "listKeys", "updateKeyAlias", "updateKeyDescription", "enableKey", "disableKey",
  "scheduleKeyDeletion", "cancelKeyDeletion", "getUserQuotas", "getUserInstances",
  "encryptData", "decryptData", "createDataKey", "createDataKeyWithoutPlaintext", "encryptDataKey", "decryptDataKey", "reEncrypt", "genRandom",
  "enableKeyRotation", "disableKeyRotation", "updateKeyRotationInterval", "getKeyRotationStatus", "rotateKeyOnDemand",
  "createGrant", "listGrants", "listRetirableGrants", "revokeGrant", "retireGrant",
  "createKeyTag", "deleteKeyTag", "batchKeyTags", "listKeyTags", "listProjectTags", "listKeysByTags", "getKeyUsage",
  "queryAuditLog", "exportAuditLog", "verifyAuditLog",
] as const;

export type ServiceMethod = (typeof SERVICE_METHODS)[number];
const METHOD_SET = new Set<string>(SERVICE_METHODS);

/**
 * Most lines one export call returns (its header, records and checkpoints): the answer is built in
 * memory, so a larger one is refused (KMS.0203) and the caller narrows it with from/to.
 */
export const MAX_EXPORT_RECORDS = 100_000;

export interface ServiceCall {
  auth: AuthEvidence;
  /** The project in the URL. */
  projectId: string;
  requestId: string;
  /** Client address. */
  source: string;
  method: ServiceMethod;
  request: unknown;
}

export interface IssueTokenRequest {
  /** The user's AK and SK presented in clear (IAM password method: user name = AK, password = SK). */
  password?: { accessKey: string; secretKey: string } | undefined;
  /** Or: the token request itself was AK/SK-signed. */
  auth?: AuthEvidence | undefined;
  /** The project the token is scoped to. */
  projectId: string;
  requestId: string;
  source: string;
}

export interface IssuedToken {
  token: string;
  principalId: string;
  domainId: string;
  projectId: string;
  issuedAt: number;
  expiresAt: number;
}

export interface ServiceHealth {
  ok: boolean;
  token: { label: string; module: string };
  /** What failed, when not ok. */
  problem?: string;
}

export interface ServiceStats {
  backend: Pick<BackendInfo, "sessions" | "cache" | "recoveries">;
  /** Calls by method and outcome (ok or error code). */
  calls: Record<string, Record<string, number>>;
  entropy: Array<{ name: string; available: boolean; inService: boolean; bytesDrawn: number }>;
  entropyHealthFailures: number;
  cachedKeys: number;
  /** The V8 heap of the thread the service runs in (the KMS thread's when there is one): bytes in use and its limit. */
  heap: { usedBytes: number; limitBytes: number };
}

/** What the HTTP layer needs from the service. Every value crossing it is plain data (structured-clone safe). */
export interface ServicePort {
  call(call: ServiceCall): Promise<unknown>;
  /**
   * Verifies evidence alone (APIGW.0301 / KMS.030x / KMS.0321 when it fails). The HTTP layer calls
   * it only for a request it refuses before calling: so that a badly signed request is answered 401
   * whatever else is wrong with it.
   */
  authenticate(auth: AuthEvidence, projectId: string): Promise<void>;
  issueToken(request: IssueTokenRequest): Promise<IssuedToken>;
  health(): Promise<ServiceHealth>;
  stats(): Promise<ServiceStats>;
  /** Waits for calls in flight and pending audit writes, then closes the Kms, store and token. */
  close(): Promise<void>;
}

export interface ServiceLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const SILENT: ServiceLog = { info() {}, warn() {}, error() {} };

/**
 * The emulator token's PIN in the data directory: read, or generated on first start (0600). hsmkit
 * writes these files 0600, so a looser mode is someone's doing (a copy restored without -p, a
 * chmod): the file is tightened, and the change reported, before the PIN is read from it. A file
 * that cannot be tightened (another user's, planted in a data directory others may write) is
 * refused: whoever owns it knows the PIN the token would be initialized with.
 */
function dataDirPin(dataDir: string, name: string, log: ServiceLog): string {
  const file = join(dataDir, name);
  createFileExclusive(file, Buffer.from(randomString(32, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") + "\n", "utf8"));
  // One descriptor for the check, the chmod and the read: the name cannot be swapped in between.
  const fd = openSync(file, "r");
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (process.platform !== "win32" && (mode & 0o077) !== 0) {
      try {
        fchmodSync(fd, 0o600);
      } catch (error) {
        throw new ConfigError(`${file} holds the token's PIN and is open to other users (mode ${mode.toString(8).padStart(4, "0")}), ` +
          `and its mode cannot be changed (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): check who owns it and the data directory`);
      }
      log.warn(`${file} holds the token's PIN and was open to other users (mode ${mode.toString(8).padStart(4, "0")}): changed to 0600; ` +
        "whoever could read it meanwhile may know the PIN", { file, mode: mode.toString(8) });
    }
    return readFileSync(fd, "utf8").replace(/\r?\n$/u, "");
  } finally {
    closeSync(fd);
  }
}

/**
 * A data directory made by hsmkit is 0700; one that existed before (made by hand, a volume mount)
 * keeps its mode. Readable by others does no harm, since every file holding a secret is 0600 and
 * every directory 0700; writable by others lets them replace or plant files beside those (a
 * credentials.json or token-pin of their own before the first start), so it is reported.
 */
function warnIfOthersMayWrite(dataDir: string, log: ServiceLog): void {
  if (process.platform === "win32") return;
  const mode = statSync(dataDir).mode;
  if ((mode & 0o022) === 0) return;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  log.warn(`the data directory ${dataDir} may be written by other users (mode ${octal}), who could replace the files holding its secrets: chmod 700 ${dataDir}`,
    { dir: dataDir, mode: octal });
}

export interface OpenServiceOptions {
  log?: ServiceLog;
  /** Run the deletion and rotation sweepers (default true). */
  sweep?: boolean;
  /** Clock (tests). */
  now?: () => number;
}

/**
 * Why the emulator token cannot make keys or IVs, or undefined: its generator is the process's
 * (src/crypto/random.ts), which refuses output while no entropy source is in service (each failed
 * its SP 800-90B health tests, or none is present) or the sources are misconfigured. A PKCS#11
 * module draws on a generator of its own.
 */
function entropyProblem(module: string): string | undefined {
  if (module !== "emulator") return undefined;
  const random = randomStatus();
  if (random.configurationError !== null) return `the entropy sources are misconfigured (${random.configurationError}): correct HSMKIT_ENTROPY_SOURCES and restart`;
  if (random.activeSource === null) {
    return "no entropy source is in service (each failed its health tests or none is present): the emulator token cannot generate until one is; see hsmkit_entropy_source_in_service at /metrics";
  }
  return undefined;
}

export class KmsService implements ServicePort {
  readonly kms: Kms;
  readonly credentials: Credentials;
  readonly credentialsFile: string;
  readonly #config: Readonly<HsmkitConfig>;
  readonly #emulator: Emulator | null;
  readonly #auth: Authenticator;
  readonly #tokens: TokenIssuer;
  readonly #log: ServiceLog;
  readonly #now: () => number;
  readonly #calls = new Map<string, Map<string, number>>();
  #sweeper: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;
  #inFlight = 0;
  #idle: (() => void) | null = null;
  #closed = false;
  /** The one close in progress: a second close() waits for it instead of resolving at once. */
  #closing: Promise<void> | null = null;

  /** Opens the data directory (creating what a first start needs) and the KMS on the configured token. */
  static async open(config: Readonly<HsmkitConfig>, options: OpenServiceOptions = {}): Promise<KmsService> {
    const log = options.log ?? SILENT;
    makeDirectoryDurable(config.data);
    warnIfOthersMayWrite(config.data, log);
    let module: string | PKCS11;
    let pin = configuredPin(config);
    let emulator: Emulator | null = null;
    if (config.token.module === "emulator") {
      if (pin === undefined) pin = dataDirPin(config.data, "token-pin", log);
      const soPin = dataDirPin(config.data, "token-so-pin", log);
      emulator = new Emulator({ tokenDir: join(config.data, "token"), slots: [{ token: { label: config.token.label, soPin, userPin: pin } }] });
      module = emulator as unknown as PKCS11;
    } else {
      if (pin === undefined) throw new ConfigError(`token.module is a PKCS#11 library (${config.token.module}): set its user PIN with token.pinFile (or HSMKIT_TOKEN_PIN_FILE) or token.pin (or HSMKIT_TOKEN_PIN)`);
      module = config.token.module;
    }
    let kms: Kms;
    try {
      kms = await Kms.open({
        directory: join(config.data, "kms"),
        token: { module, tokenLabel: config.token.label, pin, sessions: config.token.sessions, cacheSize: config.token.cacheSize },
        limits: config.kms.limits,
        tunables: config.kms.tunables,
        warn: (message) => log.warn(message),
        ...(options.now ? { now: options.now } : {}),
        store: { writer: config.store.writer },
      });
    } catch (error) {
      emulator?.close();
      throw error;
    }
    try {
      const sealer = credentialSealer(kms.backend);
      const identity = await ensureIdentity(kms, sealer, config.data);
      if (identity.created) log.info(`created the default account, project and AK/SK credential: ${identity.file}`, { file: identity.file });
      else log.info(`using the credentials in ${identity.file}`, { file: identity.file });
      const tokens = new TokenIssuer(kms.backend);
      const auth = new Authenticator({ store: kms.store, sealer, tokens, clockSkewSeconds: config.auth.clockSkewSeconds, rejectReplays: config.auth.rejectReplays });
      const service = new KmsService(config, kms, emulator, identity.credentials, identity.file, auth, tokens, log, options.now ?? Date.now);
      if (options.sweep !== false) service.#startSweeper();
      return service;
    } catch (error) {
      await kms.close();
      emulator?.close();
      throw error;
    }
  }

  private constructor(
    config: Readonly<HsmkitConfig>, kms: Kms, emulator: Emulator | null, credentials: Credentials, credentialsFile: string,
    auth: Authenticator, tokens: TokenIssuer, log: ServiceLog, now: () => number,
  ) {
    this.#config = config;
    this.kms = kms;
    this.#emulator = emulator;
    this.credentials = credentials;
    this.credentialsFile = credentialsFile;
    this.#auth = auth;
    this.#tokens = tokens;
    this.#log = log;
    this.#now = now;
  }

  async call(call: ServiceCall): Promise<unknown> {
    this.#enter();
    let outcome = "ok";
    try {
      if (!METHOD_SET.has(call.method)) throw new KmsError("APIGW.0101", `no method ${String(call.method)}`);
      const who = await this.#verify(call.auth, call.projectId);
      const ctx: RequestContext = { projectId: call.projectId, principalId: who.principalId, requestId: call.requestId, source: call.source };
      return await this.#dispatch(ctx, call.method, call.request);
    } catch (error) {
      outcome = error instanceof KmsError ? error.code : "KMS.0101";
      throw error;
    } finally {
      this.#count(call.method, outcome);
      this.#leave();
    }
  }

  async authenticate(auth: AuthEvidence, projectId: string): Promise<void> {
    this.#enter();
    try {
      await this.#verify(auth, projectId);
    } finally {
      this.#leave();
    }
  }

  /** The caller of a request to `projectId`: KMS.0321 when a token is scoped to another project. */
  async #verify(auth: AuthEvidence, projectId: string): Promise<Authenticated> {
    const who = await this.#auth.authenticate(auth, this.#now());
    if (who.scopeProjectId !== undefined && who.scopeProjectId !== projectId) throw new KmsError("KMS.0321", "token scoped to another project");
    return who;
  }


  /** Runs a Kms method as a principal authenticated otherwise (the CLI's direct mode acts as the data directory's user). */
  async callAs(ctx: RequestContext, method: ServiceMethod, request: unknown): Promise<unknown> {
    this.#enter();
    try {
      return await this.#dispatch(ctx, method, request);
    } finally {
      this.#leave();
    }
  }

  async issueToken(request: IssueTokenRequest): Promise<IssuedToken> {
    this.#enter();
    try {
      const now = this.#now();
      let who;
      if (request.auth !== undefined) who = await this.#auth.authenticate(request.auth, now);
      else if (request.password !== undefined) who = await this.#auth.checkSecret(request.password.accessKey, request.password.secretKey, now);
      else throw new KmsError("APIGW.0301", "no credentials");
      // A token only for a project the principal works in: the same answer whether the project is
      // missing or belongs to someone else.
      const roles = await this.kms.store.principals.listRoles(who.principalId, request.projectId);
      if (roles.length === 0) throw new KmsError("KMS.0305", "no role in the requested project");
      const { token, claims } = this.#tokens.issue({ principalId: who.principalId, domainId: who.domainId, projectId: request.projectId, accessKey: who.accessKey }, now, this.#config.auth.tokenTtlSeconds);
      return { token, ...claims };
    } finally {
      this.#leave();
    }
  }

  /**
   * Not ok while closing, once the backend can serve nothing until a restart (the token refused
   * the configured PIN on logging in again), once the store can write nothing until a restart (a
   * failed sync of its log: every call's audit record would fail), and while the emulator token's
   * generator has no entropy source in service: every call would fail, and a supervisor or load
   * balancer reading /healthz must see it. No token call is made.
   */
  async health(): Promise<ServiceHealth> {
    const info = this.kms.backend.info();
    const health: ServiceHealth = { ok: true, token: { label: info.token.label, module: info.module.source } };
    const problem = this.#closed ? "closing" : this.kms.backend.unserviceable() ?? this.kms.store.unwritable() ?? entropyProblem(info.module.source);
    if (problem !== undefined) {
      health.ok = false;
      health.problem = problem;
    }
    return health;
  }

  async stats(): Promise<ServiceStats> {
    const info = this.kms.backend.info();
    const random = randomStatus();
    const heap = getHeapStatistics();
    const calls: Record<string, Record<string, number>> = {};
    for (const [method, outcomes] of this.#calls) calls[method] = Object.fromEntries(outcomes);
    return {
      backend: { sessions: info.sessions, cache: info.cache, recoveries: info.recoveries },
      calls,
      entropy: random.sources.map((s) => ({ name: s.name, available: s.available, inService: s.inService, bytesDrawn: s.bytesDrawn })),
      entropyHealthFailures: random.healthFailures,
      cachedKeys: this.kms.cachedKeys,
      heap: { usedBytes: heap.used_heap_size, limitBytes: heap.heap_size_limit },
    };
  }

  /** One pass of the deletion and rotation sweepers (also run every server.sweepIntervalSeconds). */
  /**
   * Deletes the keys due for deletion, then rotates those due for rotation. Each runs whatever the
   * other did: a deletion sweep that fails (say, the store could not list the due keys) must not
   * also stop every key's scheduled rotation. Rejects with the first failure, after both ran.
   */
  async sweep(): Promise<void> {
    const failures: unknown[] = [];
    const deleted = await this.kms.deleteDueKeys().catch((error: unknown) => void failures.push(error));
    const rotated = await this.kms.rotateDueKeys().catch((error: unknown) => void failures.push(error));
    if (deleted !== undefined && deleted.done.length > 0) this.#log.info(`deleted ${deleted.done.length} keys whose deletion date passed`, { keys: deleted.done });
    if (rotated !== undefined && rotated.done.length > 0) this.#log.info(`rotated ${rotated.done.length} keys due for rotation`, { keys: rotated.done });
    for (const s of [...(deleted?.skipped ?? []), ...(rotated?.skipped ?? [])]) this.#log.warn(`sweep skipped key ${s.keyId}: ${s.reason}`);
    if (failures.length > 1) this.#log.error(`the rotation sweep failed too: ${(failures[1] as Error)?.message ?? String(failures[1])}`);
    if (failures.length > 0) throw failures[0];
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#idle = resolve));
    await this.#sweeping;
    this.#auth.close();
    try {
      await this.kms.close();
    } finally {
      this.#emulator?.close();
    }
  }

  #startSweeper(): void {
    const run = (): void => {
      if (this.#sweeping !== null || this.#closed) return;
      this.#sweeping = this.sweep()
        .catch((error: unknown) => this.#log.error(`sweep failed: ${(error as Error).message}`))
        .finally(() => (this.#sweeping = null));
    };
    this.#sweeper = setInterval(run, this.#config.server.sweepIntervalSeconds * 1000);
    this.#sweeper.unref();
    run();
  }

  #enter(): void {
    if (this.#closed) throw new KmsError("KMS.0104", "the service is shutting down");
    this.#inFlight++;
  }

  #leave(): void {
    if (--this.#inFlight === 0 && this.#idle !== null) this.#idle();
  }

  #count(method: string, outcome: string): void {
    let outcomes = this.#calls.get(method);
    if (outcomes === undefined) this.#calls.set(method, (outcomes = new Map()));
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }

  async #dispatch(ctx: RequestContext, method: ServiceMethod, request: unknown): Promise<unknown> {
    const kms = this.kms;
    const r = (request ?? {}) as never;
    switch (method) {
      case "getUserQuotas": return kms.getUserQuotas(ctx);
      case "getUserInstances": return kms.getUserInstances(ctx);
      case "listProjectTags": return kms.listProjectTags(ctx);
      case "exportAuditLog": {
        const lines: string[] = [];
        await kms.exportAuditLog(ctx, (line) => {
          if (lines.length >= MAX_EXPORT_RECORDS) throw new KmsError("KMS.0203", `an export returns at most ${MAX_EXPORT_RECORDS} lines; narrow it with from/to`);
          lines.push(line);
        }, r);
        return { lines };
      }
      default: {
        const fn = (kms as unknown as Record<string, (ctx: RequestContext, request: unknown) => Promise<unknown>>)[method]!;
        return fn.call(kms, ctx, r);
      }
    }
  }
}
