/**
 * Fixtures for the KMS store and audit tests: a temporary store directory removed at teardown,
 * the checkpoint MAC as the backend will provide it but over the native HMAC-SHA256 (a test key
 * in a native key slot), and small builders for records.
 */
import type { ExecutionContext } from "ava";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { AuditMac } from "../../src/kms/audit/checkpoints.js";
import { importKey } from "../../src/crypto/keys.js";
import { hmacSign, hmacVerify } from "../../src/crypto/hmac.js";
import { DATABASE_FILE, openSqliteStore, type SqliteStore, type SqliteStoreOptions } from "../../src/kms/store/sqlite.js";
import type { WriterMode } from "../../src/kms/store/writer.js";
import type { AuditEvent, NewKey } from "../../src/kms/types.js";

export const WRITERS: readonly WriterMode[] = ["inline", "worker"];

/** HMAC-SHA256 under `keyBytes` (default: a fixed test key) in a native key slot. */
export function testMac(keyBytes: Buffer = Buffer.alloc(32, 0x5a)): AuditMac {
  const key = importKey(keyBytes);
  return {
    mac: (data) => hmacSign(key, "sha256", data),
    verifyMac: (data, mac) => hmacVerify(key, "sha256", data, mac),
  };
}

export const MAC = testMac();

/** A temporary directory removed at the end of the test. */
export function tempDir(t: ExecutionContext, prefix = "hsmkit-kms-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a store in `dir` (default: a new temporary one), closed at teardown. */
export async function openStore(
  t: ExecutionContext,
  options: Partial<SqliteStoreOptions> & { writer?: WriterMode } = {},
): Promise<SqliteStore> {
  const store = await openSqliteStore({ directory: options.directory ?? tempDir(t), mac: MAC, ...options });
  t.teardown(() => store.close());
  return store;
}

/** A raw connection to the store's database (tampering, inspection). */
export function rawDb(dir: string): Database.Database {
  return new Database(join(dir, DATABASE_FILE));
}

export function newKey(projectId: string, overrides: Partial<NewKey> = {}): NewKey {
  const keyId = overrides.keyId ?? randomUUID();
  return {
    projectId,
    keyId,
    domainId: "domain-1",
    alias: `alias-${keyId}`,
    keySpec: "AES_256",
    keyUsage: "ENCRYPT_DECRYPT",
    origin: "kms",
    state: 2,
    defaultKey: false,
    ...overrides,
  };
}

let requests = 0;

export function event(action: string, projectId: string | null, keyId: string | null, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { requestId: `req-${++requests}`, projectId, principalId: "user-1", source: "127.0.0.1", action, keyId, ...overrides };
}

export const material = (text: string): { material: Buffer } => ({ material: Buffer.from(`wrapped:${text}`) });
