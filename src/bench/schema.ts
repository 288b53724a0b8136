/**
 * The JSON Schema of `hsmkit bench --json` (documented in docs/bench-schema.md, which embeds this
 * object), and a small validator for the subset of JSON Schema it uses: type (with "integer" and
 * "null"), enum, const, minimum, required, properties, additionalProperties and items.
 */
type Schema = Record<string, unknown>;

const num = { type: "number", minimum: 0 };
const numOrNull = { type: ["number", "null"] };
const str = { type: "string" };

export const BENCH_SCHEMA: Schema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  $id: "https://hsmkit.dev/schemas/bench-1.json",
  title: "hsmkit bench report",
  type: "object",
  required: ["schema", "created", "machine", "config", "targets", "rows"],
  additionalProperties: false,
  properties: {
    schema: { const: "hsmkit-bench/1" },
    created: { type: "string", description: "ISO 8601 time the run finished" },
    machine: {
      type: "object",
      required: ["cpu", "cores", "arch", "platform", "os_release", "memory_bytes", "node", "openssl", "native_openssl", "hsmkit"],
      additionalProperties: false,
      properties: {
        cpu: str, cores: { type: "integer", minimum: 1 }, arch: str, platform: str, os_release: str, memory_bytes: num,
        node: str, openssl: { type: "string", description: "OpenSSL bundled in Node (node:crypto)" },
        native_openssl: { type: ["string", "null"], description: "OpenSSL the native core runs on" }, hsmkit: str,
      },
    },
    config: {
      type: "object",
      required: ["targets", "mechs", "sizes", "threads", "iterations", "duration_s", "warmup_s", "timing", "compare"],
      additionalProperties: false,
      properties: {
        targets: { type: "array", items: str }, mechs: { type: "array", items: str },
        sizes: { type: "array", items: { type: "integer", minimum: 1 } }, threads: { type: "integer", minimum: 1 },
        iterations: { type: ["integer", "null"] }, duration_s: numOrNull, warmup_s: num, timing: str, compare: { type: "boolean" },
      },
    },
    targets: {
      type: "array",
      items: {
        type: "object",
        required: ["name", "kind"],
        additionalProperties: false,
        properties: {
          name: str,
          kind: { enum: ["native", "node-crypto", "emulator", "module", "http"] },
          note: str,
          module: {
            type: "object",
            required: ["path", "manufacturer", "description", "library_version", "cryptoki_version"],
            additionalProperties: false,
            properties: { path: str, manufacturer: str, description: str, library_version: str, cryptoki_version: str },
          },
          token: {
            type: "object",
            required: ["label", "manufacturer", "model", "serial", "slot"],
            additionalProperties: false,
            properties: { label: str, manufacturer: str, model: str, serial: str, slot: str },
          },
          http: {
            type: "object",
            description: "KMS HTTP target: endpoint, project, the CMK used, where the credentials came from (never the SK)",
            required: ["url", "project_id", "key_id", "key_alias", "credentials"],
            additionalProperties: false,
            properties: { url: str, project_id: str, key_id: str, key_alias: str, credentials: str },
          },
        },
      },
    },
    rows: {
      type: "array",
      items: {
        type: "object",
        required: ["target", "mech", "op", "bytes", "key_bits", "threads", "status", "reason", "ops", "errors", "errors_by_code",
          "elapsed_s", "ops_per_s", "mb_per_s", "p50_us", "p99_us", "latency_us", "per_thread", "ratio", "ratio_vs"],
        additionalProperties: false,
        properties: {
          target: str, mech: str, op: { type: "string", description: "mech/operation, e.g. aes-gcm/encrypt" },
          bytes: { type: "integer", minimum: 0 }, key_bits: { type: "integer", minimum: 0 }, threads: { type: "integer", minimum: 1 },
          status: { enum: ["ok", "unsupported", "failed"] }, reason: { type: ["string", "null"] },
          ops: { type: "integer", minimum: 0 }, errors: { type: "integer", minimum: 0 },
          errors_by_code: { type: "object", additionalProperties: { type: "integer", minimum: 1 } },
          elapsed_s: num, ops_per_s: num, mb_per_s: num, p50_us: numOrNull, p99_us: numOrNull,
          latency_us: {
            type: "object",
            required: ["mean", "stddev", "min", "max", "p50", "p95", "p99"],
            additionalProperties: false,
            properties: { mean: numOrNull, stddev: numOrNull, min: numOrNull, max: numOrNull, p50: numOrNull, p95: numOrNull, p99: numOrNull },
          },
          per_thread: {
            type: "array",
            items: {
              type: "object",
              required: ["thread", "session", "ops", "errors", "elapsed_s", "ops_per_s", "mb_per_s"],
              additionalProperties: false,
              properties: {
                thread: { type: "integer", minimum: 0 }, session: { type: ["string", "null"] }, ops: { type: "integer", minimum: 0 },
                errors: { type: "integer", minimum: 0 }, elapsed_s: num, ops_per_s: num, mb_per_s: num,
              },
            },
          },
          ratio: numOrNull, ratio_vs: { type: ["string", "null"] },
          http: {
            type: "object",
            description: "KMS HTTP target rows only; per_thread is then per connection",
            required: ["url", "connections", "signing", "status_counts", "request_body_bytes", "response_bytes_mean", "client_cpu_cores", "signing_us", "signing_cpu_cores"],
            additionalProperties: false,
            properties: {
              url: str, connections: { type: "integer", minimum: 1 }, signing: { enum: ["fresh", "pooled"] },
              status_counts: { type: "object", additionalProperties: { type: "integer", minimum: 1 } },
              request_body_bytes: { type: "integer", minimum: 0 }, response_bytes_mean: num,
              client_cpu_cores: num, signing_us: numOrNull, signing_cpu_cores: num,
            },
          },
        },
      },
    },
  },
};

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function typeMatches(value: unknown, type: string): boolean {
  if (type === "integer") return Number.isInteger(value);
  if (type === "number") return typeof value === "number" && Number.isFinite(value);
  return typeOf(value) === type;
}

