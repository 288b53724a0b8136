/**
 * Attribute rules of PKCS#11 v2.40 §4 (Table 10 footnotes) on keys: SENSITIVE only to true,
 * EXTRACTABLE only to false, read-only attributes, the computed ALWAYS_SENSITIVE /
 * NEVER_EXTRACTABLE / LOCAL / KEY_GEN_MECHANISM, CKA_TRUSTED by the SO only, and sensitive
 * values never leaving the token (CKR_ATTRIBUTE_SENSITIVE).
 */
import { randomBytes } from "node:crypto";
import type { Template } from "../../../emulator/pkcs11.js";
import {
  attribute, boolAttribute, byTarget, createData, expectRv, generateAes, importSecret, offers, openSession, P, UNAVAILABLE_ULONG, ulongAttribute, userSession, type Scenario,
} from "./scenario.js";

/** The DER OID of NIST P-256 (secp256r1), as CKA_EC_PARAMS. */
const P256_PARAMS = Buffer.from("06082a8648ce3d030107", "hex");

/**
 * Why the tokens differ on CKA_TRUSTED (footnote 10), CKA_WRAP_WITH_TRUSTED (11) and CKA_COPYABLE
 * (12) after creation: none of them carries footnote 8 ("may be modified after the object is
 * created"), yet footnotes 10–12 describe changes in one direction. v2.40 leaves it open.
 */
const FOOTNOTES_WITHOUT_8 =
  "v2.40 gives CKA_TRUSTED footnote 10, CKA_WRAP_WITH_TRUSTED 11 and CKA_COPYABLE 12 but not footnote 8 (modifiable after creation), so the text leaves open whether their one-way change is allowed later. " +
  "The emulator allows the tightening direction (the SO trusting a key, WRAP_WITH_TRUSTED to true, COPYABLE to false); SoftHSMv2 allows them only at creation (CKR_ATTRIBUTE_READ_ONLY).";

