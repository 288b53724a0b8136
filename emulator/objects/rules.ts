/**
 * Which attributes each kind of object has, and the specification's footnotes on each
 * (PKCS#11 v2.40 base specification, §4.2 Table 10 "Common footnotes for object attribute
 * tables"), written as the table they are:
 *
 *   1  MUST be specified when the object is created with C_CreateObject.
 *   2  MUST NOT be specified when the object is created with C_CreateObject.
 *   3  MUST be specified when the object is generated with C_GenerateKey or C_GenerateKeyPair.
 *   4  MUST NOT be specified when the object is generated with C_GenerateKey or C_GenerateKeyPair.
 *   5  MUST be specified when the object is unwrapped with C_UnwrapKey.
 *   6  MUST NOT be specified when the object is unwrapped with C_UnwrapKey.
 *   7  Cannot be revealed if the object has CKA_SENSITIVE true or CKA_EXTRACTABLE false.
 *   8  May be modified after the object is created (C_SetAttributeValue, C_CopyObject).
 *   9  Default value is token-specific (ours follow SoftHSMv2, see DEFAULTS).
 *  10  Can only be set to CK_TRUE by the SO user.
 *  11  Cannot be changed once set to CK_TRUE.
 *  12  Cannot be changed once set to CK_FALSE.
 *
 * Attributes without footnote 8 are read-only after creation (CKR_ATTRIBUTE_READ_ONLY).
 */
import { CKA_PUBLIC_KEY_INFO } from "../extra-constants.js";
import { pkcs11 } from "../pkcs11.js";
import { FALSE, TRUE, ulong } from "./attributes.js";

const P = pkcs11;

export type Footnote = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12;
export type AttributeTable = ReadonlyMap<number, ReadonlySet<Footnote>>;

function table(...rows: Array<[number, Footnote[]]>): Array<[number, Footnote[]]> {
  return rows;
}

// §4.4 Storage objects
const STORAGE = table(
  [P.CKA_CLASS, [1]],
  [P.CKA_TOKEN, []],
  [P.CKA_PRIVATE, []],
  [P.CKA_MODIFIABLE, []],
  [P.CKA_LABEL, [8]],
  [P.CKA_COPYABLE, [12]],
  [P.CKA_DESTROYABLE, []],
);

/**
 * §4.4, below the storage object table: "Only the CKA_LABEL attribute can be modified after the
 * object is created. (The CKA_TOKEN, CKA_PRIVATE, and CKA_MODIFIABLE attributes can be changed in
 * the process of copying an object, however.)" No footnote says so, hence a list of its own.
 * CKA_DESTROYABLE is not in it (SoftHSMv2 lets a copy change it too).
 */
export const CHANGEABLE_AT_COPY: ReadonlySet<number> = new Set([P.CKA_TOKEN, P.CKA_PRIVATE, P.CKA_MODIFIABLE]);

// §4.5 Data objects
const DATA = table([P.CKA_APPLICATION, [8]], [P.CKA_OBJECT_ID, [8]], [P.CKA_VALUE, [8]]);

// §4.7 Key objects
const KEY = table(
  [P.CKA_KEY_TYPE, [1, 5]],
  [P.CKA_ID, [8]],
  [P.CKA_START_DATE, [8]],
  [P.CKA_END_DATE, [8]],
  [P.CKA_DERIVE, [8]],
  [P.CKA_LOCAL, [2, 4, 6]],
  [P.CKA_KEY_GEN_MECHANISM, [2, 4, 6]],
  [P.CKA_ALLOWED_MECHANISMS, []],
);

// §4.8 Public key objects
const PUBLIC_KEY = table(
  [P.CKA_SUBJECT, [8]],
  [P.CKA_ENCRYPT, [8, 9]],
  [P.CKA_VERIFY, [8, 9]],
  [P.CKA_VERIFY_RECOVER, [8, 9]],
  [P.CKA_WRAP, [8, 9]],
  [P.CKA_TRUSTED, [10]],
  [P.CKA_WRAP_TEMPLATE, []],
  [CKA_PUBLIC_KEY_INFO, []],
);

