/**
 * SDK-HMAC-SHA256, the AK/SK request signature of Huawei Cloud's SDKs, exactly as
 * `@huaweicloud/huaweicloud-sdk-core` (auth/AKSKSigner.js) computes it, for both sides: the server
 * rebuilds the string to sign from the request it received; the CLI signs the requests it sends.
 *
 *   CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA-256(body))
 *   StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA-256(CanonicalRequest))
 *   Signature        = hex(HMAC-SHA256(SK, StringToSign))          (the SK itself is the HMAC key)
 *   Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2;…>, Signature=<hex>
 *
 * - CanonicalURI: the path the SDK signed, rebuilt from the one it sent, ending in '/'. The SDK signs
 *   legacy url.parse's path, each '/'-separated segment encoded again with its urlEncode (so an
 *   escape's '%' becomes '%25'), but sends WHATWG URL's (axios); the two differ for a path parameter,
 *   which the SDK puts in the URL unencoded: url.parse leaves controls and non-ASCII characters raw
 *   (urlEncode makes them the very %XX WHATWG sends) and escapes ' ^ | (WHATWG sends them raw).
 * - CanonicalQuery: decoded names and values, names sorted, each encoded, repeated names' values
 *   sorted, joined with '&'.
 * - CanonicalHeaders: every signed header as `lowercase-name:value\n`, sorted by name, the value as
 *   sent (not trimmed). SignedHeaders: the lowercased names joined with ';'.
 * - X-Sdk-Date: `YYYYMMDDTHHmmssZ` (UTC).
 */
import { createHmac, hash } from "node:crypto";

