/**
 * hsmkit's configuration: one defaults object (units in the comments), overridden by a JSON config
 * file, then by HSMKIT_* environment variables, then by explicit overrides (CLI flags); validated
 * and frozen by loadConfig(). `hsmkit config` prints the result through maskConfig().
 *
 * Environment variables map onto paths by name: HSMKIT_SERVER_PORT → server.port,
 * HSMKIT_TOKEN_MODULE → token.module; the short forms HSMKIT_HOST, HSMKIT_PORT, HSMKIT_DATA and
 * HSMKIT_PIN (the issue's and `hsmkit bench`'s names) are accepted too. ENV_NAMES lists them all.
 */
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { DEFAULT_LIMITS, DEFAULT_TUNABLES, resolveKmsConfig, type KmsLimits, type KmsTunables } from "../kms/config.js";

export interface ServerConfig {
  /** Interface to listen on (default 127.0.0.1: reachable from this machine only). */
  host: string;
  /** TCP port (default 8731; 0 picks a free one). */
  port: number;
  /**
   * Largest request body, bytes (default 131072). The largest valid request is a re-encrypt with two
   * encryption contexts at their 8192-character limit: ~100 KB when the client escapes non-ASCII as
   * \uXXXX, as Python's json.dumps does by default (a 4096-byte plaintext is only ~5.5 KiB).
   */
  bodyLimitBytes: number;
  /** A request that has not completed after this many ms is answered 503 and its socket closed (default 30000). */
  requestTimeoutMs: number;
  /** How long shutdown waits for in-flight requests before closing connections, ms (default 10000). */
  shutdownTimeoutMs: number;
  /**
   * Run the KMS (token, store, audit chain) in a worker thread while this thread serves HTTP
   * (default true): the two cores split HTTP parsing/validation/encoding from the token and the
   * store, and one thread still owns the token and the audit chain (docs/server-design.md).
   */
  kmsThread: boolean;
  /**
   * The KMS thread's V8 heap limit, MB (default 512). V8 paces its major collections by it: given
   * the ~4 GB a large machine gets by default, the heap grows to about four times what is live
   * between two of them, and the KMS's caches turn over fast enough under cache misses to push a
   * process past 300 MB that way (docs/BENCHMARKS.md). What the KMS keeps live is bounded (the
   * caches, the requests in flight), tens of MB, so 512 leaves it ample room. A thread that
   * passes the limit ends like any crashed KMS thread: every call 503, /healthz 503, logged.
   */
  kmsThreadHeapMb: number;
  /** Interval of the deletion and rotation sweepers, seconds (default 60). */
  sweepIntervalSeconds: number;
  /** Serve /docs (browsable API documentation) (default true). */
  docs: boolean;
}

export interface AuthConfig {
  /** Largest difference between X-Sdk-Date and the server's clock, seconds (default 900, as Huawei's gateway). */
  clockSkewSeconds: number;
  /** Lifetime of X-Auth-Token tokens from POST /v3/auth/tokens, seconds (default 86400: IAM's 24 h). */
  tokenTtlSeconds: number;
  /**
   * Accept each AK/SK signature once within the skew window (default false). The SDK signs no
   * nonce, so two identical requests in one second carry one signature; turn this on when every
   * client varies its requests (service/auth/authenticator.ts).
   */
  rejectReplays: boolean;
}

export interface TokenConfig {
  /** "emulator" (default: the built-in token, kept under <data>/token) or the path of a PKCS#11 library. */
  module: string;
  /** The token's label (CK_TOKEN_INFO.label) (default "hsmkit-kms"). */
  label: string;
  /** The user PIN. Prefer pinFile or HSMKIT_TOKEN_PIN; never printed. For the emulator, absent: generated on first start into <data>/token-pin. */
  pin?: string | undefined;
  /**
   * A file holding the user PIN on its first line (a CRLF or LF ending and a UTF-8 byte order mark
   * are not part of it). Keep it mode 0600: the CLI warns when other users may read it.
   */
  pinFile?: string | undefined;
  /** PKCS#11 sessions the KMS keeps open (default 4). */
  sessions: number;
  /** Unwrapped CMK versions kept in the token (default 1024). */
  cacheSize: number;
}

