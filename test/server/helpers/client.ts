/**
 * Clients for the server tests.
 *
 * - SdkClient: Huawei's own `@huaweicloud/huaweicloud-sdk-core` HcClient, signing every request with
 *   an AK/SK as the Huawei Cloud SDKs do — the proof that a stock Huawei client works unchanged.
 * - signedRequest / rawRequest: requests built by hand with src/service/auth/sdk-hmac-sha256.ts's
 *   signRequest and fetch, so that a test can change a request after it was signed.
 * - assertHuaweiError: the error contract (status, Huawei body, X-Request-Id).
 */
import type { ExecutionContext } from "ava";
import { createRequire } from "node:module";
import { isDeepStrictEqual } from "node:util";
import { KMS_ERRORS, type KmsErrorCode } from "../../../src/kms/errors.js";
import { signRequest } from "../../../src/service/auth/sdk-hmac-sha256.js";

const require = createRequire(import.meta.url);

interface HcRequestOptions {
  method: string;
  url: string;
  contentType?: string;
  queryParams: Record<string, unknown>;
  pathParams: Record<string, string>;
  headers: Record<string, string>;
  data?: unknown;
}

interface HcClientLike {
  sendRequest(options: HcRequestOptions): Promise<Record<string, unknown> & { httpStatusCode: number }>;
}

interface SdkCore {
  HcClient: new (httpClient: unknown, options: unknown) => {
    withCredential(credential: unknown): { withEndpoints(endpoints: string[]): HcClientLike };
  };
  DefaultHttpClient: new (options: unknown, endpoints: string[]) => object;
  BasicCredentials: new () => { withAk(ak: string): { withSk(sk: string): { withProjectId(id: string): unknown } } };
}

const SILENT_LOGGER = { debug() {}, info() {}, warn() {}, error() {} };

let core: SdkCore | undefined;

/** The SDK core's classes, unchanged: the server's error bodies carry error_code where the core reads it. */
function sdkCore(): SdkCore {
  if (core !== undefined) return core;
  const { HcClient } = require("@huaweicloud/huaweicloud-sdk-core/HcClient") as { HcClient: SdkCore["HcClient"] };
  const { DefaultHttpClient } = require("@huaweicloud/huaweicloud-sdk-core/http/DefaultHttpClient") as { DefaultHttpClient: SdkCore["DefaultHttpClient"] };
  const { BasicCredentials } = require("@huaweicloud/huaweicloud-sdk-core") as { BasicCredentials: SdkCore["BasicCredentials"] };
  core = { HcClient, DefaultHttpClient, BasicCredentials };
  return core;
}

/** What an SDK call rejected with (the core's ClientRequestException / ServerResponseException). */
export interface SdkFailure {
  httpStatusCode: number;
  errorCode: string | undefined;
  errorMsg: string | undefined;
  requestId: string | undefined;
}

export interface Identity {
  ak: string;
  sk: string;
  projectId: string;
}

/** A Huawei SDK client on one server, signing with one AK/SK, in one project. */
export class SdkClient {
  readonly #client: HcClientLike;
  readonly projectId: string;

  constructor(url: string, identity: Identity) {
    const { HcClient, DefaultHttpClient, BasicCredentials } = sdkCore();
    const credential = new BasicCredentials().withAk(identity.ak).withSk(identity.sk).withProjectId(identity.projectId);
    this.#client = new HcClient(new DefaultHttpClient({ logger: SILENT_LOGGER }, [url]), {}).withCredential(credential).withEndpoints([url]);
    this.projectId = identity.projectId;
  }

  /** Any request under /v1.0/{project_id}/kms: `path` such as "/create-key" or "/<id>/tags". Resolves with the body and status. */
  async send(method: "GET" | "POST" | "DELETE", path: string, data?: unknown, query: Record<string, unknown> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const options: HcRequestOptions = {
      method, url: `/v1.0/{project_id}/kms${path}`, queryParams: query, pathParams: {}, headers: {},
    };
    if (data !== undefined) {
      options.contentType = "application/json;charset=UTF-8";
      options.data = data;
    }
    const response = await this.#client.sendRequest(options);
    const { httpStatusCode, ...body } = response;
    return { status: httpStatusCode, body };
  }

  /** POST /v1.0/{project_id}/kms/<operation> with a JSON body; the response body (2xx only). */
  async post<T = Record<string, any>>(operation: string, data: unknown = {}): Promise<T> {
    return (await this.send("POST", `/${operation}`, data)).body as T;
  }

  async get<T = Record<string, any>>(path: string, query: Record<string, unknown> = {}): Promise<T> {
    return (await this.send("GET", path, undefined, query)).body as T;
  }

  /** The failure a request is refused with; fails the test if it succeeds. */
  async fails(t: ExecutionContext, promise: Promise<unknown>, status: number, code: KmsErrorCode, message?: string): Promise<SdkFailure> {
    const error = (await t.throwsAsync(promise, undefined, message)) as unknown as SdkFailure | undefined;
    t.is(error?.httpStatusCode, status, `${message ?? ""} status (${error?.errorCode})`.trim());
    t.is(error?.errorCode, code, `${message ?? ""} code`.trim());
    t.truthy(error?.requestId, "X-Request-Id on the error");
    return error!;
  }
}

