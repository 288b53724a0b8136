/**
 * A small signed client for the set-up of the KMS HTTP target (the timed requests go through
 * autocannon, load.ts): it signs each request with SDK-HMAC-SHA256 as the Huawei SDK does, and turns
 * what can go wrong before a run — unreachable endpoint, refused credentials, no such API — into
 * a BenchError with a clear message.
 */
import { signRequest } from "../../service/auth/sdk-hmac-sha256.js";
import { BenchError } from "../types.js";
import type { BenchCredentials } from "./credentials.js";

/** The content type the Huawei SDK sends (and signs) for KMS bodies. */
export const CONTENT_TYPE = "application/json;charset=UTF-8";
/** The alias of the CMK the benchmark uses; created on first use. */
export const BENCH_KEY_ALIAS = "hsmkit-bench";

export interface KmsEndpoint {
  /** Origin and optional path prefix, without a trailing '/': http://127.0.0.1:8731 */
  url: string;
  credentials: BenchCredentials;
}

export interface KmsResponse {
  status: number;
  body: Record<string, unknown>;
  /** Huawei's error.error_code of a non-2xx response, when it has one. */
  errorCode: string | undefined;
  /** Response body length in bytes. */
  bytes: number;
}

/** The endpoint of a --module http://… value; BenchError (exit 2) when it is not an http(s) URL. */
export function endpointOf(value: string, credentials: BenchCredentials): KmsEndpoint {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BenchError(`${value} is not a URL`, 2);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new BenchError(`${value}: the KMS target must be an http:// or https:// URL`, 2);
  if (url.search !== "" || url.hash !== "") throw new BenchError(`${value}: the KMS URL takes no query or fragment`, 2);
  return { url: `${url.origin}${url.pathname.replace(/\/+$/u, "")}`, credentials };
}

/** The path of a KMS v1.0 operation, e.g. /v1.0/<project>/kms/encrypt-data. */
export function kmsPath(endpoint: KmsEndpoint, operation: string): string {
  return `${new URL(endpoint.url).pathname.replace(/\/+$/u, "")}/v1.0/${encodeURIComponent(endpoint.credentials.projectId)}/kms/${operation}`;
}

/** The headers of a signed KMS POST (Host, X-Sdk-Date, Authorization among them). */
export function signedHeaders(endpoint: KmsEndpoint, path: string, body: string, time?: number): Record<string, string> {
  const { credentials } = endpoint;
  return signRequest({
    method: "POST",
    url: new URL(path, endpoint.url).href,
    headers: { "content-type": CONTENT_TYPE, "x-project-id": credentials.projectId },
    body,
    accessKey: credentials.accessKey,
    secretKey: credentials.secretKey,
    ...(time !== undefined ? { time } : {}),
  });
}

function networkCause(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | null)?.cause;
  if (cause?.code !== undefined) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : cause.message ? ` — ${cause.message}` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/** One signed POST to a KMS operation. Throws BenchError when the endpoint cannot be reached. */
export async function kmsCall(endpoint: KmsEndpoint, operation: string, body: Record<string, unknown>): Promise<KmsResponse> {
  const path = kmsPath(endpoint, operation);
  const text = JSON.stringify(body);
  const headers = signedHeaders(endpoint, path, text);
  delete headers["host"]; // fetch sets Host from the URL (the same value), and refuses it as a header
  let response: Response;
  try {
    response = await fetch(new URL(path, endpoint.url), { method: "POST", headers, body: text, signal: AbortSignal.timeout(30_000) });
  } catch (error) {
    throw new BenchError(`cannot reach the KMS at ${endpoint.url}: ${networkCause(error)}`);
  }
  const raw = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = raw === "" ? {} : (JSON.parse(raw) as Record<string, unknown>);
  } catch {
    if (response.ok) throw new BenchError(`${endpoint.url}: ${operation} answered ${response.status} with a body that is not JSON — is this an hsmkit/Huawei KMS endpoint?`);
  }
  return { status: response.status, body: parsed, errorCode: errorCodeOf(parsed), bytes: Buffer.byteLength(raw) };
}

/** Huawei's error_code from an error body (`{"error":{"error_code",…}}`), or the top-level one some gateways send. */
export function errorCodeOf(body: unknown): string | undefined {
  if (body === null || typeof body !== "object") return undefined;
  const b = body as { error?: { error_code?: unknown }; error_code?: unknown };
  const code = b.error?.error_code ?? b.error_code;
  return typeof code === "string" ? code : undefined;
}

/** A BenchError explaining a refused set-up request. */
export function refusal(endpoint: KmsEndpoint, operation: string, response: KmsResponse): BenchError {
  const what = `${operation} answered ${response.status}${response.errorCode ? ` ${response.errorCode}` : ""}`;
  if (response.status === 401 || response.status === 403) {
    return new BenchError(`${endpoint.url} refused the credentials (${what}): check the AK/SK and project id (${endpoint.credentials.source}, AK ${endpoint.credentials.accessKey})`);
  }
  if (response.status === 404 && (response.errorCode === "APIGW.0101" || response.errorCode === undefined)) {
    return new BenchError(`${endpoint.url} has no ${operation} API (${what}): is it an hsmkit server with this route?`);
  }
  return new BenchError(`${endpoint.url}: ${what}`);
}

/** The benchmark's CMK: the key aliased hsmkit-bench, created (AES_256) when the project has none. */
export async function prepareBenchKey(endpoint: KmsEndpoint): Promise<{ keyId: string; created: boolean }> {
  const found = await kmsCall(endpoint, "describe-key", { key_id: BENCH_KEY_ALIAS });
  if (found.status === 200) {
    const info = found.body["key_info"] as { key_id?: string; key_state?: string } | undefined;
    if (info?.key_id === undefined) throw new BenchError(`${endpoint.url}: describe-key answered without key_info.key_id`);
    if (info.key_state !== "2") throw new BenchError(`${endpoint.url}: the key "${BENCH_KEY_ALIAS}" (${info.key_id}) is not enabled (key_state ${info.key_state}): enable it or delete its alias`);
    return { keyId: info.key_id, created: false };
  }
  if (found.status !== 404 || found.errorCode === "APIGW.0101") throw refusal(endpoint, "describe-key", found);
  const made = await kmsCall(endpoint, "create-key", { key_alias: BENCH_KEY_ALIAS, key_spec: "AES_256", key_usage: "ENCRYPT_DECRYPT" });
  const keyId = (made.body["key_info"] as { key_id?: string } | undefined)?.key_id;
  if (made.status !== 200 || keyId === undefined) throw refusal(endpoint, "create-key", made);
  return { keyId, created: true };
}
