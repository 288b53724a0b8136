/**
 * The HTTP API as a fastify instance: Huawei KMS v1.0 routes (routes/*.ts, declared as KmsRoutes),
 * IAM-style token issuance, /healthz, /metrics, /openapi.json and /docs. It holds no KMS state: every
 * KMS route extracts the authentication evidence, maps the Huawei body onto a Kms request and hands
 * both to the ServicePort (service/service.ts), in this thread or the KMS thread.
 *
 * What the HTTP layer itself guarantees:
 * - raw bodies are kept for the signature (SDK-HMAC-SHA256 hashes the bytes as sent);
 * - every body and query is validated against its schema with no coercion and no silent removal
 *   of unknown fields (ajv removeAdditional: false, coerceTypes: false);
 * - every response is serialized through its schema (an allowlist), errors through ERROR_SCHEMA;
 * - every response carries X-Request-Id (the client's, when it sent a well-formed one).
 */
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import { STATUS_CODES, type ServerOptions } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { HsmkitConfig } from "../config/config.js";
import { KmsError } from "../kms/errors.js";
import type { AuthEvidence } from "../service/auth/authenticator.js";
import type { ServicePort } from "../service/service.js";
import { errorBody, toKmsError } from "./errors.js";
import { beforeDeadline } from "./deadline.js";
import { evidenceOf, headerValue } from "./evidence.js";
import type { ServerMetrics } from "./metrics.js";
import { schemaOf, type KmsRoute } from "./route.js";
import { KMS_ROUTES } from "./routes/index.js";
import { registerIamRoutes } from "./routes/iam.js";
import { HEALTH_PATH, registerSystemRoutes } from "./routes/system.js";
import { duplicateKeyPath } from "./duplicate-keys.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The body as received (for the signature's payload hash). */
    rawBody?: Buffer;
    /** What the request authenticates with, extracted before its body is validated. */
    authEvidence?: AuthEvidence;
    /** Set once the evidence went to the service (with the call): the service verified it. */
    authVerified?: boolean;
  }
}

export interface BuildAppOptions {
  config: Readonly<HsmkitConfig>;
  service: ServicePort;
  metrics?: ServerMetrics | undefined;
  /** A pino logger, or false for none (default: pino at config.log.level with REDACT_PATHS, to stdout). */
  logger?: FastifyBaseLogger | false;
  /** Clock (tests). */
  now?: () => number;
}

/**
 * Secrets never written to logs, wherever they appear. err.rawPacket: Node's HTTP parser errors
 * carry the refused request's bytes (its Authorization or X-Auth-Token among them), and fastify's
 * client-error handler logs the error at trace, every enumerable property with it.
 */
export const REDACT_PATHS = [
  "req.headers.authorization", 'req.headers["x-auth-token"]', 'res.headers["x-subject-token"]', "err.rawPacket",
  "*.sk", "*.secret_key", "*.password", "*.pin", "*.plain_text", "*.plain_text_base64", "*.data_key", "*.token",
];

/** Where the Huawei KMS v1.0 routes are mounted. */
const KMS_PREFIX = "/v1.0/:project_id/kms";
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/u;
const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/u;

type Bindings = Parameters<FastifyBaseLogger["child"]>[0];
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger["child"]>[1]>;
type LevelName = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/**
 * request.log without its per-request cost: pino's child logger (the reqId binding, with the
 * redaction it is configured with) is made the first time the request logs at an enabled level.
 * A successful request's only line is at debug, so at the default level most requests never
 * make one. Lines and bindings are those of the child fastify would have made.
 */