export interface StoreConfig {
  /**
   * Where the SQLite transactions (group commits, COMMIT with fsync) run: "inline" (default), in
   * the KMS's thread, or "worker", a thread of their own so the KMS keeps serving while the disk
   * works. Measured on this project's 2-core VM (docs/BENCHMARKS.md): the same throughput, and
   * inline keeps one thread and one V8 heap fewer — 237 MB RSS after 10 minutes of load against
   * 253–308 MB, the difference between meeting the 250 MB budget and not. On a disk whose fsync is
   * slow (network block storage), "worker" lets the KMS prepare the next batch during each fsync.
   */
  writer: "worker" | "inline";
}

export interface LogConfig {
  /** pino level: fatal, error, warn, info (default), debug, trace, silent. */
  level: string;
}

export interface HsmkitConfig {
  /** Data directory: token store, kms.sqlite, credentials.json (default ./.hsmkit, relative to the working directory). */
  data: string;
  server: ServerConfig;
  auth: AuthConfig;
  token: TokenConfig;
  store: StoreConfig;
  log: LogConfig;
  kms: { limits: KmsLimits; tunables: KmsTunables };
}

/** A partial configuration: what a file, the environment or flags override. */
export type ConfigOverrides = {
  data?: string;
  server?: Partial<ServerConfig>;
  auth?: Partial<AuthConfig>;
  token?: Partial<TokenConfig>;
  store?: Partial<StoreConfig>;
  log?: Partial<LogConfig>;
  kms?: { limits?: Partial<KmsLimits>; tunables?: Partial<KmsTunables> };
};

/** The documented default port. */
export const DEFAULT_PORT = 8731;

