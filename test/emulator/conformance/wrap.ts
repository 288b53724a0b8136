/**
 * Wrapping rules, PKCS#11 v2.40 §5.14.3–4 and §4.10 (SoftHSMv2 C_WrapKey / C_UnwrapKey): the
 * wrapped key must be extractable (CKR_KEY_UNEXTRACTABLE); a key with CKA_WRAP_WITH_TRUSTED only
 * under a CKA_TRUSTED key (CKR_KEY_NOT_WRAPPABLE); CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE
 * constrain the keys; the unwrapped key's computed attributes; the usual handle and usage errors.
 */
import { randomBytes } from "node:crypto";
import {
  attribute, BOGUS_HANDLE, boolAttribute, byTarget, expectRv, generateAes, importSecret, P, ulongAttribute, UNAVAILABLE_ULONG, userSession, type Scenario,
} from "./scenario.js";
import { rfc3394, UNWRAPPED_VALUE_LEN_WHY } from "./mechanisms.js";

const KW = { mechanism: P.CKM_AES_KEY_WRAP };
const SECRET_AES = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }];

/** pkcs11js hands attribute values to a module as flat bytes, so it cannot carry a CK_ATTRIBUTE array. */
const NO_NESTED_TEMPLATES = "pkcs11js 2.1.7 cannot pass a CK_ATTRIBUTE array as an attribute value, so CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE cannot be set on a real module";

