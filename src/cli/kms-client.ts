/**
 * How a KMS command reaches the KMS: one interface, two ways.
 *
 * - EndpointClient: a running server (`--endpoint URL` or HSMKIT_ENDPOINT). Requests go over HTTP,
 *   signed SDK-HMAC-SHA256 with the AK/SK of a credentials file, exactly as the Huawei SDK signs.
 * - DirectClient: a data directory opened in this process (KmsService.open without sweepers), the
 *   calls made as the credentials' user with KmsService.callAs.
 *
 * Either way a command speaks the wire format only: it builds Huawei's request body for a route
 * (method and path under /v1.0/{project_id}/kms) and reads Huawei's response body. The direct client
 * runs the very route declaration the server registers (server/routes/*.ts, KMS_ROUTES): its
 * toRequest, the Kms method it names, its toResponse, and its response schema as an allowlist — so
 * the two modes cannot drift apart, and a command is written once. What the direct client does not
 * repeat is the server's JSON-schema validation of request bodies: commands build those bodies
 * from parsed options, and the Kms checks every value itself.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { Command } from "commander";
import { loadConfig, pinFileWarning, type HsmkitConfig } from "../config/config.js";
import { KMS_ERRORS, KmsError } from "../kms/errors.js";
import type { JsonSchema, KmsRoute, RouteInput } from "../server/route.js";
import { signRequest } from "../service/auth/sdk-hmac-sha256.js";
import { CREDENTIALS_FILE, readCredentials, type Credentials } from "../service/identity.js";
import type { KmsService, ServiceLog } from "../service/service.js";

/** A route as commands name it: Huawei's method and path under /v1.0/{project_id}/kms (e.g. POST /encrypt-data, GET /:key_id/tags). */
export interface Operation {
  method: "GET" | "POST" | "DELETE";
  path: string;
}

export interface CallInput {
  body?: Record<string, unknown>;
  /** Values of the path's `:name` segments. */
  params?: Record<string, string>;
  query?: Record<string, string>;
}

/** A response body (Huawei field names and encodings). */
export type WireBody = Record<string, unknown>;

export interface KmsClient {
  readonly mode: "endpoint" | "direct";
  /** The server's URL, or the data directory. */
  readonly target: string;
  readonly projectId: string;
  /** Calls one route; resolves with its JSON response body ({} for a 204), rejects with KmsCallError for a KMS error. */
  call(operation: Operation, input?: CallInput): Promise<WireBody>;
  /** Calls a route whose answer is not JSON (route.contentType, e.g. JSON lines); resolves with the text. */
  callText(operation: Operation, input?: CallInput): Promise<string>;
  close(): Promise<void>;
}

/** A KMS error answer, in either mode: Huawei's code and message, and the request's id. */
export class KmsCallError extends Error {
  override readonly name = "KmsCallError";
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly requestId: string | undefined,
    /** The operator's explanation, when the KMS runs in this process (direct mode); never key material (kms/errors.ts). */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** A failure to connect or to open, with what to do next (output.ts reports it in one line). */
export class ConnectError extends Error {}

export interface ConnectOptions {
  /** Server URL; absent: HSMKIT_ENDPOINT, else direct mode. */
  endpoint?: string | undefined;
  /** Credentials file (default `<data>/credentials.json`). */
  credentials?: string | undefined;
  /** Data directory (default: the configuration's, ./.hsmkit). */
  data?: string | undefined;
  /** Config file (also HSMKIT_CONFIG). */
  config?: string | undefined;
}

/** The effective configuration of a command's flags (data directory and config file). */
export function commandConfig(options: { data?: string | undefined; config?: string | undefined }): Readonly<HsmkitConfig> {
  return loadConfig({ file: options.config, overrides: options.data === undefined ? {} : { data: options.data } });
}

/**
 * Warns on stderr when the PIN file is open to other users. Called by the commands that read the
 * PIN (before they do, so the warning precedes whatever the token says), and by `hsmkit config`.
 */
export function warnAboutPinFile(config: Readonly<HsmkitConfig>): void {
  const warning = pinFileWarning(config);
  if (warning !== undefined) process.stderr.write(`hsmkit: warning: ${warning}\n`);
}

/** The URL a server on this configuration answers at (for hints). */
export function configuredUrl(config: Readonly<HsmkitConfig>): string {
  const host = config.server.host === "0.0.0.0" || config.server.host === "::" ? "127.0.0.1" : config.server.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.server.port}`;
}

/** Opens the client the options ask for. */
export async function connect(options: ConnectOptions): Promise<KmsClient> {
  const config = commandConfig(options);
  const endpoint = options.endpoint ?? (process.env["HSMKIT_ENDPOINT"] || undefined);
  if (endpoint !== undefined) {
    const file = options.credentials ?? join(config.data, CREDENTIALS_FILE);
    return new EndpointClient(endpoint, credentialsFrom(file, `give --credentials FILE: the server's <data>/${CREDENTIALS_FILE}, printed when it starts`));
  }
  return DirectClient.open(config, options.credentials === undefined ? undefined : credentialsFrom(options.credentials, `give --credentials a ${CREDENTIALS_FILE} that hsmkit wrote`));
}