export const DEFAULTS: Readonly<HsmkitConfig> = Object.freeze({
  data: "./.hsmkit",
  server: {
    host: "127.0.0.1",
    port: DEFAULT_PORT,
    bodyLimitBytes: 131_072,
    requestTimeoutMs: 30_000,
    shutdownTimeoutMs: 10_000,
    kmsThread: true,
    kmsThreadHeapMb: 512,
    sweepIntervalSeconds: 60,
    docs: true,
  },
  auth: { clockSkewSeconds: 900, tokenTtlSeconds: 86_400, rejectReplays: false },
  token: { module: "emulator", label: "hsmkit-kms", sessions: 4, cacheSize: 1024 },
  store: { writer: "inline" as const },
  log: { level: "info" },
  kms: { limits: { ...DEFAULT_LIMITS }, tunables: { ...DEFAULT_TUNABLES } },
});

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Environment variable → configuration path, and how to read its value. */
export const ENV_NAMES: ReadonlyArray<{ name: string; path: string; type: "string" | "integer" | "boolean" }> = [
  { name: "HSMKIT_DATA", path: "data", type: "string" },
  { name: "HSMKIT_HOST", path: "server.host", type: "string" },
  { name: "HSMKIT_PORT", path: "server.port", type: "integer" },
  { name: "HSMKIT_SERVER_HOST", path: "server.host", type: "string" },
  { name: "HSMKIT_SERVER_PORT", path: "server.port", type: "integer" },
  { name: "HSMKIT_SERVER_BODY_LIMIT_BYTES", path: "server.bodyLimitBytes", type: "integer" },
  { name: "HSMKIT_SERVER_REQUEST_TIMEOUT_MS", path: "server.requestTimeoutMs", type: "integer" },
  { name: "HSMKIT_SERVER_SHUTDOWN_TIMEOUT_MS", path: "server.shutdownTimeoutMs", type: "integer" },
  { name: "HSMKIT_SERVER_KMS_THREAD", path: "server.kmsThread", type: "boolean" },
  { name: "HSMKIT_SERVER_KMS_THREAD_HEAP_MB", path: "server.kmsThreadHeapMb", type: "integer" },
  { name: "HSMKIT_SERVER_SWEEP_INTERVAL_SECONDS", path: "server.sweepIntervalSeconds", type: "integer" },
  { name: "HSMKIT_SERVER_DOCS", path: "server.docs", type: "boolean" },
  { name: "HSMKIT_AUTH_CLOCK_SKEW_SECONDS", path: "auth.clockSkewSeconds", type: "integer" },
  { name: "HSMKIT_AUTH_TOKEN_TTL_SECONDS", path: "auth.tokenTtlSeconds", type: "integer" },
  { name: "HSMKIT_AUTH_REJECT_REPLAYS", path: "auth.rejectReplays", type: "boolean" },
  { name: "HSMKIT_TOKEN_MODULE", path: "token.module", type: "string" },
  { name: "HSMKIT_TOKEN_LABEL", path: "token.label", type: "string" },
  { name: "HSMKIT_TOKEN_PIN", path: "token.pin", type: "string" },
  { name: "HSMKIT_PIN", path: "token.pin", type: "string" },
  { name: "HSMKIT_TOKEN_PIN_FILE", path: "token.pinFile", type: "string" },
  { name: "HSMKIT_TOKEN_SESSIONS", path: "token.sessions", type: "integer" },
  { name: "HSMKIT_TOKEN_CACHE_SIZE", path: "token.cacheSize", type: "integer" },
  { name: "HSMKIT_STORE_WRITER", path: "store.writer", type: "string" },
  { name: "HSMKIT_LOG_LEVEL", path: "log.level", type: "string" },
  { name: "HSMKIT_KMS_CUSTOM_KEYS_PER_PROJECT", path: "kms.limits.customKeysPerProject", type: "integer" },
  { name: "HSMKIT_KMS_GRANTS_PER_KEY", path: "kms.limits.grantsPerKey", type: "integer" },
  { name: "HSMKIT_KMS_TAGS_PER_KEY", path: "kms.limits.tagsPerKey", type: "integer" },
  { name: "HSMKIT_KMS_REALM", path: "kms.tunables.realm", type: "string" },
];

/** The configuration's invalid value: names the path and what is allowed. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep merge of plain objects; `undefined` leaves the base. */
/**
 * A layer (file < environment < overrides) over the ones below it. The PIN is one setting named two
 * ways: a layer that gives token.pinFile alone replaces a lower layer's token.pin (and token.pin
 * alone a lower pinFile), or the lower layer's PIN would win against the higher one's file —
 * token.pin beats token.pinFile only within one layer.
 */
function mergeLayer(base: Json, layer: Json): Json {
  const token = layer["token"];
  const below = base["token"];
  if (isObject(token) && isObject(below)) {
    const lower = { ...below };
    if (token["pinFile"] !== undefined && token["pin"] === undefined) delete lower["pin"];
    if (token["pin"] !== undefined && token["pinFile"] === undefined) delete lower["pinFile"];
    return merge({ ...base, token: lower }, layer, "");
  }
  return merge(base, layer, "");
}

function merge(base: Json, over: Json, path: string): Json {
  const out: Json = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const where = path === "" ? key : `${path}.${key}`;
    // Own properties only: `in` would take Object.prototype's (toString, constructor, __proto__) for settings.
    if (!Object.hasOwn(base, key) && !(path === "token" && (key === "pin" || key === "pinFile"))) throw new ConfigError(`unknown setting ${where}`);
    const current = base[key];
    if (isObject(current)) {
      if (!isObject(value)) throw new ConfigError(`${where} must be an object`);
      out[key] = merge(current, value, where);
    } else {
      out[key] = value;
    }
  }
  return out;
}

function setPath(target: Json, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isObject(node[part])) node[part] = {};
    node = node[part] as Json;
  }
  node[parts[parts.length - 1]!] = value;
}