export const ALGORITHM = "SDK-HMAC-SHA256";
/** SHA-256 of the empty string: the payload hash of a request without a body. */
export const EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Characters urlEncode leaves as they are: A-Z a-z 0-9 - _ . ~ (as the SDK's noEscape table). */
const UNRESERVED = /^[A-Za-z0-9\-_.~]$/u;

/** A whole string of unreserved characters: urlEncode returns it as it is (the usual case, tested at once). */
const ALL_UNRESERVED = /^[A-Za-z0-9\-_.~]*$/u;
/** A path of unreserved characters and '/': its canonical form is itself (plus a final '/'). */
const PLAIN_PATH = /^[A-Za-z0-9\-_.~/]*$/u;

/** The SDK's urlEncode: RFC 3986 unreserved characters kept, everything else %XX of its UTF-8 bytes, uppercase hex. */
export function sdkUrlEncode(text: string): string {
  if (ALL_UNRESERVED.test(text)) return text;
  let out = "";
  for (const ch of text) {
    if (UNRESERVED.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, "utf8")) out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** An escape WHATWG URL writes (uppercase) for a character legacy url.parse leaves raw: a control or a non-ASCII byte. */
const WHATWG_ONLY_ESCAPE = /^%(?:[01][0-9A-F]|7F|[89A-F][0-9A-F])$/u;
/** Characters WHATWG URL leaves raw in a path that legacy url.parse escaped before the SDK encoded them again. */
const LEGACY_ONLY_ESCAPED: ReadonlyMap<string, string> = new Map([["'", "%2527"], ["^", "%255E"], ["|", "%257C"]]);

function canonicalSegment(segment: string): string {
  if (ALL_UNRESERVED.test(segment)) return segment;
  let out = "";
  for (let i = 0; i < segment.length;) {
    if (segment[i] === "%" && WHATWG_ONLY_ESCAPE.test(segment.slice(i, i + 3))) {
      out += segment.slice(i, i + 3);
      i += 3;
      continue;
    }
    const ch = String.fromCodePoint(segment.codePointAt(i)!);
    out += LEGACY_ONLY_ESCAPED.get(ch) ?? sdkUrlEncode(ch);
    i += ch.length;
  }
  return out;
}

/** The canonical URI of a path as sent (still percent-encoded). */
export function canonicalUri(rawPath: string): string {
  const uri = PLAIN_PATH.test(rawPath) ? rawPath : rawPath.split("/").map(canonicalSegment).join("/");
  return uri.endsWith("/") ? uri : uri + "/";
}

/** The canonical query string of decoded query parameters. */
export function canonicalQuery(params: ReadonlyArray<[string, string]>): string {
  if (params.length === 0) return "";
  const byName = new Map<string, string[]>();
  for (const [name, value] of params) {
    const values = byName.get(name);
    if (values) values.push(value);
    else byName.set(name, [value]);
  }
  const names = [...byName.keys()].sort();
  const parts: string[] = [];
  for (const name of names) {
    const values = byName.get(name)!;
    if (values.length > 1) values.sort();
    for (const value of values) parts.push(`${sdkUrlEncode(name)}=${sdkUrlEncode(value)}`);
  }
  return parts.join("&");
}

/** The decoded parameters of a raw query string (without '?'), in order. */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  if (rawQuery === "") return [];
  return [...new URLSearchParams(rawQuery)];
}

export interface CanonicalInput {
  method: string;
  /** The request target's path, as sent. */
  rawPath: string;
  /** The request target's query, as sent, without '?'. */
  rawQuery: string;
  /** Lowercased signed header names, in the order the Authorization header lists them (the SDK: sorted). */
  signedHeaders: readonly string[];
  /** A header's value as received (undefined when absent: such a request cannot verify). */
  header: (name: string) => string | undefined;
  /**
   * hex SHA-256 of the body bytes, always. The SDK's X-Sdk-Content-Sha256 (UNSIGNED-PAYLOAD, which
   * it sends for non-JSON bodies) is not honoured: a KMS signs every body it acts on.
   */
  payloadHash: string;
}

/** hex(SHA-256(data)). */
export function sha256Hex(data: string | Uint8Array): string {
  // One-shot (Node 20.12+): no Hash object per request.
  return hash("sha256", data, "hex");
}

/**
 * Signed-header lists seen lately (joined with ';') → the names in the SDK's header-block order.
 * A client sends the same list with every request, so the localeCompare sort (slow: ICU) runs once
 * per list; the map is bounded because the lists come from clients.
 */
const HEADER_ORDER = new Map<string, readonly string[]>();
const HEADER_ORDER_MAX = 64;

function headerBlockOrder(signedHeaders: readonly string[], joined: string): readonly string[] {
  let names = HEADER_ORDER.get(joined);
  if (names === undefined) {
    // The SDK orders the header block with localeCompare but lists SignedHeaders in the order the
    // Authorization header carries (lodash sortBy); both are reproduced as they are.
    names = Object.freeze([...signedHeaders].sort((a, b) => a.localeCompare(b)));
    if (HEADER_ORDER.size >= HEADER_ORDER_MAX) HEADER_ORDER.clear();
    HEADER_ORDER.set(joined, names);
  }
  return names;
}

/** The canonical request, or undefined when a signed header is missing from the request. */
export function canonicalRequest(input: CanonicalInput): string | undefined {
  const joined = input.signedHeaders.join(";");
  let headers = "";
  for (const name of headerBlockOrder(input.signedHeaders, joined)) {
    const value = input.header(name);
    if (value === undefined) return undefined;
    headers += `${name}:${value}\n`;
  }
  const query = input.rawQuery === "" ? "" : canonicalQuery(parseQuery(input.rawQuery));
  return `${input.method}\n${canonicalUri(input.rawPath)}\n${query}\n${headers}\n${joined}\n${input.payloadHash}`;
}

/** The string to sign of a canonical request made at `sdkDate`. */
export function stringToSign(sdkDate: string, canonical: string): string {
  return `${ALGORITHM}\n${sdkDate}\n${sha256Hex(canonical)}`;
}

export interface ParsedAuthorization {
  accessKey: string;
  /** Lowercased, as listed (shared between requests: frozen). */
  signedHeaders: readonly string[];
  /** Lowercase hex (64 digits). */
  signature: string;
}

/** An HTTP header name (RFC 9110 token), lowercased. */
const HEADER_NAME = /^[a-z0-9!#$%&'*+\-.^_`|~]+$/u;
const AUTHORIZATION = /^SDK-HMAC-SHA256\s+Access=([^,\s]{1,128}),\s*SignedHeaders=([^,\s]{1,1024}),\s*Signature=([0-9a-fA-F]{64})$/u;

/** SignedHeaders values seen lately → their lowercased names (frozen), or null when one is not a header name. */
const SIGNED_HEADER_LISTS = new Map<string, readonly string[] | null>();

function signedHeaderList(raw: string): readonly string[] | undefined {
  let list = SIGNED_HEADER_LISTS.get(raw);
  if (list === undefined) {
    const names = raw.toLowerCase().split(";");
    list = names.every((h) => HEADER_NAME.test(h)) ? Object.freeze(names) : null;
    // Bounded: the values come from clients (one SDK sends one list with every request).
    if (SIGNED_HEADER_LISTS.size >= HEADER_ORDER_MAX) SIGNED_HEADER_LISTS.clear();
    SIGNED_HEADER_LISTS.set(raw, list);
  }
  return list ?? undefined;
}

/** Parses an Authorization header; undefined when it is not an SDK-HMAC-SHA256 one. */
export function parseAuthorization(value: string): ParsedAuthorization | undefined {
  const m = AUTHORIZATION.exec(value.trim());
  if (!m) return undefined;
  const signedHeaders = signedHeaderList(m[2]!);
  if (signedHeaders === undefined) return undefined;
  return { accessKey: m[1]!, signedHeaders, signature: m[3]!.toLowerCase() };
}

const SDK_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/u;

/** The last well-formed X-Sdk-Date parsed and its time: requests of one second share it. */
let lastSdkDate = "";
let lastSdkDateMs = 0;

/** ms since the epoch of an X-Sdk-Date, or undefined when malformed. */
export function parseSdkDate(value: string): number | undefined {
  if (value === lastSdkDate) return lastSdkDateMs;
  const m = SDK_DATE.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, s);
  const back = new Date(t);
  // Reject dates Date.UTC normalized (e.g. month 13, Feb 30).
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || back.getUTCHours() !== h || back.getUTCMinutes() !== mi || back.getUTCSeconds() !== s) {
    return undefined;
  }
  lastSdkDate = value;
  lastSdkDateMs = t;
  return t;
}

