/**
 * The SecretSealer (kms/store/secrets.ts) the service keeps credential SKs under: each SK gets its
 * own AES-256 key generated in the token and kept only wrapped under the token's root key (AES-KWP,
 * the same construction as a CMK version), and is sealed with AES-256-GCM in the token:
 *
 *   blob = "HC" | 0x01 | wrapped key (40) | iv (12) | ciphertext | tag (16)
 *
 * bound to its AK and principal by the store's additional data. Opening one needs the token (and
 * its root key): a copy of kms.sqlite alone reveals no SK.
 */
import { createHash } from "node:crypto";
import type { KmsBackend } from "../../kms/backend/backend.js";
import { GCM_IV_BYTES, GCM_TAG_BYTES, WRAPPED_VERSION_KEY_BYTES } from "../../kms/backend/backend.js";
import type { SecretSealer } from "../../kms/store/secrets.js";

const MAGIC = Buffer.from([0x48, 0x43, 0x01]);
const HEADER = MAGIC.length + WRAPPED_VERSION_KEY_BYTES + GCM_IV_BYTES;

export const CREDENTIAL_SEALER_ID = "token-gcm:v1";

function versionId(wrapped: Buffer): string {
  return `credential:${createHash("sha256").update(wrapped).digest("hex").slice(0, 32)}`;
}

export function credentialSealer(backend: KmsBackend): SecretSealer {
  return {
    id: CREDENTIAL_SEALER_ID,
    seal(plaintext: Buffer, aad: Buffer): Buffer {
      const wrapped = backend.createVersionKey();
      const iv = backend.random(GCM_IV_BYTES);
      const id = versionId(wrapped);
      try {
        return Buffer.concat([MAGIC, wrapped, iv, backend.encrypt({ id, wrapped }, iv, aad, plaintext)]);
      } finally {
        backend.destroyVersion(id);
      }
    },
    open(sealed: Buffer, aad: Buffer): Buffer {
      if (sealed.length < HEADER + GCM_TAG_BYTES + 1 || !sealed.subarray(0, MAGIC.length).equals(MAGIC)) {
        throw new Error("not a credential sealed by this service");
      }
      const wrapped = Buffer.from(sealed.subarray(MAGIC.length, MAGIC.length + WRAPPED_VERSION_KEY_BYTES));
      const iv = sealed.subarray(MAGIC.length + WRAPPED_VERSION_KEY_BYTES, HEADER);
      const id = versionId(wrapped);
      try {
        return backend.decrypt({ id, wrapped }, iv, aad, sealed.subarray(HEADER));
      } finally {
        backend.destroyVersion(id);
      }
    },
  };
}