/** The overrides the environment makes. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): ConfigOverrides {
  const out: Json = {};
  for (const { name, path, type } of ENV_NAMES) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    let value: unknown = raw;
    if (type === "integer") {
      if (!/^-?\d+$/u.test(raw.trim())) throw new ConfigError(`${name} must be an integer, not ${JSON.stringify(raw)}`);
      value = Number(raw.trim());
    } else if (type === "boolean") {
      const v = raw.trim().toLowerCase();
      if (!["1", "0", "true", "false", "yes", "no"].includes(v)) throw new ConfigError(`${name} must be true or false, not ${JSON.stringify(raw)}`);
      value = ["1", "true", "yes"].includes(v);
    }
    setPath(out, path, value);
  }
  return out as ConfigOverrides;
}

/** "line L, column C" (1-based) of a UTF-16 offset into `text`. */
function lineAndColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
}

/** Reads a JSON config file (a partial configuration). */
export function configFromFile(file: string): ConfigOverrides {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // V8's message may quote the text around the error ("Unexpected token 's', ...\"pin\": s3cret..."),
    // and the file may hold token.pin: say only where, never what.
    const position = /\bat position (\d+)\b/u.exec((error as Error).message);
    throw new ConfigError(`the config file ${file} is not valid JSON${position ? ` (${lineAndColumn(text, Number(position[1]))})` : ""}`);
  }
  if (!isObject(parsed)) throw new ConfigError(`the config file ${file} must hold a JSON object`);
  return parsed as ConfigOverrides;
}

