/**
 * X-Auth-Token tokens, as IAM's POST /v3/auth/tokens issues them: scoped to one project, expiring.
 * A token is self-contained and MACed in the token (HSM) under the service's MAC key, with a label
 * that keeps these MACs apart from the audit checkpoints':
 *
 *   token = "hsk1." base64url(payload JSON) "." base64url(HMAC-SHA256(macKey, LABEL ‖ payload))
 *
 * so that any thread or restart of the service verifies it without a token table, and nothing but
 * the HSM can mint one. A token names the credential (AK) it was obtained with: IAM invalidates a
 * user's tokens when the user is disabled or deleted or "the IAM user's password or access key" is
 * changed (API reference, "Obtaining a User Token Through Password Authentication"), so the
 * authenticator answers a token as invalid once its principal is disabled or its credential is
 * inactive, expired or gone — there is no other way to revoke one before it expires.
 */
import { randomBytes } from "node:crypto";
import type { KmsBackend } from "../../kms/backend/backend.js";
import { KmsError } from "../../kms/errors.js";

const PREFIX = "hsk1.";
const LABEL = Buffer.from("hsmkit-auth-token-v1\0", "utf8");
/** Longest token we parse: a payload of a few ids and times is far below. */
const MAX_TOKEN_CHARS = 2048;

export interface TokenClaims {
  /** The principal (user id). */
  principalId: string;
  /** The principal's account. */
  domainId: string;
  /** The project the token is scoped to. */
  projectId: string;
  /** The credential whose SK or signature obtained the token. */
  accessKey: string;
  /** ms since the epoch. */
  issuedAt: number;
  expiresAt: number;
}

export class TokenIssuer {
  constructor(private readonly backend: KmsBackend) {}

  issue(claims: Omit<TokenClaims, "issuedAt" | "expiresAt">, now: number, ttlSeconds: number): { token: string; claims: TokenClaims } {
    const full: TokenClaims = { ...claims, issuedAt: now, expiresAt: now + ttlSeconds * 1000 };
    const payload = Buffer.from(JSON.stringify({
      u: full.principalId, d: full.domainId, p: full.projectId, k: full.accessKey, i: full.issuedAt, e: full.expiresAt, n: randomBytes(9).toString("base64url"),
    }), "utf8");
    const mac = this.backend.mac(Buffer.concat([LABEL, payload]));
    return { token: `${PREFIX}${payload.toString("base64url")}.${mac.toString("base64url")}`, claims: full };
  }

  /**
   * The claims of a genuine, unexpired token. KMS.0302 when it is not one of ours or was altered,
   * or was issued more than `leewayMs` after `now`; KMS.0303 when expired.
   *
   * A token issued "in the future" was minted while the clock ran ahead (an NTP step, a VM
   * restored with a wrong clock): its expiry lies as far ahead as the clock did, so once the clock
   * is set right it would be honoured for the jump plus its lifetime. The clock cannot tell which
   * of the two times was wrong, so such a token is refused as not one we can vouch for; the
   * caller gets a new one. `leewayMs` absorbs the clock slewing back a little.
   */
  verify(token: string, now: number, leewayMs = 0): TokenClaims {
    if (token.length > MAX_TOKEN_CHARS || !token.startsWith(PREFIX)) throw new KmsError("KMS.0302", "not an hsmkit token");
    const parts = token.slice(PREFIX.length).split(".");
    if (parts.length !== 2 || !/^[A-Za-z0-9_-]+$/u.test(parts[0]!) || !/^[A-Za-z0-9_-]+$/u.test(parts[1]!)) throw new KmsError("KMS.0302", "malformed token");
    const payload = Buffer.from(parts[0]!, "base64url");
    const mac = Buffer.from(parts[1]!, "base64url");
    if (!this.backend.verifyMac(Buffer.concat([LABEL, payload]), mac)) throw new KmsError("KMS.0302", "token MAC does not verify");
    let raw: unknown;
    try {
      raw = JSON.parse(payload.toString("utf8"));
    } catch {
      throw new KmsError("KMS.0302", "token payload is not JSON");
    }
    const p = raw as Record<string, unknown>;
    // A token minted before tokens named their credential (no "k") is incomplete too: whether its
    // credential still holds cannot be told, so its holder gets a new one.
    if (typeof p["u"] !== "string" || typeof p["d"] !== "string" || typeof p["p"] !== "string" || typeof p["k"] !== "string" ||
      typeof p["i"] !== "number" || typeof p["e"] !== "number") {
      throw new KmsError("KMS.0302", "token payload is incomplete");
    }
    if (now >= p["e"]) throw new KmsError("KMS.0303", "token expired");
    if (p["i"] > now + leewayMs) throw new KmsError("KMS.0302", "token issued after the present time: the clock was ahead when it was issued, or is behind now");
    return { principalId: p["u"], domainId: p["d"], projectId: p["p"], accessKey: p["k"], issuedAt: p["i"], expiresAt: p["e"] };
  }
}