export const WRAP_SCENARIOS: Scenario[] = [
  {
    area: "wrap",
    title: "wrapping an unextractable key is CKR_KEY_UNEXTRACTABLE",
    run(t, token) {
      const s = userSession(token);
      const kek = generateAes(token, s, 32);
      const key = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: false }]);
      expectRv(t, () => token.p11.C_WrapKey(s, KW, kek, key, Buffer.alloc(64)), P.CKR_KEY_UNEXTRACTABLE);
      const sensitive = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_SENSITIVE, value: true }]);
      t.is(token.p11.C_WrapKey(s, KW, kek, sensitive, Buffer.alloc(64)).length, 24, "a sensitive but extractable key may be wrapped (§4.10)");
    },
  },
  {
    area: "wrap",
    title: "a CKA_WRAP_WITH_TRUSTED key is wrapped only under a CKA_TRUSTED key (else CKR_KEY_NOT_WRAPPABLE)",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      const trustedValue = randomBytes(32);
      importSecret(token, s, trustedValue, [
        { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false }, { type: P.CKA_TRUSTED, value: true }, { type: P.CKA_LABEL, value: "trusted-kek" },
      ]);
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_USER, token.userPin);
      p11.C_FindObjectsInit(s, [{ type: P.CKA_LABEL, value: "trusted-kek" }]);
      const trusted = p11.C_FindObjects(s);
      p11.C_FindObjectsFinal(s);
      if (trusted === null) return t.fail("the SO's trusted key is not visible to the user");
      t.true(boolAttribute(token, s, trusted, P.CKA_TRUSTED));
      const untrusted = generateAes(token, s, 32);
      const value = randomBytes(16);
      const key = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_WRAP_WITH_TRUSTED, value: true }]);
      expectRv(t, () => p11.C_WrapKey(s, KW, untrusted, key, Buffer.alloc(64)), P.CKR_KEY_NOT_WRAPPABLE);
      t.deepEqual(p11.C_WrapKey(s, KW, trusted, key, Buffer.alloc(64)), rfc3394(trustedValue, value));
    },
  },
  {
    area: "wrap",
    title: "CKA_UNWRAP_TEMPLATE: every attribute must appear, identical, in the caller's template (else CKR_TEMPLATE_INCONSISTENT)",
    skip: { softhsm: NO_NESTED_TEMPLATES },
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kek = generateAes(token, s, 32, [{ type: P.CKA_UNWRAP_TEMPLATE, value: [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }] } as never]);
      const key = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const wrapped = p11.C_WrapKey(s, KW, kek, key, Buffer.alloc(64));
      expectRv(t, () => p11.C_UnwrapKey(s, KW, kek, wrapped, SECRET_AES), P.CKR_TEMPLATE_INCONSISTENT, "missing");
      expectRv(t, () => p11.C_UnwrapKey(s, KW, kek, wrapped, [...SECRET_AES, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: true }]),
        P.CKR_TEMPLATE_INCONSISTENT, "different");
      const unwrapped = p11.C_UnwrapKey(s, KW, kek, wrapped, [...SECRET_AES, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
      t.true(boolAttribute(token, s, unwrapped, P.CKA_SENSITIVE));
    },
  },
  {
    area: "wrap",
    title: "CKA_WRAP_TEMPLATE: the wrapping key wraps only keys that match it (else CKR_KEY_NOT_WRAPPABLE)",
    skip: { softhsm: NO_NESTED_TEMPLATES },
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kek = generateAes(token, s, 32, [{ type: P.CKA_WRAP_TEMPLATE, value: [{ type: P.CKA_LABEL, value: "wrappable" }] } as never]);
      const other = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_LABEL, value: "other" }]);
      const matching = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_LABEL, value: "wrappable" }]);
      expectRv(t, () => p11.C_WrapKey(s, KW, kek, other, Buffer.alloc(64)), P.CKR_KEY_NOT_WRAPPABLE);
      t.is(p11.C_WrapKey(s, KW, kek, matching, Buffer.alloc(64)).length, 24);
    },
  },
  {
    area: "wrap",
    title: "an unwrapped key is not LOCAL, has no KEY_GEN_MECHANISM, is neither ALWAYS_SENSITIVE nor NEVER_EXTRACTABLE, and follows the template",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kek = generateAes(token, s, 32);
      const key = generateAes(token, s, 32, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const wrapped = p11.C_WrapKey(s, KW, kek, key, Buffer.alloc(64));
      const unwrapped = p11.C_UnwrapKey(s, KW, kek, wrapped, [
        ...SECRET_AES, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_LABEL, value: "unwrapped" },
        { type: P.CKA_ENCRYPT, value: false },
      ]);
      t.false(boolAttribute(token, s, unwrapped, P.CKA_LOCAL));
      t.deepEqual(attribute(token, s, unwrapped, P.CKA_KEY_GEN_MECHANISM), UNAVAILABLE_ULONG);
      t.false(boolAttribute(token, s, unwrapped, P.CKA_ALWAYS_SENSITIVE), "§5.14.4: the token cannot know the key was always sensitive");
      t.false(boolAttribute(token, s, unwrapped, P.CKA_NEVER_EXTRACTABLE));
      t.true(boolAttribute(token, s, unwrapped, P.CKA_SENSITIVE));
      t.false(boolAttribute(token, s, unwrapped, P.CKA_ENCRYPT));
      t.is(ulongAttribute(token, s, unwrapped, P.CKA_VALUE_LEN), byTarget(t, token, { emulator: 32, softhsm: 0 }, UNWRAPPED_VALUE_LEN_WHY));
      t.deepEqual(attribute(token, s, unwrapped, P.CKA_LABEL), Buffer.from("unwrapped"));
      expectRv(t, () => p11.C_GetAttributeValue(s, unwrapped, [{ type: P.CKA_VALUE }]), P.CKR_ATTRIBUTE_SENSITIVE);
    },
  },
  {
    area: "wrap",
    title: "wrap and unwrap errors: handles, usage flags, templates, corrupted and mis-sized blobs",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const kek = generateAes(token, s, 32);
      const key = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const wrapped = p11.C_WrapKey(s, KW, kek, key, Buffer.alloc(64));
      expectRv(t, () => p11.C_WrapKey(s, KW, BOGUS_HANDLE, key, Buffer.alloc(64)), P.CKR_WRAPPING_KEY_HANDLE_INVALID, "no such wrapping key");
      expectRv(t, () => p11.C_WrapKey(s, KW, kek, BOGUS_HANDLE, Buffer.alloc(64)), P.CKR_KEY_HANDLE_INVALID, "no such key to wrap");
      expectRv(t, () => p11.C_UnwrapKey(s, KW, BOGUS_HANDLE, wrapped, SECRET_AES), P.CKR_UNWRAPPING_KEY_HANDLE_INVALID, "no such unwrapping key");
      const noWrap = generateAes(token, s, 32, [{ type: P.CKA_WRAP, value: false }, { type: P.CKA_UNWRAP, value: false }]);
      expectRv(t, () => p11.C_WrapKey(s, KW, noWrap, key, Buffer.alloc(64)), P.CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_WRAP false");
      expectRv(t, () => p11.C_UnwrapKey(s, KW, noWrap, wrapped, SECRET_AES), P.CKR_KEY_FUNCTION_NOT_PERMITTED, "CKA_UNWRAP false");
      const generic = p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [{ type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_WRAP, value: true }]);
      expectRv(t, () => p11.C_WrapKey(s, KW, generic, key, Buffer.alloc(64)), P.CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "a generic secret as AES KEK");
      expectRv(t, () => p11.C_UnwrapKey(s, KW, kek, wrapped, [{ type: P.CKA_KEY_TYPE, value: P.CKK_AES }]), P.CKR_TEMPLATE_INCOMPLETE, "no CKA_CLASS");
      const corrupted = Buffer.from(wrapped);
      corrupted[5]! ^= 0x40;
      const invalid = byTarget(t, token, { emulator: P.CKR_WRAPPED_KEY_INVALID, softhsm: P.CKR_GENERAL_ERROR },
        "§5.14.4: a wrapped key that fails its integrity check is CKR_WRAPPED_KEY_INVALID, as the emulator answers; SoftHSMv2 2.6.1 answers CKR_GENERAL_ERROR.");
      expectRv(t, () => p11.C_UnwrapKey(s, KW, kek, corrupted, SECRET_AES), invalid, "a changed byte");
      const otherKek = generateAes(token, s, 32);
      expectRv(t, () => p11.C_UnwrapKey(s, KW, otherKek, wrapped, SECRET_AES), invalid, "the wrong key");
      expectRv(t, () => p11.C_UnwrapKey(s, KW, kek, wrapped.subarray(0, 20), SECRET_AES), P.CKR_WRAPPED_KEY_LEN_RANGE, "20 bytes (not a multiple of 8)");
    },
  },
];