/** The path of a KMS operation in a project. */
export function kmsPath(projectId: string, operation: string): string {
  return `/v1.0/${projectId}/kms/${operation.replace(/^\//u, "")}`;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any;
}

async function toRaw(response: Response): Promise<RawResponse> {
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

export interface RawRequest {
  method: string;
  /** Path and query, e.g. "/v1.0/<p>/kms/describe-key". */
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | undefined;
}

/** Sends a request as given (no signature added). */
export async function rawRequest(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const init: RequestInit = { method: request.method, headers: request.headers ?? {} };
  if (request.body !== undefined) init.body = request.body as NonNullable<RequestInit["body"]>;
  return toRaw(await fetch(baseUrl + request.path, init));
}

export interface SignedRequest extends RawRequest {
  identity: { ak: string; sk: string };
  /** Signing time (ms), default now. */
  time?: number;
  /** Headers signed besides host and x-sdk-date; default content-type application/json when there is a body. */
  signedHeaders?: Record<string, string>;
}

/** The headers of `request` signed as the SDK signs (Authorization, X-Sdk-Date, Host included). */
export function signedHeaders(baseUrl: string, request: SignedRequest): Record<string, string> {
  const headers = request.signedHeaders ?? (request.body !== undefined ? { "content-type": "application/json" } : {});
  return {
    ...signRequest({
      method: request.method, url: baseUrl + request.path, headers, body: request.body,
      accessKey: request.identity.ak, secretKey: request.identity.sk, ...(request.time !== undefined ? { time: request.time } : {}),
    }),
    ...request.headers,
  };
}

/** Signs and sends; `mutate` may change the request after signing. */
export async function signedRequest(baseUrl: string, request: SignedRequest, mutate?: (r: { path: string; headers: Record<string, string>; body?: string | Uint8Array | undefined }) => void): Promise<RawResponse> {
  const headers = signedHeaders(baseUrl, request);
  const sent = { path: request.path, headers, body: request.body };
  mutate?.(sent);
  // fetch sets Host from the URL itself; it refuses a Host header of its own.
  const { host: _host, ...rest } = sent.headers;
  return rawRequest(baseUrl, { method: request.method, path: sent.path, headers: rest, body: sent.body });
}

/** The Huawei error body of `code` for a response with this X-Request-Id (app.ts / errors.ts errorBody). */
export function huaweiErrorBody(code: KmsErrorCode, requestId: string | null): unknown {
  const message = KMS_ERRORS[code].message;
  return { error: { error_code: code, error_msg: message }, error_code: code, error_msg: message, request_id: requestId };
}

/**
 * The error contract: `status`; Huawei KMS's body `{"error":{"error_code","error_msg"}}` with the
 * code's registered message, repeated at the top level beside `request_id` (where the SDK core reads
 * it), and nothing else; JSON; an X-Request-Id equal to request_id.
 */
export function assertHuaweiError(t: ExecutionContext, response: RawResponse, status: number, code: KmsErrorCode, message?: string): void {
  const what = message === undefined ? "" : `${message}: `;
  const requestId = response.headers.get("x-request-id");
  t.is(response.status, status, `${what}status (body ${response.text.slice(0, 200)})`);
  t.deepEqual(response.json, huaweiErrorBody(code, requestId), `${what}body`);
  t.regex(response.headers.get("content-type") ?? "", /^application\/json/u, `${what}content type`);
  t.truthy(requestId, `${what}X-Request-Id`);
}

/** Why an error response is not well formed (undefined when it is): a 4xx (never 5xx) with the Huawei body of a registered code of that status, and X-Request-Id. */
export function isWellFormedError(response: { status: number; json: any; headers: { get(name: string): string | null } }): string | undefined {
  if (response.status < 400 || response.status >= 500) return `status ${response.status}`;
  const requestId = response.headers.get("x-request-id");
  if (!requestId) return "no X-Request-Id";
  const code = response.json?.error?.error_code as KmsErrorCode | undefined;
  if (typeof code !== "string" || !(code in KMS_ERRORS)) return `not a Huawei error body with a registered code: ${JSON.stringify(response.json)?.slice(0, 200)}`;
  if (KMS_ERRORS[code].status !== response.status) return `code ${code} with status ${response.status}`;
  const expected = huaweiErrorBody(code, requestId);
  if (!isDeepStrictEqual(response.json, expected)) return `body ${JSON.stringify(response.json).slice(0, 200)} is not ${JSON.stringify(expected)}`;
  return undefined;
}

/** A response body without its request_id: what two refusals of the same kind must share. */
export function withoutRequestId(response: RawResponse): unknown {
  const { request_id: _id, ...rest } = (response.json ?? {}) as Record<string, unknown>;
  return rest;
}
