/**
 * What a request authenticates with, taken from its headers before anything else is looked at: an
 * X-Auth-Token, or an SDK-HMAC-SHA256 signature whose X-Sdk-Date is inside the clock-skew window,
 * with the string to sign rebuilt from the request as received (raw path and query, the signed
 * headers, SHA-256 of the raw body). Verifying it is the service's (authenticator.ts), where the
 * SKs are.
 */
import type { FastifyRequest } from "fastify";
import { KmsError } from "../kms/errors.js";
import type { AuthEvidence } from "../service/auth/authenticator.js";
import { canonicalRequest, parseAuthorization, parseSdkDate, sha256Hex, stringToSign, EMPTY_BODY_SHA256 } from "../service/auth/sdk-hmac-sha256.js";

/** A header's value as received; repeated headers joined with ",". */
export function headerValue(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(",") : String(value);
}

/** The authentication evidence of a request (see above). KMS.0301 / APIGW.0301 when there is none usable. */
export function evidenceOf(request: FastifyRequest, now: number, clockSkewSeconds: number): AuthEvidence {
  const token = headerValue(request, "x-auth-token");
  if (token !== undefined) {
    if (token.length === 0) throw new KmsError("KMS.0301", "empty X-Auth-Token");
    return { kind: "token", token };
  }
  return signatureEvidenceOf(request, now, clockSkewSeconds);
}

/** The SDK-HMAC-SHA256 evidence of a request, whatever else it carries (APIGW.0301 when there is none usable). */
export function signatureEvidenceOf(request: FastifyRequest, now: number, clockSkewSeconds: number): AuthEvidence {
  const authorization = headerValue(request, "authorization");
  if (authorization === undefined) throw new KmsError("APIGW.0301", "no Authorization or X-Auth-Token header");
  const parsed = parseAuthorization(authorization);
  if (parsed === undefined) throw new KmsError("APIGW.0301", "Authorization is not SDK-HMAC-SHA256");
  if (!parsed.signedHeaders.includes("x-sdk-date")) throw new KmsError("APIGW.0301", "X-Sdk-Date is not signed");
  const date = headerValue(request, "x-sdk-date") ?? "";
  const signedAt = parseSdkDate(date);
  if (signedAt === undefined) throw new KmsError("APIGW.0301", "malformed X-Sdk-Date");
  if (Math.abs(now - signedAt) > clockSkewSeconds * 1000) throw new KmsError("APIGW.0301", "X-Sdk-Date outside the clock-skew window");
  const raw = request.raw.url ?? "/";
  const q = raw.indexOf("?");
  const body = request.rawBody;
  const canonical = canonicalRequest({
    method: request.method,
    rawPath: q < 0 ? raw : raw.slice(0, q),
    rawQuery: q < 0 ? "" : raw.slice(q + 1),
    signedHeaders: parsed.signedHeaders,
    header: (name) => headerValue(request, name),
    payloadHash: body === undefined || body.length === 0 ? EMPTY_BODY_SHA256 : sha256Hex(body),
  });
  if (canonical === undefined) throw new KmsError("APIGW.0301", "a signed header is missing");
  return { kind: "aksk", accessKey: parsed.accessKey, signature: parsed.signature, stringToSign: stringToSign(date, canonical), signedAt };
}