class LazyChildLogger {
  #child: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  get level(): string {
    return this.#child?.level ?? this.parent.level;
  }

  set level(level: string) {
    this.#logger().level = level;
  }

  fatal(...args: unknown[]): void { this.#log("fatal", args); }
  error(...args: unknown[]): void { this.#log("error", args); }
  warn(...args: unknown[]): void { this.#log("warn", args); }
  info(...args: unknown[]): void { this.#log("info", args); }
  debug(...args: unknown[]): void { this.#log("debug", args); }
  trace(...args: unknown[]): void { this.#log("trace", args); }
  silent(...args: unknown[]): void { this.#log("silent", args); }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger().child(bindings, options);
  }

  #logger(): FastifyBaseLogger {
    return (this.#child ??= this.parent.child(this.bindings, this.options));
  }

  #log(level: LevelName, args: unknown[]): void {
    if (this.#child === undefined) {
      const enabled = (this.parent as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
      if (level === "silent" || (typeof enabled === "function" && !enabled.call(this.parent, level))) return;
    }
    const logger = this.#logger();
    (logger[level] as (...a: unknown[]) => void).apply(logger, args);
  }
}

/** fastify's childLoggerFactory: lazy children, unless a route sets its own level or serializers (then pino's at once). */
function lazyChildLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options);
  return new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger;
}

function sendError(reply: FastifyReply, error: KmsError): FastifyReply {
  return reply.code(error.status).type("application/json").send(errorBody(error.code, reply.request.id));
}

/** What a request Node's parser refused becomes: the code's status and Huawei body, as any other refusal. */
function unparsedError(error: NodeJS.ErrnoException, timeoutMs: number): KmsError {
  switch (error.code) {
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return new KmsError("KMS.0104", `request not received within server.requestTimeoutMs (${timeoutMs} ms)`);
    case "HPE_HEADER_OVERFLOW":
      return new KmsError("KMS.0203", "request headers too large");
    default:
      return new KmsError("KMS.0214", `HTTP parser: ${error.code ?? error.message}`);
  }
}

/**
 * How often Node looks for requests past server.requestTimeoutMs, ms. Its default, 30 s, let a
 * client that sends its request slowly hold a connection for up to 30 s past any timeout
 * configured (60 s at the default 30 s timeout); a scan costs one pass over the connections whose
 * request is still arriving.
 */
function connectionsCheckingInterval(requestTimeoutMs: number): number {
  return Math.min(1000, Math.ceil(requestTimeoutMs / 4));
}

export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config, service } = options;
  const now = options.now ?? Date.now;
  const fastifyOptions: FastifyServerOptions & { http: ServerOptions } = {
    // Given to Node's constructor, not only as fastify sets requestTimeout on the server after it:
    // Node's headersTimeout then stays at its 60 s default, above the request timeout, and with the
    // two that way round Node never timed out a request whose body was still arriving — a client
    // sending its body a byte at a time held its connection for as long as it liked.
    http: {
      requestTimeout: config.server.requestTimeoutMs,
      headersTimeout: config.server.requestTimeoutMs,
      connectionsCheckingInterval: connectionsCheckingInterval(config.server.requestTimeoutMs),
    },
    bodyLimit: config.server.bodyLimitBytes,
    requestTimeout: config.server.requestTimeoutMs,
    // Request lines are written by the onResponse hook below (refusals at info, successes at debug).
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyChildLogger,
    // fastify's own 503 while closing skips the hooks: no X-Request-Id, and a body no Huawei SDK
    // reads ({"error":"Service Unavailable"}). The onRequest hook below answers KMS.0104 instead.
    return503OnClosing: false,
    genReqId: (req) => {
      const id = req.headers["x-request-id"];
      return typeof id === "string" && REQUEST_ID.test(id) ? id : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    // A path's key_id may be an alias of 255 characters (its "/" sent as %2F), a tag key 36
    // characters of up to four UTF-8 bytes each (12 characters escaped): fastify's default of 100
    // refused both.
    routerOptions: { maxParamLength: 1024 },
    // fastify answers a malformed escape (%ZZ) or an overlong parameter itself, before any hook,
    // with a body of its own and no X-Request-Id; Huawei's answer to a bad URL is KMS.0201.
    // Its request runs no hooks either: onResponse's metric and request line are written here.
    frameworkErrors: (error, request, reply) => {
      reply.header("X-Request-Id", request.id);
      sendError(reply, new KmsError("KMS.0201", error.message));
      requestDone(request, reply);
    },
    // A request Node's HTTP parser refuses (malformed, headers over its limit, not received within
    // server.requestTimeoutMs) never becomes a fastify request: fastify's own handler answered in
    // a body no Huawei SDK reads, with no X-Request-Id, and /metrics never counted it.
    clientErrorHandler: (error, socket) => refuseUnparsed(error as NodeJS.ErrnoException, socket),
  };
  const metrics = options.metrics;
  /** The request's series at /metrics and its request line (refusals at info, successes at debug). */
  const requestDone = (request: FastifyRequest, reply: FastifyReply): void => {
    const route = request.routeOptions.url ?? "unmatched";
    const status = reply.statusCode;
    const ms = reply.elapsedTime;
    metrics?.observe(route, request.method, status, ms / 1000);
    if (status >= 500) request.log.error({ status, route, ms }, "request failed");
    else if (status >= 400) request.log.info({ status, route, ms }, "request refused");
    else request.log.debug({ status, route, ms }, "request completed");
  };
  const refuseUnparsed = (error: NodeJS.ErrnoException, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === "ECONNRESET" || socket.destroyed) return;
    const kmsError = unparsedError(error, config.server.requestTimeoutMs);
    const requestId = randomUUID();
    // err.rawPacket holds the refused bytes, credentials included: REDACT_PATHS removes it.
    app.log.debug({ err: error, reqId: requestId, code: kmsError.code }, "client error");
    metrics?.observe("unparsed", "unknown", kmsError.status, 0);
    // Not in the middle of a response already begun (a request timed out while its body was still arriving after an early answer).
    const response = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && response?.headersSent !== true) {
      const body = JSON.stringify(errorBody(kmsError.code, requestId));
      socket.write(`HTTP/1.1 ${kmsError.status} ${STATUS_CODES[kmsError.status] ?? ""}\r\nX-Request-Id: ${requestId}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    }
    socket.destroy(error);
  };
  if (options.logger === undefined) fastifyOptions.logger = { level: config.log.level, redact: REDACT_PATHS };
  else if (options.logger === false) fastifyOptions.logger = false;
  else fastifyOptions.loggerInstance = options.logger;
  const app = Fastify(fastifyOptions) as unknown as FastifyInstance;

  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    const raw = body as Buffer;
    request.rawBody = raw;
    // An empty JSON body is an empty object: its required fields are then reported missing (KMS.0204).
    if (raw.length === 0) return done(null, {});
    let text: string;
    let parsed: unknown;
    try {
      text = raw.toString("utf8");
      parsed = JSON.parse(text);
    } catch {
      return done(new KmsError("KMS.0202", "body is not JSON"), undefined);
    }
    // A key given twice means what the parser makes of it (duplicate-keys.ts): refused, inside an
    // encryption context with that field's code.
    const duplicate = duplicateKeyPath(text);
    if (duplicate !== undefined) {
      const inContext = /^(?:destination_)?encryption_context\//u.test(duplicate);
      return done(new KmsError(inContext ? "KMS.0208" : "KMS.0202", `the key ${duplicate} is given twice`), undefined);
    }
    done(null, parsed);
  });

  // Set once close() begins (fastify then stops accepting connections): a request that still
  // arrives on a connection open at that moment is refused, and fastify sends Connection: close.
  let closing = false;
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });

  // Callback hooks rather than async ones: no promise per request for work that never waits.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("X-Request-Id", request.id);
    // /healthz answers for itself while closing (503, its own body: what load balancers read).
    if (closing && request.routeOptions.url !== HEALTH_PATH) {
      sendError(reply, new KmsError("KMS.0104", "the server is shutting down"));
      return;
    }
    done();
  });
  app.addHook("onResponse", (request, reply, done) => {
    requestDone(request, reply);
    done();
  });

  app.setErrorHandler(async (error, request, reply) => {
    let kmsError = toKmsError(error);
    // A KMS request whose body could not be parsed (not JSON, or not a JSON media type) never
    // reached preValidation, where the evidence is taken: take it here, so that such a request
    // without usable credentials is refused 401 as one with a parsed body is. A signature can only
    // be checked over the bytes received (a refused media type's were not read); a token always.
    if (kmsError.code === "KMS.0202" && request.authEvidence === undefined && request.routeOptions.url?.startsWith(KMS_PREFIX) === true) {
      try {
        const evidence = evidenceOf(request, now(), config.auth.clockSkewSeconds);
        if (evidence.kind === "token" || request.rawBody !== undefined) request.authEvidence = evidence;
      } catch (authError) {
        kmsError = toKmsError(authError);
      }
    }
    // A request refused before it reached the service (its body invalid, say) has not had its
    // signature or token verified: verify it now, so that a bad signature is answered 401
    // whatever else is wrong, and nothing about the body is told to an unauthenticated caller.
    if (request.authEvidence !== undefined && request.authVerified !== true) {
      request.authVerified = true;
      const projectId = (request.params as Record<string, string> | undefined)?.["project_id"] ?? "";
      try {
        await beforeDeadline(reply, config.server.requestTimeoutMs, service.authenticate(request.authEvidence, projectId));
      } catch (authError) {
        kmsError = toKmsError(authError);
      }
    }
    if (kmsError.status >= 500) request.log.error({ code: kmsError.code, detail: kmsError.detail }, "internal error");
    else request.log.info({ code: kmsError.code, detail: kmsError.detail }, "client error");
    return sendError(reply, kmsError);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new KmsError("APIGW.0101", `${request.method} ${request.url}`)));

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "hsmkit KMS",
        description: "Huawei Cloud KMS v1.0 API over an HSM (the hsmkit emulator or any PKCS#11 token). " +
          "Authenticate with SDK-HMAC-SHA256 (AK/SK, as the Huawei Cloud SDKs sign) or an X-Auth-Token from POST /v3/auth/tokens.",
        version: "1.0",
      },
      components: {
        securitySchemes: {
          aksk: { type: "apiKey", in: "header", name: "Authorization", description: "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=…, Signature=…" },
          token: { type: "apiKey", in: "header", name: "X-Auth-Token" },
        },
      },
      security: [{ aksk: [] }, { token: [] }],
    },
    transformObject: (document) => withRequestIdHeader((document as { openapiObject: OpenApiDocument }).openapiObject) as object,
  });
  if (config.server.docs) await app.register(swaggerUi, { routePrefix: "/docs" });

  await app.register(async (kms) => {
    for (const route of KMS_ROUTES) registerKmsRoute(kms, route, service, config, now);
  }, { prefix: KMS_PREFIX });
  registerIamRoutes(app, service, config, now);
  registerSystemRoutes(app, service, metrics, () => closing, config.server.requestTimeoutMs);
  await app.ready();
  return app;
}

interface OpenApiDocument {
  components?: { headers?: Record<string, unknown> };
  paths?: Record<string, Record<string, { responses?: Record<string, { headers?: Record<string, unknown> }> }>>;
}

const REQUEST_ID_HEADER = "X-Request-Id";

/**
 * The document with X-Request-Id on every response: the onRequest hook sets it on each one, errors
 * included, and it is what a caller quotes to find its request in the logs and the audit trail.
 */
function withRequestIdHeader(document: OpenApiDocument): OpenApiDocument {
  document.components = {
    ...document.components,
    headers: {
      ...document.components?.headers,
      [REQUEST_ID_HEADER]: {
        description: "The request's id: the client's own X-Request-Id when it sent one of 1-128 characters [A-Za-z0-9._:-], else a UUID",
        schema: { type: "string" },
      },
    },
  };
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const response of Object.values(operation.responses ?? {})) {
        response.headers = { ...response.headers, [REQUEST_ID_HEADER]: { $ref: `#/components/headers/${REQUEST_ID_HEADER}` } };
      }
    }
  }
  return document;
}

