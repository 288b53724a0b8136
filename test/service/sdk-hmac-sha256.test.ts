/**
 * SDK-HMAC-SHA256 against Huawei's own signer (`@huaweicloud/huaweicloud-sdk-core`
 * auth/AKSKSigner.js): for random methods, paths, queries, headers and bodies, the string to sign
 * the server rebuilds from what the SDK sends must give the SDK's signature, and the one signRequest
 * builds must too. Paths are given to the SDK as its generated clients give them, path parameters
 * unencoded: it signs legacy url.parse's path and sends WHATWG URL's (axios), and the server must
 * rebuild the former from the latter. The server's fast paths (unreserved strings, empty queries, remembered header
 * orders) are exercised by the same properties, since most generated names are plain.
 */
import test from "ava";
import fc from "fast-check";
import { createHash, createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { parse as legacyParse } from "node:url";
import {
  canonicalQuery, canonicalRequest, canonicalUri, parseAuthorization, parseQuery, parseSdkDate, sdkUrlEncode, signRequest, stringToSign,
} from "../../src/service/auth/sdk-hmac-sha256.js";

const require = createRequire(import.meta.url);

interface SdkSigner {
  sign(request: Record<string, unknown>, credential: { getAk(): string; getSk(): string }): Record<string, string>;
  urlEncode(text: string): string;
  CanonicalURI(path: string): string;
}
const { AKSKSigner } = require("@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner") as { AKSKSigner: SdkSigner };

const AK = "HSTESTACCESSKEY0001";
const SK = "test-secret-key-0123456789abcdef";
const CREDENTIAL = { getAk: () => AK, getSk: () => SK };

/** encodeURIComponent plus the characters it leaves that legacy url.parse would escape itself. */
const strictEncode = (text: string): string => encodeURIComponent(text).replace(/[!'()*]/gu, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const ENDPOINT = "http://kms.example:8731";
/** The path WHATWG URL sends for a path given to the SDK (what axios puts on the wire). */
const sentPath = (path: string): string => new URL(ENDPOINT + path).pathname;

/** Mostly the plain names requests carry, sometimes anything (no lone surrogates: no URL can carry them). */
const text = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.~-]{0,12}$/u),
  fc.string({ unit: "grapheme", maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 8 }).filter(encodeSafe),
);

function encodeSafe(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * A path parameter as a generated client passes it to HcClient (unencoded), without what no URL path
 * can carry that way: '/', '?', '#', '\\', a '%' (sent raw, not an escape), tab and line breaks (WHATWG
 * drops them), dot segments (WHATWG resolves them).
 */
const pathParam = text.filter((s) => !/[/?#%\\\t\n\r]/u.test(s) && s !== "." && s !== "..");

const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,10}$/u);
const headerValue = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/u);

const request = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH"),
  // Ends in a plain segment: legacy url.parse trims trailing whitespace off a URL, WHATWG does not.
  segments: fc.array(pathParam, { maxLength: 5 }).map((s) => [...s, "end"]),
  query: fc.dictionary(text.filter((s) => s !== "__proto__"), fc.oneof(text, fc.array(text, { minLength: 1, maxLength: 3 })), { maxKeys: 4 }),
  headers: fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
  body: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }), { nil: undefined }),
});

test("the server's string to sign gives the Huawei SDK's signature", (t) => {
  fc.assert(
    fc.property(request, (r) => {
      const path = "/" + r.segments.join("/");
      const rawPath = sentPath(path);
      const sent = AKSKSigner.sign(
        { method: r.method, endpoint: ENDPOINT + path, headers: { ...r.headers, "content-type": "application/json" }, queryParams: r.query, data: r.body },
        CREDENTIAL,
      );
      const lower = new Map(Object.entries(sent).map(([k, v]) => [k.toLowerCase(), String(v)]));
      const parsed = parseAuthorization(lower.get("authorization")!);
      t.truthy(parsed);
      const date = lower.get("x-sdk-date")!;
      t.not(parseSdkDate(date), undefined);
      const rawQuery = Object.entries(r.query)
        .flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => `${strictEncode(name)}=${strictEncode(v)}`))
        .join("&");
      const canonical = canonicalRequest({
        method: r.method,
        rawPath,
        rawQuery,
        signedHeaders: parsed!.signedHeaders,
        header: (name) => lower.get(name),
        payloadHash: createHash("sha256").update(r.body === undefined ? "" : JSON.stringify(r.body)).digest("hex"),
      });
      t.truthy(canonical);
      const signature = createHmac("sha256", SK).update(stringToSign(date, canonical!)).digest("hex");
      return signature === parsed!.signature;
    }),
    { numRuns: 300 },
  );
});

