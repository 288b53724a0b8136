/**
 * Who is calling: verifies the evidence the HTTP layer extracted from a request — an SDK-HMAC-SHA256
 * signature over the string to sign it rebuilt (sdk-hmac-sha256.ts), or an X-Auth-Token — and
 * returns the principal. Runs where the KMS runs (it needs the store's credentials and the token):
 *
 * - SKs are opened from the store once (credential-sealer.ts) and kept as native HMAC keys in
 *   page-locked memory (crypto/keys.ts), never as JavaScript strings; a credential's status and
 *   expiry are re-read after `refreshMs`.
 * - The HMAC is compared in constant time by the native core.
 * - A signature is good only while its X-Sdk-Date is inside the clock-skew window (checked by the
 *   HTTP layer). Within the window the SDK's signature cannot tell a replay from a legitimate
 *   identical request made in the same second (it signs no nonce: two gen-random calls of one
 *   length in one second carry one signature), so rejecting repeats is opt-in
 *   (`rejectReplays`, auth.rejectReplays): then a signature is accepted once. The memory of
 *   signatures seen is bounded; when it is full the oldest are forgotten and every request dated
 *   at or before the newest forgotten one is refused, so an evicted signature still cannot come back.
 * - Every failure of AK/SK authentication is the one APIGW.0301, whatever the cause.
 * - A disabled principal is refused here, as IAM refuses a disabled user "through the management
 *   console or programmatic access" (Huawei IAM user guide, "Viewing or Modifying IAM User
 *   Information"): its AK/SK is APIGW.0301 like any bad credential, its tokens KMS.0302 like a
 *   token that is not one of ours — also for a principal that no longer exists, so neither answer
 *   tells whether it does. The principal's state is re-read after `refreshMs`, as a credential's.
 * - A token dies with the credential it was obtained with (tokens.ts): once that credential is
 *   inactive, expired or deleted, or no longer the principal's, its tokens are KMS.0302 too (its
 *   state re-read after `refreshMs`; its SK is not opened for this).
 */
import { destroyKey, importKey, type KeyHandle } from "../../crypto/keys.js";
import { hmacSign, hmacVerify } from "../../crypto/hmac.js";
import { KmsError } from "../../kms/errors.js";
import type { KmsStore } from "../../kms/store/store.js";
import { openCredentialSecret, type SecretSealer } from "../../kms/store/secrets.js";
import { TokenIssuer, type TokenClaims } from "./tokens.js";

/** What the HTTP layer hands over to be verified. */
export type AuthEvidence =
  | {
    kind: "aksk";
    accessKey: string;
    /** hex, lowercase. */
    signature: string;
    stringToSign: string;
    /** X-Sdk-Date, ms since the epoch (the HTTP layer checked the skew window). */
    signedAt: number;
  }
  | { kind: "token"; token: string };

export interface Authenticated {
  principalId: string;
  domainId: string;
  /** Token: the project it is scoped to. AK/SK: undefined (any project the principal holds a role in). */
  scopeProjectId: string | undefined;
  /** The credential proved: the AK that signed or was presented, or the one a token was obtained with. */
  accessKey: string;
  /** "aksk:<AK>", "password:<AK>" or "token": for logs and audit sources. */
  method: string;
}

interface CachedPrincipal {
  active: boolean;
  readAt: number;
}

/** A credential's state as tokens obtained with it need it (no SK). */
interface CachedCredentialState {
  /** undefined: no such credential. */
  principalId: string | undefined;
  active: boolean;
  expiresAt: number | null;
  readAt: number;
}

interface CachedCredential {
  principalId: string;
  domainId: string;
  key: KeyHandle;
  /**
   * The SK's length in bytes. HMAC pads a short key with zeros (RFC 2104 section 2), so an SK
   * followed by NULs is the same HMAC key: a secret presented in clear must have the SK's length too.
   */
  secretBytes: number;
  active: boolean;
  expiresAt: number | null;
  readAt: number;
}

export interface AuthenticatorOptions {
  store: KmsStore;
  sealer: SecretSealer;
  tokens: TokenIssuer;
  clockSkewSeconds: number;
  /** How long a credential's record is trusted before being read again, ms (default 1000). */
  refreshMs?: number;
  /** Most credentials kept opened, and most token principals' and credentials' states kept (default 10 000 each). */
  maxCredentials?: number;
  /** Accept each signature once within the skew window (default false: see above). */
  rejectReplays?: boolean;
  /** Signatures remembered at most when rejecting replays (default 500 000, ~40 MB). */
  maxRememberedSignatures?: number;
}

