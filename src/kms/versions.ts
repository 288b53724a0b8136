/**
 * Key versions as the service keeps them: the material format the store holds (opaque to the
 * store), the ids the backend's handle cache knows them by, and the count of seals each version
 * has made against the random-IV bound.
 *
 * Version material v1 (the store's KeyVersionRecord.material):
 *
 *     offset  size  field
 *          0    40  the version key wrapped under the token's root key (AES-KWP, backend.ts)
 *         40     8  seal baseline: the key's total seals when this version became current (u64 BE)
 *
 * 40 bytes alone (no baseline) are read as baseline 0. Why a baseline: random 96-bit GCM IVs allow
 * at most 2^32 seals per key version (NIST SP 800-38D §8.3). The store counts successful operations
 * per key (usage records, derived from the audit log, which survive restarts and crashes); the seals
 * a version has made are the key's seal count now less the count when it became current. Stored
 * with the version, in the same transaction that adds it, the baseline needs no write of its own.
 */
import { KmsError } from "./errors.js";
import { WRAPPED_VERSION_KEY_BYTES, type VersionRef } from "./backend/backend.js";
import type { UsageRecord } from "./types.js";

const BASELINE_BYTES = 8;
export const MATERIAL_BYTES = WRAPPED_VERSION_KEY_BYTES + BASELINE_BYTES;

/** The material of a new version: its wrapped key and the key's seal count now. */
export function encodeMaterial(wrapped: Uint8Array, sealBaseline: number): Buffer {
  if (wrapped.length !== WRAPPED_VERSION_KEY_BYTES) throw new KmsError("KMS.0101", `a wrapped version key is ${WRAPPED_VERSION_KEY_BYTES} bytes`);
  if (!Number.isSafeInteger(sealBaseline) || sealBaseline < 0) throw new KmsError("KMS.0101", "a seal baseline is a non-negative integer");
  const out = Buffer.allocUnsafe(MATERIAL_BYTES);
  out.set(wrapped, 0);
  out.writeUInt32BE(Math.floor(sealBaseline / 0x1_0000_0000), WRAPPED_VERSION_KEY_BYTES);
  out.writeUInt32BE(sealBaseline >>> 0, WRAPPED_VERSION_KEY_BYTES + 4);
  return out;
}

/** Splits stored material; anything but 40 or 48 bytes is a store fault (KMS.0101). */
export function decodeMaterial(material: Uint8Array): { wrapped: Buffer; sealBaseline: number } {
  const bytes = Buffer.from(material.buffer, material.byteOffset, material.byteLength);
  if (bytes.length === WRAPPED_VERSION_KEY_BYTES) return { wrapped: bytes, sealBaseline: 0 };
  if (bytes.length !== MATERIAL_BYTES) throw new KmsError("KMS.0101", `stored version material is ${bytes.length} bytes`);
  const high = bytes.readUInt32BE(WRAPPED_VERSION_KEY_BYTES);
  return { wrapped: bytes.subarray(0, WRAPPED_VERSION_KEY_BYTES), sealBaseline: high * 0x1_0000_0000 + bytes.readUInt32BE(WRAPPED_VERSION_KEY_BYTES + 4) };
}

/** The backend's id for a version: unique across projects, keys and versions for the life of the store. */
export function versionId(projectId: string, keyId: string, version: number): string {
  return `${projectId}/${keyId}:${version}`;
}

/** A version as the backend takes it. */
export function versionRef(projectId: string, keyId: string, version: number, material: Uint8Array): VersionRef & { sealBaseline: number } {
  const { wrapped, sealBaseline } = decodeMaterial(material);
  return { id: versionId(projectId, keyId, version), wrapped, sealBaseline };
}

/**
 * Audit actions whose success sealed a new GCM message under the key's current version (one IV
 * each). reEncryptData is counted whether the key was the source or the destination: an
 * overcount, on the safe side.
 */
export const SEAL_ACTIONS: ReadonlySet<string> = new Set([
  "encryptData", "createDataKey", "createDataKeyWithoutPlaintext", "encryptDatakey", "reEncryptData",
]);

/** The key's seals so far, from its usage records. */
export function sealsFromUsage(usage: readonly UsageRecord[]): number {
  let seals = 0;
  for (const record of usage) if (SEAL_ACTIONS.has(record.action)) seals += record.count;
  return seals;
}