test("signRequest signs as the Huawei SDK does", (t) => {
  fc.assert(
    fc.property(request, (r) => {
      const path = "/" + r.segments.join("/");
      const body = r.body === undefined ? undefined : JSON.stringify(r.body);
      const ours = signRequest({ method: r.method, url: ENDPOINT + path, headers: r.headers, body, accessKey: AK, secretKey: SK, time: Date.UTC(2026, 0, 2, 3, 4, 5) });
      const theirs = AKSKSigner.sign(
        { method: r.method, endpoint: ENDPOINT + path, headers: { ...r.headers, "X-Sdk-Date": "20260102T030405Z" }, queryParams: {}, data: r.body },
        CREDENTIAL,
      );
      t.is(ours["x-sdk-date"], "20260102T030405Z");
      return ours["authorization"] === theirs["Authorization"];
    }),
    { numRuns: 200 },
  );
});

test("urlEncode, canonical URI and canonical query are the SDK's, fast paths included", (t) => {
  fc.assert(
    fc.property(text, (s) => sdkUrlEncode(s) === AKSKSigner.urlEncode(s)),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.array(pathParam, { maxLength: 5 }), (segments) => {
      const path = `/${segments.join("/")}/end`;
      return canonicalUri(sentPath(path)) === AKSKSigner.CanonicalURI(legacyParse(ENDPOINT + path).pathname!);
    }),
    { numRuns: 300 },
  );
  t.is(canonicalUri("/v1.0/p1/kms/encrypt-data"), "/v1.0/p1/kms/encrypt-data/");
  t.is(canonicalUri("/a%20b/"), "/a%2520b/");
  // A tag key "é" or "a|b" in DELETE .../tags/{key}: as the SDK signed it, not as WHATWG re-escaped it.
  t.is(canonicalUri("/tags/%C3%A9"), "/tags/%C3%A9/");
  t.is(canonicalUri("/tags/a|b'c^d"), "/tags/a%257Cb%2527c%255Ed/");
  // Escapes WHATWG never writes came from the caller's own string: the SDK encoded their '%' again.
  t.is(canonicalUri("/tags/%c3%a9%41"), "/tags/%25c3%25a9%2541/");
  t.is(canonicalQuery(parseQuery("")), "");
  t.is(canonicalQuery(parseQuery("b=2&a=x%20y&b=1")), "a=x%20y&b=1&b=2");
});

test("a remembered header order is the order of its own list", (t) => {
  const header = (name: string): string => `v-${name}`;
  const input = { method: "POST", rawPath: "/p", rawQuery: "", header, payloadHash: "0".repeat(64) };
  const first = canonicalRequest({ ...input, signedHeaders: ["x-b", "host", "x-a"] })!;
  // Same list again (now remembered), then a different list: each block follows its own names.
  t.is(canonicalRequest({ ...input, signedHeaders: ["x-b", "host", "x-a"] }), first);
  t.true(first.includes("host:v-host\nx-a:v-x-a\nx-b:v-x-b\n\nx-b;host;x-a\n"));
  const other = canonicalRequest({ ...input, signedHeaders: ["x-c", "host"] })!;
  t.true(other.includes("host:v-host\nx-c:v-x-c\n\nx-c;host\n"));
  t.is(canonicalRequest({ ...input, signedHeaders: ["x-c", "x-missing"], header: (n) => (n === "x-c" ? "1" : undefined) }), undefined);
});

test("a remembered X-Sdk-Date does not let a malformed date through", (t) => {
  t.is(parseSdkDate("20260102T030405Z"), Date.UTC(2026, 0, 2, 3, 4, 5));
  t.is(parseSdkDate("20260102T030405Z"), Date.UTC(2026, 0, 2, 3, 4, 5));
  t.is(parseSdkDate("20260230T030405Z"), undefined);
  t.is(parseSdkDate("20260102T030405"), undefined);
  t.is(parseSdkDate("20260102T030406Z"), Date.UTC(2026, 0, 2, 3, 4, 6));
});

test("a remembered SignedHeaders list is refused or accepted as it was the first time", (t) => {
  const auth = (list: string) => `SDK-HMAC-SHA256 Access=AK1, SignedHeaders=${list}, Signature=${"a".repeat(64)}`;
  for (let i = 0; i < 2; i++) {
    t.is(parseAuthorization(auth("host;x(bad);x-sdk-date")), undefined);
    const parsed = parseAuthorization(auth("Host;X-Sdk-Date"));
    t.deepEqual(parsed?.signedHeaders, ["host", "x-sdk-date"]);
    t.true(Object.isFrozen(parsed?.signedHeaders));
  }
});