const ENC = new TextEncoder();

/**
 * Whether a state read at `readAt` may still be trusted at `now`. A read dated after `now` means
 * the clock has stepped back since: it is stale, not fresh — otherwise a credential or principal
 * disabled meanwhile would keep working for as long as the clock had been ahead.
 */
function fresh(readAt: number, now: number, refreshMs: number): boolean {
  return readAt <= now && now - readAt <= refreshMs;
}

/** Sets `key` in a cache of at most `max` entries, forgetting the oldest first when `key` is new to a full one. */
function setBounded<V>(cache: Map<string, V>, key: string, value: V, max: number): void {
  if (!cache.has(key) && cache.size >= max) cache.delete(cache.keys().next().value as string);
  cache.set(key, value);
}

export class Authenticator {
  readonly #options: AuthenticatorOptions;
  readonly #credentials = new Map<string, CachedCredential>();
  /** Whether a token's principal exists and is enabled, by principal id. */
  readonly #principals = new Map<string, CachedPrincipal>();
  /** The states of the credentials tokens were obtained with, by AK. */
  readonly #tokenCredentials = new Map<string, CachedCredentialState>();
  /** Signatures seen (first 16 hex digits) → their X-Sdk-Date (ms), in arrival order. */
  readonly #seen = new Map<string, number>();
  /** Requests dated at or before this (ms) are refused: their signatures may have been forgotten. */
  #floor = -Infinity;
  #lastPrune = 0;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
  }

  async authenticate(evidence: AuthEvidence, now: number): Promise<Authenticated> {
    if (evidence.kind === "token") return this.#token(evidence.token, now);
    return this.#aksk(evidence, now);
  }

  /** Verifies an AK/SK pair presented in clear (IAM password-style token requests): APIGW.0301 when wrong. */
  async checkSecret(accessKey: string, secretKey: string, now: number): Promise<Authenticated> {
    const credential = await this.#credential(accessKey, now);
    const presented = ENC.encode(secretKey);
    // Compare as HMACs under the stored key: constant time, and the stored SK never leaves native memory.
    const probe = importKey(presented.length > 0 ? presented : ENC.encode("\0"));
    try {
      const challenge = ENC.encode(`hsmkit-sk-check\0${accessKey}`);
      const sameKey = hmacVerify(credential.key, "sha256", challenge, hmacSign(probe, "sha256", challenge));
      if (!sameKey || presented.length !== credential.secretBytes) throw new KmsError("APIGW.0301", "secret key mismatch");
    } finally {
      destroyKey(probe);
    }
    return { principalId: credential.principalId, domainId: credential.domainId, scopeProjectId: undefined, accessKey, method: `password:${accessKey}` };
  }

  /** Forgets opened credentials (after a credential changed). */
  invalidate(accessKey?: string): void {
    for (const [ak, c] of this.#credentials) {
      if (accessKey === undefined || ak === accessKey) {
        destroyKey(c.key);
        this.#credentials.delete(ak);
      }
    }
  }

  close(): void {
    this.invalidate();
    this.#principals.clear();
    this.#tokenCredentials.clear();
    this.#seen.clear();
  }

  async #token(token: string, now: number): Promise<Authenticated> {
    const claims: TokenClaims = this.#options.tokens.verify(token, now, this.#options.clockSkewSeconds * 1000);
    if (!(this.#principalActiveNow(claims.principalId, now) ?? await this.#readPrincipal(claims.principalId, now))) {
      throw new KmsError("KMS.0302", "token of a disabled or unknown principal");
    }
    if (!await this.#tokenCredentialHolds(claims.accessKey, claims.principalId, now)) {
      throw new KmsError("KMS.0302", "token of an inactive, expired or deleted credential");
    }
    return { principalId: claims.principalId, domainId: claims.domainId, scopeProjectId: claims.projectId, accessKey: claims.accessKey, method: "token" };
  }

  /** Whether the credential a token was obtained with is still the principal's, active and unexpired at `now`. */
  async #tokenCredentialHolds(accessKey: string, principalId: string, now: number): Promise<boolean> {
    let state = this.#tokenCredentials.get(accessKey);
    if (state === undefined || !fresh(state.readAt, now, this.#options.refreshMs ?? 1000)) {
      const record = await this.#options.store.principals.getCredential(accessKey);
      state = { principalId: record?.principalId, active: record?.status === "active", expiresAt: record?.expiresAt ?? null, readAt: now };
      setBounded(this.#tokenCredentials, accessKey, state, this.#options.maxCredentials ?? 10_000);
    }
    return state.active && state.principalId === principalId && (state.expiresAt === null || now < state.expiresAt);
  }

  /** The cached state when fresh (no store read on the request path); undefined otherwise. */
  #principalActiveNow(principalId: string, now: number): boolean | undefined {
    const cached = this.#principals.get(principalId);
    return cached !== undefined && fresh(cached.readAt, now, this.#options.refreshMs ?? 1000) ? cached.active : undefined;
  }

  async #readPrincipal(principalId: string, now: number): Promise<boolean> {
    const principal = await this.#options.store.principals.get(principalId);
    const active = principal !== undefined && !principal.disabled;
    setBounded(this.#principals, principalId, { active, readAt: now }, this.#options.maxCredentials ?? 10_000);
    return active;
  }

  async #aksk(evidence: Extract<AuthEvidence, { kind: "aksk" }>, now: number): Promise<Authenticated> {
    const credential = await this.#credential(evidence.accessKey, now);
    const signature = Buffer.from(evidence.signature, "hex");
    if (signature.length !== 32 || !hmacVerify(credential.key, "sha256", ENC.encode(evidence.stringToSign), signature)) {
      throw new KmsError("APIGW.0301", "signature mismatch");
    }
    if (this.#options.rejectReplays) this.#remember(evidence.signature, evidence.signedAt, now);
    return { principalId: credential.principalId, domainId: credential.domainId, scopeProjectId: undefined, accessKey: evidence.accessKey, method: `aksk:${evidence.accessKey}` };
  }

  async #credential(accessKey: string, now: number): Promise<CachedCredential> {
    let cached = this.#credentials.get(accessKey);
    if (cached === undefined || !fresh(cached.readAt, now, this.#options.refreshMs ?? 1000)) {
      const record = await this.#options.store.principals.getCredential(accessKey);
      if (record === undefined) {
        if (cached) this.invalidate(accessKey);
        throw new KmsError("APIGW.0301", "unknown access key");
      }
      const principal = await this.#options.store.principals.get(record.principalId);
      if (principal === undefined) throw new KmsError("APIGW.0301", "credential of an unknown principal");
      if (cached === undefined) {
        const sk = await openCredentialSecret(this.#options.sealer, record);
        try {
          cached = { principalId: record.principalId, domainId: principal.domainId, key: importKey(sk), secretBytes: sk.length, active: true, expiresAt: null, readAt: now };
        } finally {
          sk.fill(0);
        }
        if (this.#credentials.size >= (this.#options.maxCredentials ?? 10_000)) {
          const oldest = this.#credentials.keys().next().value as string;
          this.invalidate(oldest);
        }
        this.#credentials.set(accessKey, cached);
      }
      cached.active = record.status === "active" && !principal.disabled;
      cached.expiresAt = record.expiresAt;
      cached.readAt = now;
    }
    if (!cached.active) throw new KmsError("APIGW.0301", "inactive credential");
    if (cached.expiresAt !== null && now >= cached.expiresAt) throw new KmsError("APIGW.0301", "expired credential");
    return cached;
  }

  #remember(signature: string, signedAt: number, now: number): void {
    const skew = this.#options.clockSkewSeconds * 1000;
    // A clock stepped back prunes at once: waiting until it is a second past the last prune would
    // stop the pruning for as long as the step.
    if (now - this.#lastPrune >= 1000 || now < this.#lastPrune) {
      this.#lastPrune = now;
      const later: Array<[string, number]> = [];
      for (const [s, at] of this.#seen) {
        // Dates older than now - skew are refused by the HTTP layer anyway.
        if (at < now - skew) this.#seen.delete(s);
        else if (at > now + skew) later.push([s, at]);
      }
      // Dates past the window were accepted while the clock ran ahead. They must be remembered
      // until the clock catches up with them, but forgotten last: forgetting one first would raise
      // the floor past every request dated now, refusing them all until then.
      for (const [s, at] of later) {
        this.#seen.delete(s);
        this.#seen.set(s, at);
      }
    }
    if (signedAt <= this.#floor) throw new KmsError("APIGW.0301", "signature dated before the replay memory");
    const id = signature.slice(0, 16);
    if (this.#seen.has(id)) throw new KmsError("APIGW.0301", "replayed signature");
    const max = this.#options.maxRememberedSignatures ?? 500_000;
    while (this.#seen.size >= max) {
      const [oldest, at] = this.#seen.entries().next().value as [string, number];
      this.#seen.delete(oldest);
      this.#floor = Math.max(this.#floor, at);
    }
    this.#seen.set(id, signedAt);
  }
}