/** A credentials file's identity; `hint` says which file is wanted. */
function credentialsFrom(file: string, hint: string): Credentials {
  let credentials: Credentials | undefined;
  try {
    credentials = readCredentials(file);
  } catch (error) {
    // JSON.parse's message quotes the text it choked on, which here may be a secret: never repeat it.
    if (error instanceof SyntaxError) throw new ConnectError(`${file} is not a credentials file (not JSON): ${hint}`);
    const message = (error as Error).message;
    throw new ConnectError(message.includes(file) ? message : `cannot use ${file} as credentials: ${message}`);
  }
  if (credentials === undefined) throw new ConnectError(`no credentials file at ${file}: ${hint}`);
  return credentials;
}

// Endpoint ----------------------------------------------------------------------------------

/** How long one request may take before the CLI gives up (the server's own default limit is 30 s). */
const REQUEST_TIMEOUT_MS = 60_000;

export class EndpointClient implements KmsClient {
  readonly mode = "endpoint";
  readonly target: string;
  readonly projectId: string;
  readonly #credentials: Credentials;

  constructor(endpoint: string, credentials: Credentials) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new ConnectError(`--endpoint must be a URL such as http://127.0.0.1:8731, not "${endpoint}"`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new ConnectError(`--endpoint must be an http:// or https:// URL, not "${endpoint}"`);
    this.target = url.origin + url.pathname.replace(/\/+$/u, "");
    this.#credentials = credentials;
    this.projectId = credentials.project_id;
  }

  async call(operation: Operation, input: CallInput = {}): Promise<WireBody> {
    const { text, status, requestId } = await this.#send(operation, input);
    let parsed: unknown;
    try {
      parsed = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      throw new KmsCallError(`HTTP ${status}`, `${this.target} answered with something other than JSON: is it an hsmkit server?`, status, requestId);
    }
    return parsed as WireBody;
  }

