/**
 * Errors of the store's own machinery (opening, locking, migrating, a failed writer) — not
 * request errors. A request that fails on the data (a missing key, a duplicate alias, a quota) gets
 * a KmsError with its Huawei code (src/kms/errors.ts). These reach the HTTP layer only as KMS.0101,
 * as anything that is not a KmsError does; the operator's log gets the code and message.
 */
import type { AuditVerifyFailure } from "../audit/verify.js";

export const STORE_ERROR_CODES = {
  /** Another process (or another store in this one) holds the store directory's lock. */
  ERR_KMS_STORE_LOCKED: "the store directory is in use",
  /** The database file is not an hsmkit KMS store. */
  ERR_KMS_STORE_FOREIGN: "not an hsmkit KMS store",
  /** SQLite finds the database file damaged (SQLITE_CORRUPT) when opening it. */
  ERR_KMS_STORE_CORRUPT: "database file damaged",
  /** The database was written by a newer hsmkit (its schema version is unknown here). */
  ERR_KMS_STORE_SCHEMA_TOO_NEW: "schema newer than this hsmkit",
  /** A migration failed and was rolled back. */
  ERR_KMS_STORE_MIGRATION: "migration failed",
  /** The store is closed (or closing): no more writes. */
  ERR_KMS_STORE_CLOSED: "store closed",
  /** The writer failed (its thread died, or a commit failed): the write was not made durable. */
  ERR_KMS_STORE_WRITE_FAILED: "write not committed",
  /** On open, the end of the audit log does not verify: the store refuses to append to it. */
  ERR_KMS_AUDIT_TAMPERED: "audit log does not verify",
} as const;

export type StoreErrorCode = keyof typeof STORE_ERROR_CODES;

export class StoreError extends Error {
  override readonly name = "StoreError";
  /** The verdict, for ERR_KMS_AUDIT_TAMPERED. */
  readonly verification: AuditVerifyFailure | undefined;

  constructor(readonly code: StoreErrorCode, message: string, options?: { cause?: unknown; verification?: AuditVerifyFailure }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.verification = options?.verification;
  }
}

/** True when `error` is a StoreError (optionally: with this code). */
export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  return error instanceof StoreError && (code === undefined || error.code === code);
}
