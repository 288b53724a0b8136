/**
 * `hsmkit serve`: the KMS HTTP server (Huawei KMS v1.0 API) on a data directory, until SIGINT or
 * SIGTERM. The first signal closes gracefully — no new connections, requests in flight finish (up
 * to server.shutdownTimeoutMs), the audit log's pending commit is flushed, the store and the token
 * are closed — and the process exits 0; a second signal exits at once (status 1), and so does a
 * close still not done CLOSE_GRACE_MS after that timeout (shutdown.ts).
 *
 * Once listening it prints where (the actual URL, also for --port 0), the credentials file and how
 * to try it; its log (pino JSON lines, config log.level) follows on stdout.
 */
import { join } from "node:path";
import { Command } from "commander";
import { loadConfig, type ConfigOverrides, type HsmkitConfig } from "../config/config.js";
import type { RunningServer } from "../server/server.js";
import { CREDENTIALS_FILE, readCredentials, type Credentials } from "../service/identity.js";
import { isLockError, warnAboutPinFile } from "./kms-client.js";
import { action, integerIn, UsageError } from "./output.js";
import { CLOSE_GRACE_MS, shutdownOnSignals } from "./shutdown.js";

export interface ServeFlags {
  host?: string;
  port?: number;
  data?: string;
  config?: string;
}

/** The configuration the serve-like flags (serve, config) make: file ← env ← flags. */
export function serveConfig(flags: ServeFlags): Readonly<HsmkitConfig> {
  return loadConfig({ file: flags.config, overrides: serveOverrides(flags) });
}

export function serveOverrides(flags: ServeFlags): ConfigOverrides {
  const server: ConfigOverrides["server"] = {};
  if (flags.host !== undefined) server.host = flags.host;
  if (flags.port !== undefined) server.port = flags.port;
  return { ...(flags.data !== undefined ? { data: flags.data } : {}), ...(Object.keys(server).length > 0 ? { server } : {}) };
}

/** Why the server did not start, in words, with what to do; undefined for a defect. */
function startFailure(error: unknown, config: Readonly<HsmkitConfig>): string | undefined {
  const code = (error as NodeJS.ErrnoException)?.code;
  const where = `${config.server.host} port ${config.server.port}`;
  if (code === "EADDRINUSE") return `${where} is in use (another hsmkit serve?): choose another port with --port or HSMKIT_PORT`;
  if (code === "EACCES") return `not allowed to listen on ${where}: ports below 1024 need privileges; choose another with --port`;
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") return `cannot listen on ${config.server.host}: not an address of this machine (--host)`;
  if (isLockError(error)) {
    return `${(error as Error).message}.\n  Another hsmkit serve (or a CLI command) has the data directory ${config.data}: ` +
      "stop it, or give this server another --data.";
  }
  return undefined;
}

/** How long the log may take to reach stdout after shutdown before the process exits anyway. */
const FLUSH_BEFORE_EXIT_MS = 2000;

async function serve(flags: ServeFlags): Promise<void> {
  const config = serveConfig(flags);
  // Imported here: `hsmkit config` shares this module and needs none of the server.
  (await import("./data-dir.js")).requireCreatableDataDirectory(config);
  // Before anything starts, on stderr: the terminal of whoever starts it, or the journal or container log that keeps it.
  warnAboutPinFile(config);
  const { limitMallocArenas } = await import("../crypto/allocator.js");
  // Before the server's threads start allocating (src/crypto/allocator.ts: tens of MB resident).
  limitMallocArenas();
  const { startServer } = await import("../server/server.js");
  let server: RunningServer;
  // stdout carries the banner and the log. A reader that goes away (`hsmkit serve | head`) makes
  // writes to it fail with EPIPE, an 'error' event nobody handled: the process died, and pino's
  // exit-time flush then retried the broken pipe forever. The server goes on without its log.
  let stdoutGone = false;
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    if (stdoutGone) return;
    stdoutGone = true;
    process.stderr.write("hsmkit serve: stdout was closed (EPIPE): the server goes on, its log lines are dropped\n");
  });
  try {
    server = await startServer(config);
  } catch (error) {
    const message = startFailure(error, config);
    if (message === undefined) throw error;
    throw new UsageError(message);
  }
  const credentialsFile = join(config.data, CREDENTIALS_FILE);
  // Only for the banner: a file the server cannot describe is the server log's business, not a reason to stop.
  let credentials: Credentials | undefined;
  try {
    credentials = readCredentials(credentialsFile);
  } catch {
    credentials = undefined;
  }
  process.stdout.write([
    `hsmkit KMS listening on ${server.url}`,
    `  data         ${config.data}`,
    `  credentials  ${credentialsFile}${credentials ? ` (project ${credentials.project_id}, AK ${credentials.ak})` : ""}`,
    `  try          curl -s ${server.url}/healthz  ·  hsmkit keys list --endpoint ${server.url}${config.server.docs ? `  ·  API docs ${server.url}/docs` : ""}`,
    "",
  ].join("\n"));
  server.logger.info({ url: server.url, data: config.data, credentials: credentialsFile }, "hsmkit KMS ready");

  // pino flushes its stdout stream synchronously at exit, and sonic-boom's synchronous flush retries
  // any error but EAGAIN forever: with stdout a pipe whose reader has gone (`hsmkit serve | head`),
  // the process hung in process.exit and ignored every signal. Flushing while the event loop still
  // runs lets the EPIPE arrive as an error first, which makes pino stop writing to the stream.
  const exit = (code: number): void => {
    const deadline = setTimeout(() => process.exit(code), FLUSH_BEFORE_EXIT_MS);
    server.logger.flush(() => {
      clearTimeout(deadline);
      process.exit(code);
    });
  };
  const stop = shutdownOnSignals({
    close: () => server.close(),
    deadlineMs: config.server.shutdownTimeoutMs + CLOSE_GRACE_MS,
    log: {
      info: (message) => server.logger.info(message),
      error: (message, error) => server.logger.error(error === undefined ? {} : { err: error }, message),
    },
    exit,
    exitNow: (code, message) => {
      process.stderr.write(message);
      process.exit(code);
    },
  });
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

export function serveCommand(): Command {
  return new Command("serve")
    .description("run the KMS HTTP server (Huawei KMS v1.0 API, AK/SK-signed requests) on a data directory")
    .option("--host <host>", "interface to listen on (default 127.0.0.1; also $HSMKIT_HOST)")
    .option("--port <n>", "TCP port (default 8731; 0 picks a free one; also $HSMKIT_PORT)", integerIn(0, 65535))
    .option("--data <dir>", "data directory: token, store, credentials (default ./.hsmkit; also $HSMKIT_DATA)")
    .option("--config <file>", "JSON config file (also $HSMKIT_CONFIG); `hsmkit config` shows the result")
    .addHelpText("after", `
On first start the data directory gets a token, a store and a default identity whose AK/SK is in
<data>/credentials.json (mode 0600); clients sign requests with it (SDK-HMAC-SHA256, as the Huawei
Cloud SDKs do). SIGINT or SIGTERM stops the server gracefully; a second signal stops it at once.

Examples:
  hsmkit serve
  hsmkit serve --port 9000 --data /var/lib/hsmkit
  hsmkit serve --host 0.0.0.0 --config /etc/hsmkit.json`)
    .action(action((flags: ServeFlags) => serve(flags)));
}
