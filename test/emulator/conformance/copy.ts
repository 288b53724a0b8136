/**
 * C_CopyObject (PKCS#11 v2.40 §5.7.2) and what a copy may change: the attributes that may be
 * modified at all (footnote 8, one way for 11 and 12), and, by §4.4 below the storage object
 * table, CKA_TOKEN, CKA_PRIVATE and CKA_MODIFIABLE; the computed attributes of a key travel
 * with it.
 */
import {
  boolAttribute, byTarget, CKR_ACTION_PROHIBITED, createData, expectRv, generateAes, P, ulongAttribute, userSession, type Scenario,
} from "./scenario.js";

export const COPY_SCENARIOS: Scenario[] = [
  {
    area: "copy",
    title: "a copy may change CKA_MODIFIABLE (§4.4): a read-only copy of a modifiable object refuses changes (CKR_ACTION_PROHIBITED)",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const original = createData(token, s, "original");
      const frozen = p11.C_CopyObject(s, original, [{ type: P.CKA_MODIFIABLE, value: false }]);
      t.false(boolAttribute(token, s, frozen, P.CKA_MODIFIABLE), "the copy is read-only");
      t.true(boolAttribute(token, s, original, P.CKA_MODIFIABLE), "the original is not");
      expectRv(t, () => p11.C_SetAttributeValue(s, frozen, [{ type: P.CKA_LABEL, value: "changed" }]), CKR_ACTION_PROHIBITED, "changing the read-only copy");
      p11.C_SetAttributeValue(s, original, [{ type: P.CKA_LABEL, value: "changed" }]);

      const thawed = () => p11.C_CopyObject(s, frozen, [{ type: P.CKA_MODIFIABLE, value: true }]);
      if (byTarget(t, token, { emulator: true, softhsm: false },
        "§4.4 lets a copy change CKA_MODIFIABLE, and has CKA_COPYABLE 'used in conjunction with CKA_MODIFIABLE to prevent changes to the permitted usages': a copyable read-only object may be copied into a modifiable one. " +
        "SoftHSMv2 holds the copy to its source's CKA_MODIFIABLE false while applying the template, so any attribute in it is CKR_ATTRIBUTE_READ_ONLY.")) {
        t.true(boolAttribute(token, s, thawed(), P.CKA_MODIFIABLE), "a modifiable copy of the read-only one");
      } else {
        expectRv(t, thawed, P.CKR_ATTRIBUTE_READ_ONLY, "a modifiable copy of the read-only one");
      }
    },
  },
  {
    area: "copy",
    title: "a copy may make a session object a token object, but not change CKA_DESTROYABLE, CKA_CLASS or the computed key attributes",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const data = createData(token, s, "to-keep");
      const kept = p11.C_CopyObject(s, data, [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }]);
      t.true(boolAttribute(token, s, kept, P.CKA_TOKEN));
      t.true(boolAttribute(token, s, kept, P.CKA_PRIVATE));
      const permanent = () => p11.C_CopyObject(s, data, [{ type: P.CKA_DESTROYABLE, value: false }]);
      if (byTarget(t, token, { emulator: false, softhsm: true },
        "§4.4 names CKA_TOKEN, CKA_PRIVATE and CKA_MODIFIABLE as what a copy may change besides modifiable attributes; CKA_DESTROYABLE, without footnote 8, is not among them (CKR_ATTRIBUTE_READ_ONLY). SoftHSMv2 lets a copy change it (its ck17).")) {
        t.false(boolAttribute(token, s, permanent(), P.CKA_DESTROYABLE));
      } else {
        expectRv(t, permanent, P.CKR_ATTRIBUTE_READ_ONLY, "CKA_DESTROYABLE");
      }
      const key = generateAes(token, s, 16, [{ type: P.CKA_SENSITIVE, value: true }]);
      for (const [name, attr] of [
        ["CKA_CLASS", { type: P.CKA_CLASS, value: P.CKO_DATA }],
        ["CKA_KEY_TYPE", { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET }],
        ["CKA_VALUE_LEN", { type: P.CKA_VALUE_LEN, value: 32 }],
        ["CKA_LOCAL", { type: P.CKA_LOCAL, value: false }],
        ["CKA_ALWAYS_SENSITIVE", { type: P.CKA_ALWAYS_SENSITIVE, value: false }],
        ["CKA_NEVER_EXTRACTABLE", { type: P.CKA_NEVER_EXTRACTABLE, value: false }],
      ] as const) {
        expectRv(t, () => p11.C_CopyObject(s, key, [attr]), P.CKR_ATTRIBUTE_READ_ONLY, name);
      }
    },
  },
  {
    area: "copy",
    title: "a copied key keeps LOCAL, KEY_GEN_MECHANISM, ALWAYS_SENSITIVE and NEVER_EXTRACTABLE; made sensitive or unextractable on copy, it was not always so",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const guarded = generateAes(token, s, 16, [{ type: P.CKA_SENSITIVE, value: true }]);
      const copy = p11.C_CopyObject(s, guarded, []);
      // §4.7: CKA_LOCAL is true for a copy of a key that had it.
      t.true(boolAttribute(token, s, copy, P.CKA_LOCAL));
      t.is(ulongAttribute(token, s, copy, P.CKA_KEY_GEN_MECHANISM), P.CKM_AES_KEY_GEN);
      t.true(boolAttribute(token, s, copy, P.CKA_ALWAYS_SENSITIVE));
      t.true(boolAttribute(token, s, copy, P.CKA_NEVER_EXTRACTABLE));
      const open = generateAes(token, s, 16, [{ type: P.CKA_EXTRACTABLE, value: true }]);
      // §5.7.2: such a copy keeps its source's ALWAYS_SENSITIVE, and is not NEVER_EXTRACTABLE.
      const tightened = p11.C_CopyObject(s, open, [{ type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
      t.true(boolAttribute(token, s, tightened, P.CKA_SENSITIVE));
      t.false(boolAttribute(token, s, tightened, P.CKA_EXTRACTABLE));
      t.false(boolAttribute(token, s, tightened, P.CKA_ALWAYS_SENSITIVE));
      t.false(boolAttribute(token, s, tightened, P.CKA_NEVER_EXTRACTABLE));
    },
  },
  {
    area: "copy",
    title: "a copy may make a private object public (§5.7.2: new CKA_PRIVATE values); SoftHSMv2 refuses",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const secret = createData(token, s, "private", [{ type: P.CKA_PRIVATE, value: true }]);
      const published = () => p11.C_CopyObject(s, secret, [{ type: P.CKA_PRIVATE, value: false }]);
      if (byTarget(t, token, { emulator: true, softhsm: false },
        "§5.7.2: the template 'may also specify new values of the CKA_TOKEN and CKA_PRIVATE attributes', in either direction. SoftHSMv2 refuses to make a private object's copy public (CKR_TEMPLATE_INCONSISTENT).")) {
        const copy = published();
        p11.C_Logout(s);
        t.false(boolAttribute(token, s, copy, P.CKA_PRIVATE), "the public copy is readable without a login");
        expectRv(t, () => p11.C_GetAttributeValue(s, secret, [{ type: P.CKA_LABEL }]), P.CKR_OBJECT_HANDLE_INVALID, "the private original is not");
      } else {
        expectRv(t, published, P.CKR_TEMPLATE_INCONSISTENT);
      }
    },
  },
];
