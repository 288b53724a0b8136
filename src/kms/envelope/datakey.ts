/**
 * Huawei's data-key conventions around blob v1 (KMS v1.0 encrypt-datakey / decrypt-datakey; OTC
 * API reference "Encrypting a DEK", "Decrypting a DEK"):
 * - encrypt-datakey takes `plain_text` = hex(DEK ‖ SHA-256(DEK)) and `datakey_plain_length` = the
 *   DEK's length in bytes; the digest is checked before anything is encrypted (KMS.2103), and the
 *   blob seals the DEK alone;
 * - decrypt-datakey takes `cipher_text` and `datakey_cipher_length` — despite its name, the DEK's
 *   length in bytes ("Number of bytes of a key. The value is 64.") — and returns `data_key`,
 *   `datakey_length` and `datakey_dgst` = hex(SHA-256(DEK)).
 * Hex encoding and decoding stay in the HTTP layer; these helpers work on bytes.
 *
 * The SHA-256 here is a checksum of the caller's own plaintext (which travels in the request or
 * the response anyway), not an operation with a key, so it is computed in the process with
 * node:crypto rather than in the token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { KmsError } from "../errors.js";
import { BLOB_OVERHEAD_BYTES, MIN_BLOB_BYTES } from "./blob.js";

/** SHA-256 output bytes. */
export const DEK_DIGEST_BYTES = 32;
/** Data keys are 8..8192 bits (Huawei create-datakey `datakey_length`), i.e. 1..1024 bytes. */
export const MIN_DEK_BYTES = 1;
export const MAX_DEK_BYTES = 1024;

/** SHA-256 of a data key: `datakey_dgst`, and the suffix encrypt-datakey expects. */
export function dekDigest(dek: Uint8Array): Buffer {
  return createHash("sha256").update(dek).digest();
}

function checkDekLength(length: number, name: string): void {
  if (!Number.isInteger(length) || length < MIN_DEK_BYTES || length > MAX_DEK_BYTES) {
    throw new KmsError("KMS.0308", `${name} must be ${MIN_DEK_BYTES}..${MAX_DEK_BYTES} bytes`);
  }
}

/**
 * encrypt-datakey: splits DEK ‖ SHA-256(DEK) and checks the digest (in constant time). Returns the
 * DEK, a view of the input. Errors: KMS.0308 (datakeyPlainLength outside 1..1024), KMS.2104 (input
 * is not datakeyPlainLength + 32 bytes), KMS.2103 (digest mismatch).
 */
export function splitDekAndDigest(plainText: Uint8Array, datakeyPlainLength: number): Buffer {
  checkDekLength(datakeyPlainLength, "datakey_plain_length");
  if (!(plainText instanceof Uint8Array) || plainText.length !== datakeyPlainLength + DEK_DIGEST_BYTES) {
    throw new KmsError("KMS.2104", `plain_text must be datakey_plain_length + ${DEK_DIGEST_BYTES} bytes`);
  }
  const bytes = Buffer.from(plainText.buffer, plainText.byteOffset, plainText.byteLength);
  const dek = bytes.subarray(0, datakeyPlainLength);
  if (!timingSafeEqual(dekDigest(dek), bytes.subarray(datakeyPlainLength))) throw new KmsError("KMS.2103", "the DEK's SHA-256 digest does not match");
  return dek;
}

/**
 * decrypt-datakey: checks `datakey_cipher_length` (the DEK's length in bytes) against the blob before
 * any token call. A blob too short to be one is left for the opaque KMS.2201 of the envelope.
 * Errors: KMS.0308 (datakeyCipherLength outside 1..1024), KMS.2204 (length mismatch).
 */
export function checkDatakeyCipherLength(blob: Uint8Array, datakeyCipherLength: number): void {
  checkDekLength(datakeyCipherLength, "datakey_cipher_length");
  if (blob.length >= MIN_BLOB_BYTES && blob.length - BLOB_OVERHEAD_BYTES !== datakeyCipherLength) {
    throw new KmsError("KMS.2204", "cipher_text does not hold a key of datakey_cipher_length bytes");
  }
}