/** X-Sdk-Date for a time (ms). */
export function formatSdkDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/gu, "").replace(/\.\d{3}Z$/u, "Z");
}

export interface SignRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  /** Headers to sign besides host and X-Sdk-Date (e.g. content-type, x-project-id). */
  headers: Record<string, string>;
  body?: string | Uint8Array | undefined;
  accessKey: string;
  secretKey: string;
  /** Default: now. */
  time?: number;
}

/** Signs a request as the SDK does: returns every header to send (the given ones, Host, X-Sdk-Date, Authorization). */
export function signRequest(request: SignRequest): Record<string, string> {
  const url = new URL(request.url);
  const date = formatSdkDate(request.time ?? Date.now());
  const headers: Record<string, string> = { ...request.headers, host: url.host, "x-sdk-date": date };
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const signedHeaders = [...lower.keys()].sort();
  const body = request.body ?? "";
  const canonical = canonicalRequest({
    method: request.method.toUpperCase(),
    rawPath: url.pathname,
    rawQuery: url.search.replace(/^\?/u, ""),
    signedHeaders,
    header: (name) => lower.get(name),
    payloadHash: body.length === 0 ? EMPTY_BODY_SHA256 : sha256Hex(body),
  })!;
  const signature = createHmac("sha256", request.secretKey).update(stringToSign(date, canonical)).digest("hex");
  return { ...headers, authorization: `${ALGORITHM} Access=${request.accessKey}, SignedHeaders=${signedHeaders.join(";")}, Signature=${signature}` };
}
