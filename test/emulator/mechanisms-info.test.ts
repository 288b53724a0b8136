// C_GetMechanismList / C_GetMechanismInfo for the digest, HMAC, AES-mode, RSA and EC families:
// key sizes in the specification's unit for each mechanism, software (no CKF_HW), and the flags of
// exactly the functions the token offers with it.
import test from "ava";
import { untypedConstant } from "../../emulator/pkcs11.js";
import { P, openToken, throwsCkr } from "./mechanisms-helpers.js";

const EC = untypedConstant("CKF_EC_F_P") | untypedConstant("CKF_EC_NAMEDCURVE") | untypedConstant("CKF_EC_UNCOMPRESS");
const SIGN = P.CKF_SIGN | P.CKF_VERIFY;
const CIPHER = P.CKF_ENCRYPT | P.CKF_DECRYPT;

// [mechanism, minKeySize, maxKeySize, flags]; units: digests none, HMAC bytes, AES bytes, RSA and EC bits.
const EXPECTED: Array<[string, number, number, number, number]> = [
  ["CKM_SHA_1", P.CKM_SHA_1, 0, 0, P.CKF_DIGEST],
  ["CKM_SHA224", P.CKM_SHA224, 0, 0, P.CKF_DIGEST],
  ["CKM_SHA256", P.CKM_SHA256, 0, 0, P.CKF_DIGEST],
  ["CKM_SHA384", P.CKM_SHA384, 0, 0, P.CKF_DIGEST],
  ["CKM_SHA512", P.CKM_SHA512, 0, 0, P.CKF_DIGEST],
  ...([
    ["CKM_SHA_1_HMAC", P.CKM_SHA_1_HMAC], ["CKM_SHA_1_HMAC_GENERAL", P.CKM_SHA_1_HMAC_GENERAL],
    ["CKM_SHA224_HMAC", P.CKM_SHA224_HMAC], ["CKM_SHA224_HMAC_GENERAL", P.CKM_SHA224_HMAC_GENERAL],
    ["CKM_SHA256_HMAC", P.CKM_SHA256_HMAC], ["CKM_SHA256_HMAC_GENERAL", P.CKM_SHA256_HMAC_GENERAL],
    ["CKM_SHA384_HMAC", P.CKM_SHA384_HMAC], ["CKM_SHA384_HMAC_GENERAL", P.CKM_SHA384_HMAC_GENERAL],
    ["CKM_SHA512_HMAC", P.CKM_SHA512_HMAC], ["CKM_SHA512_HMAC_GENERAL", P.CKM_SHA512_HMAC_GENERAL],
  ] as const).map(([name, m]) => [name, m, 1, 8192, SIGN] as [string, number, number, number, number]),
  ["CKM_AES_ECB", P.CKM_AES_ECB, 16, 32, CIPHER],
  ["CKM_AES_CBC", P.CKM_AES_CBC, 16, 32, CIPHER],
  ["CKM_AES_CBC_PAD", P.CKM_AES_CBC_PAD, 16, 32, CIPHER],
  ["CKM_AES_CTR", P.CKM_AES_CTR, 16, 32, CIPHER],
  ["CKM_RSA_PKCS_KEY_PAIR_GEN", P.CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, 4096, P.CKF_GENERATE_KEY_PAIR],
  ["CKM_RSA_PKCS", P.CKM_RSA_PKCS, 2048, 8192, SIGN],
  ["CKM_RSA_PKCS_OAEP", P.CKM_RSA_PKCS_OAEP, 2048, 8192, CIPHER | P.CKF_WRAP | P.CKF_UNWRAP],
  ...[P.CKM_SHA224_RSA_PKCS, P.CKM_SHA256_RSA_PKCS, P.CKM_SHA384_RSA_PKCS, P.CKM_SHA512_RSA_PKCS,
    P.CKM_SHA224_RSA_PKCS_PSS, P.CKM_SHA256_RSA_PKCS_PSS, P.CKM_SHA384_RSA_PKCS_PSS, P.CKM_SHA512_RSA_PKCS_PSS]
    .map((m) => [`0x${m.toString(16)}`, m, 2048, 8192, SIGN] as [string, number, number, number, number]),
  ["CKM_EC_KEY_PAIR_GEN", P.CKM_EC_KEY_PAIR_GEN, 256, 521, P.CKF_GENERATE_KEY_PAIR | EC],
  ["CKM_ECDSA", P.CKM_ECDSA, 256, 521, SIGN | EC],
  ["CKM_ECDSA_SHA256", P.CKM_ECDSA_SHA256, 256, 521, SIGN | EC],
  ["CKM_ECDSA_SHA384", P.CKM_ECDSA_SHA384, 256, 521, SIGN | EC],
  ["CKM_ECDSA_SHA512", P.CKM_ECDSA_SHA512, 256, 521, SIGN | EC],
  ["CKM_ECDH1_DERIVE", P.CKM_ECDH1_DERIVE, 256, 521, P.CKF_DERIVE | EC],
];

test("every mechanism of these families is listed with accurate CK_MECHANISM_INFO", (t) => {
  const { p11, slot } = openToken(t);
  const listed = new Set(p11.C_GetMechanismList(slot));
  for (const [name, mechanism, minKeySize, maxKeySize, flags] of EXPECTED) {
    t.true(listed.has(mechanism), `${name} listed`);
    t.deepEqual(p11.C_GetMechanismInfo(slot, mechanism), { minKeySize, maxKeySize, flags }, name);
    t.is(flags & P.CKF_HW, 0);
  }
  t.log(`${EXPECTED.length} mechanisms checked`);
});

test("mechanisms the token does not offer are CKR_MECHANISM_INVALID", (t) => {
  const { p11, slot, session } = openToken(t);
  for (const mechanism of [P.CKM_MD5, P.CKM_RSA_X_509, P.CKM_SHA1_RSA_PKCS, P.CKM_ECDSA_SHA1, P.CKM_ECDH1_COFACTOR_DERIVE, P.CKM_AES_CMAC]) {
    throwsCkr(t, () => p11.C_GetMechanismInfo(slot, mechanism), P.CKR_MECHANISM_INVALID, `0x${mechanism.toString(16)}`);
  }
  throwsCkr(t, () => p11.C_DigestInit(session, { mechanism: P.CKM_MD5 }), P.CKR_MECHANISM_INVALID);
  // A mechanism used for a function it does not offer.
  throwsCkr(t, () => p11.C_DigestInit(session, { mechanism: P.CKM_SHA256_HMAC }), P.CKR_MECHANISM_INVALID);
});