/** Errors of `value` against `schema` (empty when valid), each with its JSON path. */
export function validate(value: unknown, schema: Schema = BENCH_SCHEMA, path = "$"): string[] {
  const errors: string[] = [];
  if (schema["type"] !== undefined) {
    const types = Array.isArray(schema["type"]) ? (schema["type"] as string[]) : [schema["type"] as string];
    if (!types.some((t) => typeMatches(value, t))) return [`${path}: expected ${types.join(" or ")}, got ${typeOf(value)}`];
  }
  if ("const" in schema && value !== schema["const"]) errors.push(`${path}: expected ${JSON.stringify(schema["const"])}`);
  if (Array.isArray(schema["enum"]) && !(schema["enum"] as unknown[]).includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema["enum"])}`);
  if (typeof schema["minimum"] === "number" && typeof value === "number" && value < schema["minimum"]) errors.push(`${path}: ${value} < ${schema["minimum"]}`);
  if (typeOf(value) === "object") {
    const object = value as Record<string, unknown>;
    for (const key of (schema["required"] as string[] | undefined) ?? []) if (!(key in object)) errors.push(`${path}: missing ${key}`);
    const properties = (schema["properties"] as Record<string, Schema> | undefined) ?? {};
    for (const [key, child] of Object.entries(object)) {
      if (key in properties) errors.push(...validate(child, properties[key]!, `${path}.${key}`));
      else if (schema["additionalProperties"] === false) errors.push(`${path}: unexpected property ${key}`);
      else if (typeof schema["additionalProperties"] === "object") errors.push(...validate(child, schema["additionalProperties"] as Schema, `${path}.${key}`));
    }
  }
  if (Array.isArray(value) && schema["items"] !== undefined) value.forEach((item, i) => errors.push(...validate(item, schema["items"] as Schema, `${path}[${i}]`)));
  return errors;
}