  async callText(operation: Operation, input: CallInput = {}): Promise<string> {
    return (await this.#send(operation, input)).text;
  }

  /** Sends one signed request; a KMS error answer rejects with KmsCallError. */
  async #send(operation: Operation, input: CallInput): Promise<{ text: string; status: number; requestId: string }> {
    const path = operation.path.replace(/:([a-z_]+)/gu, (_, name: string) => {
      const value = input.params?.[name];
      if (value === undefined) throw new Error(`no value for :${name} of ${operation.path}`);
      return encodeURIComponent(value);
    });
    const query = input.query !== undefined && Object.keys(input.query).length > 0 ? "?" + new URLSearchParams(input.query).toString() : "";
    const url = `${this.target}/v1.0/${encodeURIComponent(this.projectId)}/kms${path}${query}`;
    const body = operation.method === "POST" ? JSON.stringify(input.body ?? {}) : undefined;
    const requestId = randomUUID();
    const headers = signRequest({
      method: operation.method, url, body,
      headers: { ...(body !== undefined ? { "content-type": "application/json;charset=UTF-8" } : {}), "x-request-id": requestId },
      accessKey: this.#credentials.ak, secretKey: this.#credentials.sk,
    });
    // fetch sets Host from the URL itself (the same value the signature covers).
    delete headers["host"];
    let response: Response;
    try {
      response = await fetch(url, { method: operation.method, headers, ...(body !== undefined ? { body } : {}), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    } catch (error) {
      throw new ConnectError(unreachable(this.target, error));
    }
    const text = await response.text();
    const id = response.headers.get("x-request-id") ?? requestId;
    if (!response.ok) {
      let e: { error_code?: unknown; error_msg?: unknown } | undefined;
      try {
        e = (JSON.parse(text) as { error?: typeof e }).error;
      } catch {
        e = undefined;
      }
      if (typeof e?.error_code === "string") throw new KmsCallError(e.error_code, typeof e.error_msg === "string" ? e.error_msg : "", response.status, id);
      throw new KmsCallError(`HTTP ${response.status}`, `${response.statusText || "error"} from ${this.target}: is it an hsmkit server?`, response.status, id);
    }
    return { text, status: response.status, requestId: id };
  }

  async close(): Promise<void> {}
}

function unreachable(target: string, error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if ((error as Error).name === "TimeoutError") return `no answer from ${target} within ${REQUEST_TIMEOUT_MS / 1000} s`;
  const why = cause?.code ?? cause?.message ?? (error as Error).message;
  return `cannot reach the KMS at ${target} (${why}): is \`hsmkit serve\` running there? ` +
    "Without --endpoint (and HSMKIT_ENDPOINT) the command works on the data directory directly.";
}

// Direct ------------------------------------------------------------------------------------

/** The KMS's warnings (a stale lock taken over, say) go to stderr; its info lines are the server's business. */
export const STDERR_LOG: ServiceLog = {
  info() {},
  warn: (message) => process.stderr.write(`hsmkit: ${message}\n`),
  error: (message) => process.stderr.write(`hsmkit: ${message}\n`),
};

export class DirectClient implements KmsClient {
  readonly mode = "direct";
  readonly target: string;
  readonly projectId: string;
  readonly #service: KmsService;
  readonly #routes: readonly KmsRoute[];
  readonly #principalId: string;

  private constructor(service: KmsService, routes: readonly KmsRoute[], target: string, credentials: Credentials) {
    this.#service = service;
    this.#routes = routes;
    this.target = target;
    this.projectId = credentials.project_id;
    this.#principalId = credentials.user_id;
  }

  /** Opens the data directory; as its own user unless `credentials` names another. */
  static async open(config: Readonly<HsmkitConfig>, credentials?: Credentials): Promise<DirectClient> {
    // Loaded here, not with the module: a command's --help, or one sent to a server, needs neither.
    const [{ KmsService }, { KMS_ROUTES }, { requireInitializedDataDirectory }] =
      await Promise.all([import("../service/service.js"), import("../server/routes/index.js"), import("./data-dir.js")]);
    requireInitializedDataDirectory(config);
    warnAboutPinFile(config);
    let service: KmsService;
    try {
      service = await KmsService.open(config, { sweep: false, log: STDERR_LOG });
    } catch (error) {
      if (isLockError(error)) {
        const url = configuredUrl(config);
        throw new ConnectError(`${(error as Error).message}.\n  Is a server running on ${config.data}? ` +
          `Send the command to it instead: --endpoint ${url} (or HSMKIT_ENDPOINT=${url}).`);
      }
      throw error;
    }
    return new DirectClient(service, KMS_ROUTES, config.data, credentials ?? service.credentials);
  }

  async call(operation: Operation, input: CallInput = {}): Promise<WireBody> {
    const route = findRoute(this.#routes, operation);
    if (route.contentType !== undefined) throw new Error(`${operation.method} ${operation.path} answers ${route.contentType}: use callText`);
    const body = await this.#run(route, input);
    // Through JSON as the server's serializer would: what a client of the server would receive (a 204: nothing).
    return body === undefined ? {} : (JSON.parse(JSON.stringify(allowlisted(route.response, body))) as WireBody);
  }

  async callText(operation: Operation, input: CallInput = {}): Promise<string> {
    const route = findRoute(this.#routes, operation);
    const body = await this.#run(route, input);
    if (typeof body !== "string") throw new Error(`${operation.method} ${operation.path} answers JSON: use call`);
    return body;
  }

  /** The route's toRequest, the Kms method as the credentials' user, the route's toResponse. */
  async #run(route: KmsRoute, input: CallInput): Promise<unknown> {
    const requestId = randomUUID();
    try {
      const routeInput: RouteInput = { body: input.body ?? {}, params: input.params ?? {}, query: input.query ?? {} };
      const request = route.toRequest(routeInput);
      const result = await this.#service.callAs({ projectId: this.projectId, principalId: this.#principalId, requestId, source: "cli" }, route.call, request);
      return route.toResponse(result, routeInput);
    } catch (error) {
      if (error instanceof KmsError) throw new KmsCallError(error.code, KMS_ERRORS[error.code].message, error.status, requestId, error.detail);
      throw error;
    }
  }

  close(): Promise<void> {
    return this.#service.close();
  }
}

/**
 * Whether an open failed because another process holds the data directory (its token directory or
 * its KMS store): by code, or by the lock's message where a worker thread's structured clone kept
 * only that.
 */
export function isLockError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  return e?.code === "ERR_KMS_STORE_LOCKED" || e?.code === "ERR_HSMKIT_TOKEN_DIR_LOCKED" ||
    (typeof e?.message === "string" && /\bis in use by\b/u.test(e.message));
}

/** The declared route for an operation; a command naming one this build lacks is a defect. */
export function findRoute(routes: readonly KmsRoute[], operation: Operation): KmsRoute {
  const route = routes.find((r) => r.method === operation.method && r.path === operation.path);
  if (route === undefined) throw new Error(`no KMS route ${operation.method} ${operation.path} (server/routes)`);
  return route;
}

/**
 * The value with only what the schema declares, as fastify's serializer emits a response: object
 * properties not in `properties` are dropped (recursively, through arrays and anyOf/oneOf).
 */
export function allowlisted(schema: JsonSchema | undefined, value: unknown): unknown {
  if (schema === undefined || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => allowlisted(schema["items"] as JsonSchema | undefined, item));
  const properties = schema["properties"] as Record<string, JsonSchema> | undefined;
  if (properties === undefined) {
    const alternatives = (schema["anyOf"] ?? schema["oneOf"]) as JsonSchema[] | undefined;
    const objectAlternative = alternatives?.find((s) => s["properties"] !== undefined);
    return objectAlternative === undefined ? value : allowlisted(objectAlternative, value);
  }
  const out: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(value as Record<string, unknown>)) {
    if (name in properties && child !== undefined) out[name] = allowlisted(properties[name], child);
  }
  return out;
}

// Commands ----------------------------------------------------------------------------------

/** The options every KMS command takes, with --json. */
export interface ClientFlags extends ConnectOptions {
  json?: boolean;
}

/**
 * Adds the connection options (and --json) to a KMS command, or to each leaf of a command group.
 * Called once a command's own options are declared, so that --help lists those first.
 */
export function addClientOptions(command: Command): Command {
  if (command.commands.length > 0) {
    for (const sub of command.commands) addClientOptions(sub);
    return command;
  }
  return command
    .option("--endpoint <url>", "a running server (e.g. http://127.0.0.1:8731; also $HSMKIT_ENDPOINT); default: work on the data directory directly")
    .option("--credentials <file>", `AK/SK credentials file (default: <data>/${CREDENTIALS_FILE})`)
    .option("--data <dir>", "data directory (default: $HSMKIT_DATA, else ./.hsmkit)")
    .option("--config <file>", "JSON config file (also $HSMKIT_CONFIG)")
    .option("--json", "print the API's response body as JSON (Huawei field names) instead of text");
}

/** Runs `body` with a client for the flags, closing it afterwards whatever happens. */
export async function withClient<T>(flags: ConnectOptions, body: (client: KmsClient) => Promise<T>): Promise<T> {
  const client = await connect(flags);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}