function int(value: unknown, path: string, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${path} must be an integer ${min}..${max}, not ${JSON.stringify(value)}`);
  }
}

function str(value: unknown, path: string, max = 4096): void {
  if (typeof value !== "string" || value.length === 0 || value.length > max) throw new ConfigError(`${path} must be a non-empty string`);
}

function bool(value: unknown, path: string): void {
  if (typeof value !== "boolean") throw new ConfigError(`${path} must be true or false`);
}

function validate(c: HsmkitConfig): void {
  str(c.data, "data");
  str(c.server.host, "server.host", 255);
  int(c.server.port, "server.port", 0, 65535);
  int(c.server.bodyLimitBytes, "server.bodyLimitBytes", 1024, 16 * 1024 * 1024);
  int(c.server.requestTimeoutMs, "server.requestTimeoutMs", 100, 3_600_000);
  int(c.server.shutdownTimeoutMs, "server.shutdownTimeoutMs", 0, 600_000);
  bool(c.server.kmsThread, "server.kmsThread");
  int(c.server.kmsThreadHeapMb, "server.kmsThreadHeapMb", 64, 65_536);
  int(c.server.sweepIntervalSeconds, "server.sweepIntervalSeconds", 1, 86_400);
  bool(c.server.docs, "server.docs");
  int(c.auth.clockSkewSeconds, "auth.clockSkewSeconds", 1, 86_400);
  int(c.auth.tokenTtlSeconds, "auth.tokenTtlSeconds", 60, 7 * 86_400);
  bool(c.auth.rejectReplays, "auth.rejectReplays");
  str(c.token.module, "token.module");
  str(c.token.label, "token.label", 32);
  if (c.token.pin !== undefined) str(c.token.pin, "token.pin", 255);
  if (c.token.pinFile !== undefined) str(c.token.pinFile, "token.pinFile");
  int(c.token.sessions, "token.sessions", 1, 64);
  int(c.token.cacheSize, "token.cacheSize", 1, 1_000_000);
  if (c.store.writer !== "worker" && c.store.writer !== "inline") throw new ConfigError(`store.writer must be "worker" or "inline", not ${JSON.stringify(c.store.writer)}`);
  if (!LEVELS.includes(c.log.level)) throw new ConfigError(`log.level must be one of ${LEVELS.join(", ")}`);
  try {
    resolveKmsConfig(c.kms);
  } catch (error) {
    throw new ConfigError(`kms.${(error as Error).message}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (isObject(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

export interface LoadConfigOptions {
  /** A JSON config file (also HSMKIT_CONFIG). */
  file?: string | undefined;
  /** Environment (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Last word: CLI flags. */
  overrides?: ConfigOverrides;
  /** Directory that relative paths (data, token.pinFile, token.module) are resolved against (default cwd). */
  cwd?: string;
}

/** Defaults ← file ← environment ← overrides; validated (ConfigError), paths made absolute, frozen. */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<HsmkitConfig> {
  const env = options.env ?? process.env;
  const file = options.file ?? env["HSMKIT_CONFIG"];
  let merged = structuredClone(DEFAULTS) as unknown as Json;
  if (file !== undefined && file !== "") merged = mergeLayer(merged, configFromFile(file) as Json);
  merged = mergeLayer(merged, configFromEnv(env) as Json);
  if (options.overrides) merged = mergeLayer(merged, options.overrides as Json);
  const config = merged as unknown as HsmkitConfig;
  validate(config);
  const cwd = options.cwd ?? process.cwd();
  config.data = isAbsolute(config.data) ? config.data : resolve(cwd, config.data);
  if (config.token.pinFile !== undefined && !isAbsolute(config.token.pinFile)) config.token.pinFile = resolve(cwd, config.token.pinFile);
  if (config.token.module !== "emulator" && config.token.module.includes("/") && !isAbsolute(config.token.module)) config.token.module = resolve(cwd, config.token.module);
  return deepFreeze(config);
}

/** The configuration to print: secrets replaced by "***". */
export function maskConfig(config: Readonly<HsmkitConfig>): HsmkitConfig {
  const copy = structuredClone(config) as HsmkitConfig;
  if (copy.token.pin !== undefined) copy.token.pin = "***";
  return copy;
}

/**
 * The token's user PIN from the configuration (pin, or pinFile's first line); undefined when neither
 * is set. Only the first line: what an editor or `echo` adds after the PIN (a blank line, CRLF, a
 * byte order mark) would otherwise become part of it, and a wrong PIN counts towards the token's
 * lockout. No message ever quotes the file's content.
 */
export function configuredPin(config: Readonly<HsmkitConfig>): string | undefined {
  if (config.token.pin !== undefined) return config.token.pin;
  const file = config.token.pinFile;
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EISDIR") throw new ConfigError(`token.pinFile ${file} is a directory: name the file that holds the PIN`);
    throw new ConfigError(`cannot read token.pinFile ${file}: ${(error as Error).message}; check token.pinFile (or HSMKIT_TOKEN_PIN_FILE)`);
  }
  const pin = text.replace(/^\uFEFF/u, "").split(/\r?\n/u, 1)[0]!;
  if (pin.length === 0) throw new ConfigError(`token.pinFile ${file} ${/^[\uFEFF\r\n]*$/u.test(text) ? "is empty" : "has nothing on its first line"}: write the PIN there`);
  return pin;
}

/**
 * Why token.pinFile is open to other users, or undefined (no pinFile, token.pin overrides it, or
 * it is 0600/0400). A warning, not a refusal, unlike OpenSSH with a private key: Kubernetes mounts
 * secrets 0644 unless the volume says otherwise, and a server that no longer starts after an
 * upgrade is worse. The CLI prints it wherever the PIN is read (serve, init, direct-mode commands).
 */
export function pinFileWarning(config: Readonly<HsmkitConfig>): string | undefined {
  const file = config.token.pinFile;
  if (file === undefined || config.token.pin !== undefined || process.platform === "win32") return undefined;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    // configuredPin says what is wrong with a file it cannot read.
    return undefined;
  }
  if ((mode & 0o077) === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(4, "0");
  const who = (mode & 0o004) !== 0 ? "every user of this machine" : (mode & 0o040) !== 0 ? "its group" : "other users";
  return `token.pinFile ${file} is open to ${who} (mode ${octal}), and its PIN unlocks every key in the token: ` +
    `chmod 600 ${file} (on Kubernetes, defaultMode: 0400 on the secret's volume)`;
}
