/**
 * Message digests (PKCS#11 v2.40 current mechanisms §2.20–2.22 "SHA-1", "SHA-224", "SHA-256",
 * "SHA-384", "SHA-512"): CKM_SHA_1, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA512, single- and
 * multi-part, through node:crypto (OpenSSL) — a digest holds no secret, so nothing needs the
 * native core. C_DigestKey feeds a secret key's bytes in (functions/digest.ts).
 *
 * Also the table of hash mechanisms the RSA, ECDSA and HMAC families name (CK_RSA_PKCS_OAEP_PARAMS
 * .hashAlg, CK_RSA_PKCS_PSS_PARAMS.hashAlg, the SHA*_ mechanisms).
 */
import { createHash } from "node:crypto";
import { pkcs11 } from "../pkcs11.js";
import type { MechanismFamily } from "./mechanism.js";
import { noParameter } from "./params.js";

const P = pkcs11;

export type HashName = "sha1" | "sha224" | "sha256" | "sha384" | "sha512";

export interface HashInfo {
  /** node:crypto / OpenSSL digest name. */
  name: HashName;
  /** Output length in bytes (hLen). */
  length: number;
  /** The digest mechanism (CKM_SHA256 …), as CK_RSA_PKCS_*_PARAMS.hashAlg names it. */
  mechanism: number;
  /** The matching mask generation function (CKG_MGF1_SHA256 …). */
  mgf: number;
}

/** Hash functions by their digest mechanism. */
export const HASHES: ReadonlyMap<number, HashInfo> = new Map(
  ([
    ["sha1", 20, P.CKM_SHA_1, P.CKG_MGF1_SHA1],
    ["sha224", 28, P.CKM_SHA224, P.CKG_MGF1_SHA224],
    ["sha256", 32, P.CKM_SHA256, P.CKG_MGF1_SHA256],
    ["sha384", 48, P.CKM_SHA384, P.CKG_MGF1_SHA384],
    ["sha512", 64, P.CKM_SHA512, P.CKG_MGF1_SHA512],
  ] as const).map(([name, length, mechanism, mgf]) => [mechanism, { name, length, mechanism, mgf }]),
);

/** The HashInfo of a digest mechanism this module knows (a programming error otherwise). */
export function hashInfo(mechanism: number): HashInfo {
  const info = HASHES.get(mechanism);
  if (info === undefined) throw new Error(`no hash for mechanism 0x${mechanism.toString(16)}`);
  return info;
}

function digestFamily(hash: HashInfo): MechanismFamily {
  return {
    // §2.20ff: key sizes are not used for digests.
    info: { minKeySize: 0, maxKeySize: 0, flags: P.CKF_DIGEST },
    digest(mechanism) {
      noParameter(mechanism);
      const state = createHash(hash.name);
      return {
        update: (input) => void state.update(input),
        final: () => state.digest(),
        length: () => hash.length,
      };
    },
  };
}

export const DIGEST_MECHANISMS: ReadonlyMap<number, MechanismFamily> = new Map(
  [...HASHES.values()].map((hash) => [hash.mechanism, digestFamily(hash)]),
);
