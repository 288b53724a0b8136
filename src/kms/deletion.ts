/**
 * Key deletion: scheduled 7–1096 days ahead (Huawei schedule-key-deletion `pending_days`; other
 * values give KMS.1401), cancellable until then (back to disabled, KMS.1501 when not pending), and
 * carried out by a sweeper the server calls periodically (Kms.deleteDueKeys).
 *
 * What deletion does, in this order, so that the key's ciphertexts are undecryptable for good —
 * also after a restart, and also from a copy of the token:
 * 1. The backend destroys the versions' unwrapped session objects (destroyVersion, idempotent),
 *    and the service drops the key from its cache, so no request in this process can still use
 *    them. If the token fails, the key stays pending deletion (refusing every use) with its
 *    versions, the sweeper reports it, and its next run starts over: one stuck key neither loses
 *    track of its token objects nor holds up the other keys.
 * 2. The store deletes the key with its versions, tags, grants and usage counters in one
 *    transaction, guarded on the key still pending deletion and due (a deletion cancelled
 *    meanwhile wins, one cancelled and scheduled again waits for its new date, and the versions
 *    the key lost from the token are unwrapped again when next used), with its audit record
 *    (deleteKey). The wrapped version keys are overwritten in the database file (secure_delete) and
 *    the write-ahead log is truncated after the commit (store.ts destroy). The version keys existed
 *    nowhere else: the token holds only the root key they were wrapped under, so once the wrapped
 *    bytes are gone, so are the keys.
 * A blob of a deleted key then fails like any blob naming no key: the opaque KMS.2201.
 */
import { KmsError } from "./errors.js";
import { DAY_MS } from "./rotation.js";
import { integerField } from "./lifecycle.js";

export const MIN_PENDING_DAYS = 7;
export const MAX_PENDING_DAYS = 1096;

/** pending_days: 7..1096 (number or numeric string). KMS.1401. */
export function checkPendingDays(value: unknown): number {
  const days = integerField(value, "pending_days", "KMS.1401");
  if (days === undefined || days < MIN_PENDING_DAYS || days > MAX_PENDING_DAYS) {
    throw new KmsError("KMS.1401", `pending_days must be ${MIN_PENDING_DAYS}..${MAX_PENDING_DAYS}`);
  }
  return days;
}

/** The deletion date of a key scheduled at `now` for `days` days. */
export function deletionDate(now: number, days: number): number {
  return now + days * DAY_MS;
}