// §4.9 Private key objects
const PRIVATE_KEY = table(
  [P.CKA_SUBJECT, [8]],
  [P.CKA_SENSITIVE, [8, 11]],
  [P.CKA_DECRYPT, [8, 9]],
  [P.CKA_SIGN, [8, 9]],
  [P.CKA_SIGN_RECOVER, [8, 9]],
  [P.CKA_UNWRAP, [8, 9]],
  [P.CKA_EXTRACTABLE, [8, 12]],
  [P.CKA_ALWAYS_SENSITIVE, [2, 4, 6]],
  [P.CKA_NEVER_EXTRACTABLE, [2, 4, 6]],
  [P.CKA_WRAP_WITH_TRUSTED, [11]],
  [P.CKA_UNWRAP_TEMPLATE, []],
  [P.CKA_ALWAYS_AUTHENTICATE, []],
  [CKA_PUBLIC_KEY_INFO, [8]],
);

// §4.10 Secret key objects
const SECRET_KEY = table(
  [P.CKA_SENSITIVE, [8, 11]],
  [P.CKA_ENCRYPT, [8, 9]],
  [P.CKA_DECRYPT, [8, 9]],
  [P.CKA_SIGN, [8, 9]],
  [P.CKA_VERIFY, [8, 9]],
  [P.CKA_WRAP, [8, 9]],
  [P.CKA_UNWRAP, [8, 9]],
  [P.CKA_EXTRACTABLE, [8, 12]],
  [P.CKA_ALWAYS_SENSITIVE, [2, 4, 6]],
  [P.CKA_NEVER_EXTRACTABLE, [2, 4, 6]],
  [P.CKA_CHECK_VALUE, []],
  [P.CKA_WRAP_WITH_TRUSTED, [11]],
  [P.CKA_TRUSTED, [10]],
  [P.CKA_WRAP_TEMPLATE, []],
  [P.CKA_UNWRAP_TEMPLATE, []],
);

// Mechanisms §2.1 (RSA), §2.3 (EC), §2.8/2.13 (AES, generic secret)
const RSA_PUBLIC = table([P.CKA_MODULUS, [1, 4]], [P.CKA_MODULUS_BITS, [2, 3]], [P.CKA_PUBLIC_EXPONENT, [1]]);
const RSA_PRIVATE = table(
  [P.CKA_MODULUS, [1, 4, 6]],
  [P.CKA_PUBLIC_EXPONENT, [4, 6]],
  [P.CKA_PRIVATE_EXPONENT, [1, 4, 6, 7]],
  [P.CKA_PRIME_1, [4, 6, 7]],
  [P.CKA_PRIME_2, [4, 6, 7]],
  [P.CKA_EXPONENT_1, [4, 6, 7]],
  [P.CKA_EXPONENT_2, [4, 6, 7]],
  [P.CKA_COEFFICIENT, [4, 6, 7]],
);
const EC_PUBLIC = table([P.CKA_EC_PARAMS, [1, 3]], [P.CKA_EC_POINT, [1, 4]]);
const EC_PRIVATE = table([P.CKA_EC_PARAMS, [1, 4, 6]], [P.CKA_VALUE, [1, 4, 6, 7]]);
const SECRET_VALUE = table([P.CKA_VALUE, [1, 4, 6, 7]], [P.CKA_VALUE_LEN, [2, 3]]);

function build(...parts: Array<Array<[number, Footnote[]]>>): AttributeTable {
  const map = new Map<number, ReadonlySet<Footnote>>();
  for (const part of parts) for (const [type, notes] of part) map.set(type, new Set(notes));
  return map;
}