function registerKmsRoute(app: FastifyInstance, route: KmsRoute, service: ServicePort, config: Readonly<HsmkitConfig>, now: () => number): void {
  app.route({
    method: route.method,
    url: route.path,
    schema: schemaOf(route),
    // Who is asking is settled before what is asked is validated: an unauthenticated request is
    // refused 401 whatever its body (the signature itself is verified by the service, with the call).
    preValidation: (request, _reply, done) => {
      const projectId = (request.params as Record<string, string>)["project_id"] ?? "";
      if (!PROJECT_ID.test(projectId)) return done(new KmsError("KMS.0201", "malformed project id"));
      try {
        request.authEvidence = evidenceOf(request, now(), config.auth.clockSkewSeconds);
      } catch (error) {
        return done(error as Error);
      }
      const headerProject = headerValue(request, "x-project-id");
      if (headerProject !== undefined && headerProject !== projectId) return done(new KmsError("KMS.0321", "X-Project-Id differs from the URL's project"));
      done();
    },
    handler: async (request, reply) => {
      const projectId = (request.params as Record<string, string>)["project_id"]!;
      const auth = request.authEvidence!;
      const input = {
        body: (request.body ?? {}) as Record<string, unknown>,
        params: request.params as Record<string, string>,
        query: request.query as Record<string, string>,
      };
      const kmsRequest = route.toRequest(input);
      request.authVerified = true;
      const result = await beforeDeadline(reply, config.server.requestTimeoutMs,
        service.call({ auth, projectId, requestId: request.id, source: request.ip, method: route.call, request: kmsRequest }));
      if (route.contentType !== undefined) reply.type(route.contentType);
      return reply.code(route.status ?? 200).send(route.toResponse(result, input));
    },
  });
}
