/**
 * The few constants this token uses that pkcs11js 2.1.7 (PKCS#11 v2.40 headers) lacks. Every
 * other CKA_/CKM_/CKR_/CKF_ value comes from pkcs11js itself.
 */

/** CKM_AES_KEY_WRAP_KWP, PKCS#11 v3.0 §2.14.3 (RFC 5649 / SP 800-38F KWP). */
export const CKM_AES_KEY_WRAP_KWP = 0x0000210b;
/** CKA_PUBLIC_KEY_INFO, PKCS#11 v2.40 §4.8 (DER SubjectPublicKeyInfo). */
export const CKA_PUBLIC_KEY_INFO = 0x00000129;
/** CKR_ACTION_PROHIBITED, PKCS#11 v2.40 §5.1 (e.g. destroying a non-destroyable object). */
export const CKR_ACTION_PROHIBITED = 0x0000001b;
/** CKR_CURVE_NOT_SUPPORTED, PKCS#11 v2.40 §5.1. */
export const CKR_CURVE_NOT_SUPPORTED = 0x00000140;
/** CKZ_DATA_SPECIFIED, PKCS#11 v2.40 current mechanisms §2.1.8 (CK_RSA_PKCS_OAEP_SOURCE_TYPE: the label is pSourceData). */
export const CKZ_DATA_SPECIFIED = 0x00000001;
/** CK_UNAVAILABLE_INFORMATION (~0UL): an attribute or size that cannot be told. */
export const CK_UNAVAILABLE_INFORMATION = 0xffffffffffffffffn;

/** CK_STATE values, PKCS#11 v2.40 §5.6 (pkcs11js exports none). */
export const CKS_RO_PUBLIC_SESSION = 0;
export const CKS_RO_USER_FUNCTIONS = 1;
export const CKS_RW_PUBLIC_SESSION = 2;
export const CKS_RW_USER_FUNCTIONS = 3;
export const CKS_RW_SO_FUNCTIONS = 4;
