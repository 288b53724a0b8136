/**
 * The seam for secrets the store must keep but must not keep in clear: the SK of an AK/SK
 * credential. SDK-HMAC-SHA256 signatures are HMAC-SHA256(SK, stringToSign) with the SK used
 * directly (huaweicloudsdkcore signer), so the server needs the SK itself to verify one — a one-way
 * hash of it would not do. The store therefore keeps it sealed by a SecretSealer that the backend
 * provides, with the sealing key in the token:
 *
 * - Recommended backend sealer: AES-KWP (or AES-GCM) under a dedicated "credential key" token
 *   object (sensitive, never extractable, wrap/unwrap only — not the CMK root key, so the two can be
 *   rotated separately). To verify a signature the service opens the SK once and imports it into a
 *   session object (CKK_GENERIC_SECRET, CKA_SIGN) — or unwraps it straight into one with
 *   C_UnwrapKey so its bytes never reach JavaScript — and keeps that handle in a small bounded cache.
 * - The sealed blob is bound to its AK and principal through the additional data below, so a sealed
 *   SK copied onto another credential row does not open.
 * - `sealer` (stored beside the blob) names the scheme and key, so credentials sealed under an old
 *   key can still be opened after the sealing key is rotated, and re-sealed.
 *
 * The store never sees the SK: it stores and returns SealedSecret values only.
 */
import type { CredentialRecord, SealedSecret } from "../types.js";

export interface SecretSealer {
  /** Names the scheme and key, e.g. "kwp:hsmkit-credential-key:1". Stored with each sealed secret. */
  readonly id: string;
  /** Seals `plaintext`; `aad` must be presented again to open. */
  seal(plaintext: Buffer, aad: Buffer): Buffer | Promise<Buffer>;
  /**
   * Opens a sealed secret; throws when it was altered or `aad` differs. The buffer returned is the
   * caller's, to zero once used: return a fresh one, never a view of state the sealer keeps.
   */
  open(sealed: Buffer, aad: Buffer): Buffer | Promise<Buffer>;
}

/** The additional data binding a sealed SK to its credential: "hsmkit-credential-v1" 0x00 AK 0x00 principal. */
export function credentialAad(accessKey: string, principalId: string): Buffer {
  return Buffer.from(`hsmkit-credential-v1\0${accessKey}\0${principalId}`, "utf8");
}

/** Seals an SK for keeping in the store (NewCredential.secret). */
export async function sealCredentialSecret(sealer: SecretSealer, accessKey: string, principalId: string, secretKey: Buffer): Promise<SealedSecret> {
  return { sealer: sealer.id, blob: Buffer.from(await sealer.seal(secretKey, credentialAad(accessKey, principalId))) };
}

/**
 * Opens a credential's SK into a buffer the caller owns and zeroes once it has used it (the
 * authenticator, once the SK is a native key). `sealers` by id: the sealer named in the record
 * must be among them.
 */
export async function openCredentialSecret(sealers: ReadonlyMap<string, SecretSealer> | SecretSealer, credential: CredentialRecord): Promise<Buffer> {
  const sealer = sealers instanceof Map ? sealers.get(credential.secret.sealer) : (sealers as SecretSealer);
  if (sealer === undefined || sealer.id !== credential.secret.sealer) {
    throw new Error(`credential ${credential.accessKey} is sealed by ${credential.secret.sealer}, which is not available`);
  }
  const opened: Uint8Array = await sealer.open(credential.secret.blob, credentialAad(credential.accessKey, credential.principalId));
  // The sealer's own bytes, not a copy: the caller's zeroing must reach them, and a copy would
  // leave the SK in the heap for as long as the garbage collector lets it lie.
  return Buffer.isBuffer(opened) ? opened : Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength);
}