export const ATTRIBUTE_SCENARIOS: Scenario[] = [
  {
    area: "attributes",
    title: "CKA_SENSITIVE can become true but never false again",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = generateAes(token, s, 16, [{ type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]);
      p11.C_SetAttributeValue(s, key, [{ type: P.CKA_SENSITIVE, value: false }]);
      p11.C_SetAttributeValue(s, key, [{ type: P.CKA_SENSITIVE, value: true }]);
      t.true(boolAttribute(token, s, key, P.CKA_SENSITIVE));
      expectRv(t, () => p11.C_SetAttributeValue(s, key, [{ type: P.CKA_SENSITIVE, value: false }]), P.CKR_ATTRIBUTE_READ_ONLY);
      t.false(boolAttribute(token, s, key, P.CKA_ALWAYS_SENSITIVE), "it was not always sensitive");
      expectRv(t, () => p11.C_CopyObject(s, key, [{ type: P.CKA_SENSITIVE, value: false }]), P.CKR_ATTRIBUTE_READ_ONLY, "nor on a copy");
    },
  },
  {
    area: "attributes",
    title: "CKA_EXTRACTABLE can become false but never true again",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      t.false(boolAttribute(token, s, key, P.CKA_NEVER_EXTRACTABLE));
      p11.C_SetAttributeValue(s, key, [{ type: P.CKA_EXTRACTABLE, value: false }]);
      expectRv(t, () => p11.C_SetAttributeValue(s, key, [{ type: P.CKA_EXTRACTABLE, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY);
      t.false(boolAttribute(token, s, key, P.CKA_NEVER_EXTRACTABLE), "it was extractable once");
      const copy = p11.C_CopyObject(s, key, []);
      expectRv(t, () => p11.C_CopyObject(s, copy, [{ type: P.CKA_EXTRACTABLE, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, "nor on a copy");
    },
  },
  {
    area: "attributes",
    title: "read-only attributes cannot be set: class, key type, length, local, the computed flags, the key value",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const attempts: Array<[string, { type: number; value: number | boolean | Buffer }]> = [
        ["CKA_CLASS", { type: P.CKA_CLASS, value: P.CKO_DATA }],
        ["CKA_KEY_TYPE", { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }],
        ["CKA_VALUE_LEN", { type: P.CKA_VALUE_LEN, value: 32 }],
        ["CKA_LOCAL", { type: P.CKA_LOCAL, value: false }],
        ["CKA_ALWAYS_SENSITIVE", { type: P.CKA_ALWAYS_SENSITIVE, value: true }],
        ["CKA_NEVER_EXTRACTABLE", { type: P.CKA_NEVER_EXTRACTABLE, value: true }],
        ["CKA_KEY_GEN_MECHANISM", { type: P.CKA_KEY_GEN_MECHANISM, value: P.CKM_GENERIC_SECRET_KEY_GEN }],
        ["CKA_VALUE", { type: P.CKA_VALUE, value: Buffer.alloc(16, 7) }],
      ];
      for (const [name, attr] of attempts) expectRv(t, () => p11.C_SetAttributeValue(s, key, [attr]), P.CKR_ATTRIBUTE_READ_ONLY, name);
      const sameClass = () => p11.C_SetAttributeValue(s, key, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }]);
      if (byTarget(t, token, { emulator: true, softhsm: false },
        "§5.7.6 refuses a value for an attribute that cannot be modified; whether restating the current value is a modification the text does not say. The emulator accepts the no-op, SoftHSMv2 refuses it (CKR_ATTRIBUTE_READ_ONLY).")) {
        sameClass();
      } else {
        expectRv(t, sameClass, P.CKR_ATTRIBUTE_READ_ONLY, "CKA_CLASS restated");
      }
      p11.C_SetAttributeValue(s, key, [{ type: P.CKA_LABEL, value: "relabelled" }, { type: P.CKA_ID, value: Buffer.from("01", "hex") }, { type: P.CKA_ENCRYPT, value: false }]);
      t.deepEqual(attribute(token, s, key, P.CKA_LABEL), Buffer.from("relabelled"));
      t.false(boolAttribute(token, s, key, P.CKA_ENCRYPT));
    },
  },
  {
    area: "attributes",
    title: "computed attributes of generated keys: LOCAL, KEY_GEN_MECHANISM, ALWAYS_SENSITIVE, NEVER_EXTRACTABLE",
    run(t, token) {
      const s = userSession(token);
      const guarded = generateAes(token, s, 32, [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
      t.true(boolAttribute(token, s, guarded, P.CKA_LOCAL));
      t.is(ulongAttribute(token, s, guarded, P.CKA_KEY_GEN_MECHANISM), P.CKM_AES_KEY_GEN);
      t.true(boolAttribute(token, s, guarded, P.CKA_ALWAYS_SENSITIVE));
      t.true(boolAttribute(token, s, guarded, P.CKA_NEVER_EXTRACTABLE));
      t.is(ulongAttribute(token, s, guarded, P.CKA_VALUE_LEN), 32);
      t.is(ulongAttribute(token, s, guarded, P.CKA_CLASS), P.CKO_SECRET_KEY);
      t.is(ulongAttribute(token, s, guarded, P.CKA_KEY_TYPE), P.CKK_AES);
      const open = generateAes(token, s, 16, [{ type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]);
      t.true(boolAttribute(token, s, open, P.CKA_LOCAL));
      t.false(boolAttribute(token, s, open, P.CKA_ALWAYS_SENSITIVE));
      t.false(boolAttribute(token, s, open, P.CKA_NEVER_EXTRACTABLE));
    },
  },
  {
    area: "attributes",
    title: "computed attributes of created keys: not LOCAL, no KEY_GEN_MECHANISM, neither ALWAYS_SENSITIVE nor NEVER_EXTRACTABLE",
    run(t, token) {
      const s = userSession(token);
      const key = importSecret(token, s, randomBytes(16), [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
      t.false(boolAttribute(token, s, key, P.CKA_LOCAL));
      t.deepEqual(attribute(token, s, key, P.CKA_KEY_GEN_MECHANISM), UNAVAILABLE_ULONG, "CK_UNAVAILABLE_INFORMATION");
      t.is(ulongAttribute(token, s, key, P.CKA_VALUE_LEN), 16, "CKA_VALUE_LEN is filled in from the value");
      // The value came from outside in plaintext: the token cannot vouch for its history.
      t.false(boolAttribute(token, s, key, P.CKA_ALWAYS_SENSITIVE));
      t.false(boolAttribute(token, s, key, P.CKA_NEVER_EXTRACTABLE));
    },
  },
  {
    area: "attributes",
    title: "an AES key's value is 16, 24 or 32 bytes, and CKA_VALUE_LEN is not given at C_CreateObject",
    run(t, token) {
      const s = userSession(token);
      expectRv(t, () => importSecret(token, s, randomBytes(16), [{ type: P.CKA_VALUE_LEN, value: 16 }]), P.CKR_ATTRIBUTE_READ_ONLY, "footnote 2: CKA_VALUE_LEN at C_CreateObject");
      const fifteen = () => importSecret(token, s, randomBytes(15));
      if (byTarget(t, token, { emulator: false, softhsm: true },
        "v2.40 §2.8 (AES secret key objects): CKA_VALUE is 16, 24 or 32 bytes, so the emulator refuses 15 (CKR_ATTRIBUTE_VALUE_INVALID). SoftHSMv2 2.6.1 stores it and fails only when the key is used — a SoftHSMv2 defect.")) {
        t.truthy(fifteen());
      } else {
        expectRv(t, fifteen, P.CKR_ATTRIBUTE_VALUE_INVALID, "15 bytes");
      }
    },
  },
  {
    area: "attributes",
    title: "computed attributes cannot be given in a template (CKR_ATTRIBUTE_READ_ONLY)",
    run(t, token) {
      const s = userSession(token);
      for (const [name, type] of [["CKA_LOCAL", P.CKA_LOCAL], ["CKA_ALWAYS_SENSITIVE", P.CKA_ALWAYS_SENSITIVE], ["CKA_NEVER_EXTRACTABLE", P.CKA_NEVER_EXTRACTABLE]] as const) {
        expectRv(t, () => generateAes(token, s, 16, [{ type, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, `${name} at C_GenerateKey`);
        expectRv(t, () => importSecret(token, s, randomBytes(16), [{ type, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, `${name} at C_CreateObject`);
      }
    },
  },
  {
    area: "attributes",
    title: "CKA_KEY_GEN_MECHANISM cannot be given at generation (footnote 4: CKR_ATTRIBUTE_READ_ONLY), even naming the mechanism used",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      expectRv(t, () => generateAes(token, s, 16, [{ type: P.CKA_KEY_GEN_MECHANISM, value: P.CKM_AES_KEY_GEN }]), P.CKR_ATTRIBUTE_READ_ONLY, "C_GenerateKey, AES");
      expectRv(t, () => p11.C_GenerateKey(s, { mechanism: P.CKM_GENERIC_SECRET_KEY_GEN }, [
        { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_KEY_GEN_MECHANISM, value: P.CKM_GENERIC_SECRET_KEY_GEN },
      ]), P.CKR_ATTRIBUTE_READ_ONLY, "C_GenerateKey, generic secret");
      expectRv(t, () => importSecret(token, s, randomBytes(16), [{ type: P.CKA_KEY_GEN_MECHANISM, value: P.CKM_AES_KEY_GEN }]), P.CKR_ATTRIBUTE_READ_ONLY, "C_CreateObject (footnote 2)");
      if (!offers(t, token, P.CKM_EC_KEY_PAIR_GEN)) return;
      const pair = (publicExtra: Template, privateExtra: Template) => () =>
        p11.C_GenerateKeyPair(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, [{ type: P.CKA_EC_PARAMS, value: P256_PARAMS }, ...publicExtra], privateExtra);
      const named = [{ type: P.CKA_KEY_GEN_MECHANISM, value: P.CKM_EC_KEY_PAIR_GEN }];
      expectRv(t, pair(named, []), P.CKR_ATTRIBUTE_READ_ONLY, "C_GenerateKeyPair, public template");
      expectRv(t, pair([], named), P.CKR_ATTRIBUTE_READ_ONLY, "C_GenerateKeyPair, private template");
      t.is(ulongAttribute(token, s, p11.C_GenerateKeyPair(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, [{ type: P.CKA_EC_PARAMS, value: P256_PARAMS }], []).privateKey, P.CKA_KEY_GEN_MECHANISM),
        P.CKM_EC_KEY_PAIR_GEN, "the token sets it itself");
    },
  },
  {
    area: "attributes",
    title: "sensitive or unextractable key values are CKR_ATTRIBUTE_SENSITIVE; the rest of the key reads normally",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const sensitive = generateAes(token, s, 32, [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: true }]);
      const unextractable = generateAes(token, s, 32, [{ type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: false }]);
      const readable = generateAes(token, s, 32, [{ type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]);
      expectRv(t, () => p11.C_GetAttributeValue(s, sensitive, [{ type: P.CKA_VALUE }]), P.CKR_ATTRIBUTE_SENSITIVE, "sensitive");
      expectRv(t, () => p11.C_GetAttributeValue(s, unextractable, [{ type: P.CKA_VALUE }]), P.CKR_ATTRIBUTE_SENSITIVE, "unextractable");
      expectRv(t, () => p11.C_GetAttributeValue(s, sensitive, [{ type: P.CKA_VALUE_LEN }, { type: P.CKA_VALUE }]), P.CKR_ATTRIBUTE_SENSITIVE, "with another attribute");
      t.is(ulongAttribute(token, s, sensitive, P.CKA_VALUE_LEN), 32);
      t.is(attribute(token, s, readable, P.CKA_VALUE).length, 32);
      p11.C_SetAttributeValue(s, readable, [{ type: P.CKA_SENSITIVE, value: true }]);
      expectRv(t, () => p11.C_GetAttributeValue(s, readable, [{ type: P.CKA_VALUE }]), P.CKR_ATTRIBUTE_SENSITIVE, "once made sensitive");
      const value = randomBytes(16);
      const imported = importSecret(token, s, value, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      t.deepEqual(attribute(token, s, imported, P.CKA_VALUE), value, "a created extractable, non-sensitive key gives its value back");
    },
  },
  {
    area: "attributes",
    title: "only the SO can set CKA_TRUSTED (the user gets CKR_ATTRIBUTE_READ_ONLY); on an existing key only the emulator lets the SO",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      expectRv(t, () => generateAes(token, s, 32, [{ type: P.CKA_TRUSTED, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, "user, at generation");
      const key = generateAes(token, s, 32, [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false }, { type: P.CKA_LABEL, value: "to-trust" }]);
      expectRv(t, () => p11.C_SetAttributeValue(s, key, [{ type: P.CKA_TRUSTED, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, "user, by C_SetAttributeValue");
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      const soKey = generateAes(token, s, 32, [{ type: P.CKA_PRIVATE, value: false }, { type: P.CKA_TRUSTED, value: true }]);
      t.true(boolAttribute(token, s, soKey, P.CKA_TRUSTED), "the SO may generate a trusted key");
      if (byTarget(t, token, { emulator: true, softhsm: false }, FOOTNOTES_WITHOUT_8)) {
        p11.C_SetAttributeValue(s, key, [{ type: P.CKA_TRUSTED, value: true }]);
        t.true(boolAttribute(token, s, key, P.CKA_TRUSTED), "the SO may trust an existing key");
      } else {
        expectRv(t, () => p11.C_SetAttributeValue(s, key, [{ type: P.CKA_TRUSTED, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, "the SO, on an existing key");
      }
    },
  },
  {
    area: "attributes",
    title: "the SO's CKA_TRUSTED is no one else's to withdraw: a public session or the user clearing it is CKR_ATTRIBUTE_READ_ONLY, by set or copy",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      const trusted = generateAes(token, s, 32, [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: false }, { type: P.CKA_TRUSTED, value: true }]);
      p11.C_Logout(s);
      // Footnote 10 and no footnote 8: only the SO decides what the token trusts.
      const untrust = [{ type: P.CKA_TRUSTED, value: false }];
      expectRv(t, () => p11.C_SetAttributeValue(s, trusted, untrust), P.CKR_ATTRIBUTE_READ_ONLY, "public session, by C_SetAttributeValue");
      p11.C_Login(s, P.CKU_USER, token.userPin);
      expectRv(t, () => p11.C_SetAttributeValue(s, trusted, untrust), P.CKR_ATTRIBUTE_READ_ONLY, "user, by C_SetAttributeValue");
      expectRv(t, () => p11.C_CopyObject(s, trusted, untrust), P.CKR_ATTRIBUTE_READ_ONLY, "user, by C_CopyObject");
      t.true(boolAttribute(token, s, trusted, P.CKA_TRUSTED), "still trusted");
    },
  },
  {
    area: "attributes",
    title: "one-way attributes without footnote 8 (WRAP_WITH_TRUSTED, COPYABLE): the emulator allows the one way, SoftHSMv2 only creation",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const key = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      const given = generateAes(token, s, 16, [{ type: P.CKA_WRAP_WITH_TRUSTED, value: true }]);
      t.true(boolAttribute(token, s, given, P.CKA_WRAP_WITH_TRUSTED), "set at creation");
      expectRv(t, () => p11.C_SetAttributeValue(s, given, [{ type: P.CKA_WRAP_WITH_TRUSTED, value: false }]), P.CKR_ATTRIBUTE_READ_ONLY, "never back to false");
      const data = createData(token, s, "copyable");
      if (byTarget(t, token, { emulator: true, softhsm: false }, FOOTNOTES_WITHOUT_8)) {
        p11.C_SetAttributeValue(s, key, [{ type: P.CKA_WRAP_WITH_TRUSTED, value: true }]);
        t.true(boolAttribute(token, s, key, P.CKA_WRAP_WITH_TRUSTED));
        p11.C_SetAttributeValue(s, data, [{ type: P.CKA_COPYABLE, value: false }]);
        t.false(boolAttribute(token, s, data, P.CKA_COPYABLE));
      } else {
        expectRv(t, () => p11.C_SetAttributeValue(s, key, [{ type: P.CKA_WRAP_WITH_TRUSTED, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, "WRAP_WITH_TRUSTED to true");
        expectRv(t, () => p11.C_SetAttributeValue(s, data, [{ type: P.CKA_COPYABLE, value: false }]), P.CKR_ATTRIBUTE_READ_ONLY, "COPYABLE to false");
      }
    },
  },
  {
    area: "attributes",
    title: "key usage defaults: a generated AES key may encrypt, decrypt, wrap and unwrap; is private, not sensitive, not extractable",
    run(t, token) {
      const s = userSession(token);
      const key = generateAes(token, s, 16);
      for (const [name, type] of [["ENCRYPT", P.CKA_ENCRYPT], ["DECRYPT", P.CKA_DECRYPT], ["WRAP", P.CKA_WRAP], ["UNWRAP", P.CKA_UNWRAP], ["PRIVATE", P.CKA_PRIVATE]] as const) {
        t.true(boolAttribute(token, s, key, type), `CKA_${name}`);
      }
      for (const [name, type] of [["TOKEN", P.CKA_TOKEN], ["SENSITIVE", P.CKA_SENSITIVE], ["EXTRACTABLE", P.CKA_EXTRACTABLE], ["DERIVE", P.CKA_DERIVE], ["TRUSTED", P.CKA_TRUSTED], ["WRAP_WITH_TRUSTED", P.CKA_WRAP_WITH_TRUSTED]] as const) {
        t.false(boolAttribute(token, s, key, type), `CKA_${name}`);
      }
    },
  },
  {
    area: "attributes",
    title: "values C_GetAttributeValue returns are the caller's: writing into one changes no object",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const types = [P.CKA_CLASS, P.CKA_KEY_TYPE, P.CKA_VALUE_LEN, P.CKA_ENCRYPT, P.CKA_SENSITIVE, P.CKA_LABEL, P.CKA_CHECK_VALUE];
      const template: Template = [{ type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_LABEL, value: "mine" }];
      const key = generateAes(token, s, 32, template);
      const other = generateAes(token, s, 32, template);
      const read = (object: typeof key): Buffer[] => types.map((type) => Buffer.from(attribute(token, s, object, type)));
      const before = [read(key), read(other)];
      // pkcs11js hands out fresh Buffers; an emulator handing out its own (or values shared between
      // objects, such as one CK_TRUE) would let this corrupt every key on the token.
      for (const result of p11.C_GetAttributeValue(s, key, types.map((type) => ({ type })))) (result.value as Buffer).fill(0xee);
      t.deepEqual([read(key), read(other)], before);
    },
  },
];
