/**
 * A running KMS server: the service (in a KMS thread, or in this thread) behind the HTTP app,
 * listening; close() shuts down gracefully — stop accepting, finish requests in flight (up to
 * server.shutdownTimeoutMs, then close the connections), then close the service, which waits for
 * its calls and flushes the audit log's pending group commit before closing store and token.
 */
import pino, { type Logger } from "pino";
import type { FastifyInstance } from "fastify";
import type { HsmkitConfig } from "../config/config.js";
import { KmsService, type ServiceLog, type ServicePort } from "../service/service.js";
import { REDACT_PATHS, buildApp } from "./app.js";
import { createMetrics } from "./metrics.js";

export interface RunningServer {
  app: FastifyInstance;
  service: ServicePort;
  /** http://host:port */
  url: string;
  port: number;
  logger: Logger;
  close(): Promise<void>;
}

export interface StartServerOptions {
  /** Default: pino at config.log.level to stdout, secrets redacted. */
  logger?: Logger;
  /** Open the service (tests: a KmsService opened already, or one on another clock). Default: by config.server.kmsThread. */
  openService?: (config: Readonly<HsmkitConfig>, log: ServiceLog) => Promise<ServicePort>;
}

export function serviceLog(logger: Logger): ServiceLog {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
  };
}

/** Opens the service in this thread or in a KMS thread, as configured. */
export async function openConfiguredService(config: Readonly<HsmkitConfig>, log: ServiceLog): Promise<ServicePort> {
  if (config.server.kmsThread) {
    const { ThreadServicePort } = await import("../service/thread.js");
    return ThreadServicePort.open(config, log);
  }
  return KmsService.open(config, { log });
}

export async function startServer(config: Readonly<HsmkitConfig>, options: StartServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: config.log.level, redact: REDACT_PATHS });
  const log = serviceLog(logger.child({ component: "kms" }));
  const service = await (options.openService ?? openConfiguredService)(config, log);
  let app: FastifyInstance;
  try {
    app = await buildApp({ config, service, metrics: createMetrics(service), logger });
    await app.listen({ host: config.server.host, port: config.server.port });
  } catch (error) {
    await service.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : config.server.port;
  const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
  let closing: Promise<void> | null = null;
  return {
    app, service, port, logger,
    url: `http://${host}:${port}`,
    close() {
      closing ??= (async () => {
        const timer = setTimeout(() => app.server.closeAllConnections(), config.server.shutdownTimeoutMs);
        // server.close() drops the keep-alive connections idle at that moment; those busy then
        // become idle once their response is out and would hold the close until the timeout.
        const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
        try {
          await app.close();
        } finally {
          clearTimeout(timer);
          clearInterval(sweeper);
          await service.close();
        }
      })();
      return closing;
    },
  };
}