/** Key types this token holds, by class. */
export const TABLES: ReadonlyMap<string, AttributeTable> = new Map([
  [`${P.CKO_DATA}`, build(STORAGE, DATA)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_AES}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_GENERIC_SECRET}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_SHA_1_HMAC}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_SHA224_HMAC}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_SHA256_HMAC}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_SHA384_HMAC}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_SECRET_KEY}/${P.CKK_SHA512_HMAC}`, build(STORAGE, KEY, SECRET_KEY, SECRET_VALUE)],
  [`${P.CKO_PUBLIC_KEY}/${P.CKK_RSA}`, build(STORAGE, KEY, PUBLIC_KEY, RSA_PUBLIC)],
  [`${P.CKO_PRIVATE_KEY}/${P.CKK_RSA}`, build(STORAGE, KEY, PRIVATE_KEY, RSA_PRIVATE)],
  [`${P.CKO_PUBLIC_KEY}/${P.CKK_EC}`, build(STORAGE, KEY, PUBLIC_KEY, EC_PUBLIC)],
  [`${P.CKO_PRIVATE_KEY}/${P.CKK_EC}`, build(STORAGE, KEY, PRIVATE_KEY, EC_PRIVATE)],
]);

export function tableFor(objectClass: number, keyType: number | undefined): AttributeTable | undefined {
  return objectClass === P.CKO_DATA ? TABLES.get(`${P.CKO_DATA}`) : TABLES.get(`${objectClass}/${keyType}`);
}

/**
 * Footnote 9 defaults and the other defaults, as SoftHSMv2 chooses them
 * (src/lib/P11Attributes.cpp setDefault): private by default, usage flags true, keys neither
 * sensitive nor extractable unless asked.
 */
export const DEFAULTS: ReadonlyMap<number, Buffer> = new Map([
  [P.CKA_TOKEN, FALSE],
  [P.CKA_PRIVATE, TRUE],
  [P.CKA_MODIFIABLE, TRUE],
  [P.CKA_COPYABLE, TRUE],
  [P.CKA_DESTROYABLE, TRUE],
  [P.CKA_LABEL, Buffer.alloc(0)],
  [P.CKA_APPLICATION, Buffer.alloc(0)],
  [P.CKA_OBJECT_ID, Buffer.alloc(0)],
  [P.CKA_ID, Buffer.alloc(0)],
  [P.CKA_SUBJECT, Buffer.alloc(0)],
  [P.CKA_START_DATE, Buffer.alloc(0)],
  [P.CKA_END_DATE, Buffer.alloc(0)],
  [P.CKA_DERIVE, FALSE],
  [P.CKA_LOCAL, FALSE],
  [P.CKA_ALLOWED_MECHANISMS, Buffer.alloc(0)],
  [P.CKA_ENCRYPT, TRUE],
  [P.CKA_DECRYPT, TRUE],
  [P.CKA_SIGN, TRUE],
  [P.CKA_VERIFY, TRUE],
  [P.CKA_SIGN_RECOVER, TRUE],
  [P.CKA_VERIFY_RECOVER, TRUE],
  [P.CKA_WRAP, TRUE],
  [P.CKA_UNWRAP, TRUE],
  [P.CKA_TRUSTED, FALSE],
  [P.CKA_SENSITIVE, FALSE],
  [P.CKA_EXTRACTABLE, FALSE],
  [P.CKA_WRAP_WITH_TRUSTED, FALSE],
  [P.CKA_ALWAYS_AUTHENTICATE, FALSE],
  [P.CKA_WRAP_TEMPLATE, Buffer.alloc(0)],
  [P.CKA_UNWRAP_TEMPLATE, Buffer.alloc(0)],
  [CKA_PUBLIC_KEY_INFO, Buffer.alloc(0)],
]);

/** CKA_KEY_GEN_MECHANISM of keys not generated on the token. */
export const NO_KEY_GEN_MECHANISM = Buffer.from("ffffffffffffffff", "hex");

export { ulong };
