/**
 * The default identity a fresh data directory gets, so that `npm start` answers signed requests at
 * once: an account (domain), a project in it, a user with every role in that project (key_admin,
 * crypto_user, auditor) and an AK/SK credential for that user. They are written to
 * `<data>/credentials.json` (mode 0600, atomically) as
 *
 *   { "project_id", "domain_id", "ak", "sk", "user_id" }
 *
 * and reused on every later start; whatever of them the store lacks (a store deleted beside a kept
 * credentials file) is created again from the file.
 */
import { randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Kms } from "../kms/kms.js";
import { sealCredentialSecret, type SecretSealer } from "../kms/store/secrets.js";
import { ROLES } from "../kms/types.js";
import { writeFileAtomic } from "../util/atomic-file.js";

export const CREDENTIALS_FILE = "credentials.json";

export interface Credentials {
  project_id: string;
  domain_id: string;
  ak: string;
  sk: string;
  /** The user the credential belongs to. */
  user_id: string;
}

const HEX32 = /^[0-9a-f]{32}$/u;
const AK = /^[A-Z0-9]{20}$/u;
const SK = /^[A-Za-z0-9]{40}$/u;
const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `length` characters of `alphabet`, uniformly (rejection sampling: no modulo bias). */
export function randomString(length: number, alphabet: string): string {
  const limit = 256 - (256 % alphabet.length);
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < limit && out.length < length) out += alphabet[byte % alphabet.length];
    }
  }
  return out;
}

/** A Huawei-shaped id: 32 lowercase hex digits. */
export function newId(): string {
  return randomBytes(16).toString("hex");
}

/** A Huawei-shaped AK (20 uppercase letters and digits) and SK (40 letters and digits). */
export function newAccessKeyPair(): { ak: string; sk: string } {
  return { ak: randomString(20, ALPHANUMERIC.slice(0, 26) + ALPHANUMERIC.slice(52)), sk: randomString(40, ALPHANUMERIC) };
}

/**
 * A credentials file that exists but cannot be used (unreadable, not JSON, not hsmkit's, open to
 * other users): the operator's to fix, so the CLI reports it in one line, and it keeps its class
 * across the KMS thread (thread.ts). Its message names the file and never quotes it (the SK).
 */
export class CredentialsFileError extends Error {
  override readonly name = "CredentialsFileError";
}

/** Reads and checks a credentials file; undefined when absent, CredentialsFileError when unusable. */
export function readCredentials(file: string): Credentials | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CredentialsFileError(`cannot read the credentials file ${file}: ${(error as Error).message}`);
  }
  let c: Partial<Credentials>;
  try {
    c = JSON.parse(text) as Partial<Credentials>;
  } catch {
    // JSON.parse's message quotes the text near the error, which may be the SK: never pass it on.
    throw new CredentialsFileError(`${file} is not valid JSON; restore it from a backup, or move it away to create a new credential`);
  }
  if (
    typeof c !== "object" || c === null ||
    typeof c.project_id !== "string" || !HEX32.test(c.project_id) || typeof c.domain_id !== "string" || !HEX32.test(c.domain_id) ||
    typeof c.ak !== "string" || !AK.test(c.ak) || typeof c.sk !== "string" || !SK.test(c.sk) || typeof c.user_id !== "string" || !HEX32.test(c.user_id)
  ) {
    throw new CredentialsFileError(`${file} is not a credentials file hsmkit wrote (project_id, domain_id, ak, sk, user_id)`);
  }
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new CredentialsFileError(`${file} is readable by others (mode ${mode.toString(8)}); run chmod 600 ${file}`);
  return c as Credentials;
}

/**
 * The data directory's default identity: read from credentials.json, or created (first start).
 * `created` says whether the file was written now.
 */
export async function ensureIdentity(kms: Kms, sealer: SecretSealer, dataDir: string): Promise<{ credentials: Credentials; file: string; created: boolean }> {
  const file = join(dataDir, CREDENTIALS_FILE);
  let credentials = readCredentials(file);
  const created = credentials === undefined;
  if (credentials === undefined) {
    credentials = { project_id: newId(), domain_id: newId(), ...newAccessKeyPair(), user_id: newId() };
  }
  const by = { source: "bootstrap", requestId: `bootstrap-${newId()}` };
  const store = kms.store;
  if ((await store.projects.get(credentials.project_id)) === undefined) {
    await kms.admin.createProject({ projectId: credentials.project_id, domainId: credentials.domain_id, name: "default" }, by);
  }
  if ((await store.principals.get(credentials.user_id)) === undefined) {
    await kms.admin.createPrincipal({ principalId: credentials.user_id, domainId: credentials.domain_id, name: "admin" }, by);
  }
  const held = new Set((await store.principals.listRoles(credentials.user_id, credentials.project_id)).map((r) => r.role));
  for (const role of ROLES) if (!held.has(role)) await kms.admin.addRole(credentials.user_id, credentials.project_id, role, by);
  if ((await store.principals.getCredential(credentials.ak)) === undefined) {
    const secret = await sealCredentialSecret(sealer, credentials.ak, credentials.user_id, Buffer.from(credentials.sk, "utf8"));
    await kms.admin.createCredential({ accessKey: credentials.ak, principalId: credentials.user_id, secret, description: "default credential (credentials.json)" }, by);
  }
  if (created) writeFileAtomic(file, Buffer.from(JSON.stringify(credentials, null, 2) + "\n", "utf8"));
  return { credentials, file, created };
}
