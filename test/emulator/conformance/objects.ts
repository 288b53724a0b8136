/**
 * Objects: PKCS#11 v2.40 §5.7 (C_CreateObject … C_FindObjectsFinal), session objects' lifetime,
 * and the access table of §6.7 ("Session states" / SoftHSMv2 src/lib/access.cpp): who may see
 * and write public/private × session/token objects from R/O or R/W sessions.
 */
import { randomBytes } from "node:crypto";
import {
  attribute, BOGUS_HANDLE, byTarget, CKR_ACTION_PROHIBITED, createData, expectRv, findAll, importSecret, openSession, P, sameHandles, userSession, type Scenario,
} from "./scenario.js";

export const OBJECT_SCENARIOS: Scenario[] = [
  {
    area: "objects",
    title: "a session object is visible to every session of the application and dies with its session",
    run(t, token) {
      const { p11 } = token;
      const a = openSession(token);
      const b = openSession(token, false);
      const object = createData(token, a, "shared");
      t.true(sameHandles(findAll(token, b, [{ type: P.CKA_LABEL, value: "shared" }]), [object]));
      t.deepEqual(attribute(token, b, object, P.CKA_VALUE), Buffer.from("value of shared"));
      p11.C_CloseSession(a);
      expectRv(t, () => p11.C_GetAttributeValue(b, object, [{ type: P.CKA_LABEL }]), P.CKR_OBJECT_HANDLE_INVALID);
      t.deepEqual(findAll(token, b, [{ type: P.CKA_LABEL, value: "shared" }]), []);
    },
  },
  {
    area: "objects",
    title: "C_Logout destroys private session objects; public session objects and token objects stay",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const privateSession = createData(token, s, "private-session", [{ type: P.CKA_PRIVATE, value: true }]);
      const publicSession = createData(token, s, "public-session");
      const privateToken = createData(token, s, "private-token", [{ type: P.CKA_PRIVATE, value: true }, { type: P.CKA_TOKEN, value: true }]);
      p11.C_Logout(s);
      t.deepEqual(findAll(token, s, [{ type: P.CKA_LABEL, value: "public-session" }]).length, 1);
      p11.C_Login(s, P.CKU_USER, token.userPin);
      t.deepEqual(findAll(token, s, [{ type: P.CKA_LABEL, value: "private-session" }]), [], "the private session object is gone");
      expectRv(t, () => p11.C_GetAttributeValue(s, privateSession, [{ type: P.CKA_LABEL }]), P.CKR_OBJECT_HANDLE_INVALID);
      t.true(sameHandles(findAll(token, s, [{ type: P.CKA_LABEL, value: "public-session" }]), [publicSession]));
      t.is(findAll(token, s, [{ type: P.CKA_LABEL, value: "private-token" }]).length, 1, "the private token object remains");
      t.truthy(privateToken);
    },
  },
  {
    area: "access",
    title: "a read-only session cannot create, change or destroy token objects (CKR_SESSION_READ_ONLY), but may session objects",
    run(t, token) {
      const { p11 } = token;
      const rw = userSession(token);
      const tokenObject = createData(token, rw, "on-token", [{ type: P.CKA_TOKEN, value: true }]);
      const ro = openSession(token, false);
      expectRv(t, () => createData(token, ro, "ro-token", [{ type: P.CKA_TOKEN, value: true }]), P.CKR_SESSION_READ_ONLY, "create");
      expectRv(t, () => p11.C_SetAttributeValue(ro, tokenObject, [{ type: P.CKA_LABEL, value: "renamed" }]), P.CKR_SESSION_READ_ONLY, "set");
      expectRv(t, () => p11.C_DestroyObject(ro, tokenObject), P.CKR_SESSION_READ_ONLY, "destroy");
      expectRv(t, () => p11.C_CopyObject(ro, tokenObject, []), P.CKR_SESSION_READ_ONLY, "copy to a token object");
      const sessionObject = createData(token, ro, "ro-session");
      p11.C_SetAttributeValue(ro, sessionObject, [{ type: P.CKA_LABEL, value: "ro-session-2" }]);
      const copy = p11.C_CopyObject(ro, tokenObject, [{ type: P.CKA_TOKEN, value: false }]);
      t.deepEqual(attribute(token, ro, copy, P.CKA_TOKEN), Buffer.from([0]));
      p11.C_DestroyObject(ro, sessionObject);
      t.deepEqual(attribute(token, ro, tokenObject, P.CKA_LABEL), Buffer.from("on-token"), "reading is fine");
    },
  },
  {
    area: "access",
    title: "a public session sees no private objects and cannot create them (CKR_USER_NOT_LOGGED_IN); public token objects are its to write",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const secret = createData(token, s, "secret", [{ type: P.CKA_PRIVATE, value: true }, { type: P.CKA_TOKEN, value: true }]);
      p11.C_Logout(s);
      t.deepEqual(findAll(token, s, [{ type: P.CKA_LABEL, value: "secret" }]), []);
      expectRv(t, () => p11.C_GetAttributeValue(s, secret, [{ type: P.CKA_LABEL }]), P.CKR_OBJECT_HANDLE_INVALID);
      expectRv(t, () => createData(token, s, "private", [{ type: P.CKA_PRIVATE, value: true }]), P.CKR_USER_NOT_LOGGED_IN, "private session object");
      expectRv(t, () => createData(token, s, "private", [{ type: P.CKA_PRIVATE, value: true }, { type: P.CKA_TOKEN, value: true }]), P.CKR_USER_NOT_LOGGED_IN, "private token object");
      const shared = createData(token, s, "public-token", [{ type: P.CKA_TOKEN, value: true }]);
      p11.C_SetAttributeValue(s, shared, [{ type: P.CKA_LABEL, value: "public-token-2" }]);
      p11.C_DestroyObject(s, shared);
      expectRv(t, () => p11.C_GetAttributeValue(s, shared, [{ type: P.CKA_LABEL }]), P.CKR_OBJECT_HANDLE_INVALID, "destroyed");
    },
  },
  {
    area: "access",
    title: "the SO sees public objects only, and cannot create private ones",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      createData(token, s, "user-private", [{ type: P.CKA_PRIVATE, value: true }, { type: P.CKA_TOKEN, value: true }]);
      createData(token, s, "user-public", [{ type: P.CKA_TOKEN, value: true }]);
      p11.C_Logout(s);
      p11.C_Login(s, P.CKU_SO, token.soPin);
      t.is(findAll(token, s, [{ type: P.CKA_LABEL, value: "user-private" }]).length, 0);
      t.is(findAll(token, s, [{ type: P.CKA_LABEL, value: "user-public" }]).length, 1);
      expectRv(t, () => createData(token, s, "so-private", [{ type: P.CKA_PRIVATE, value: true }]), P.CKR_USER_NOT_LOGGED_IN);
    },
  },
  {
    area: "objects",
    title: "C_CreateObject: missing CKA_CLASS or a secret key's CKA_VALUE is CKR_TEMPLATE_INCOMPLETE; an attribute twice is CKR_TEMPLATE_INCONSISTENT",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      expectRv(t, () => p11.C_CreateObject(s, [{ type: P.CKA_LABEL, value: "no class" }]), P.CKR_TEMPLATE_INCOMPLETE, "no CKA_CLASS");
      expectRv(t, () => p11.C_CreateObject(s, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }]),
        P.CKR_TEMPLATE_INCOMPLETE, "secret key without CKA_VALUE");
      expectRv(t, () => p11.C_CreateObject(s, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_VALUE, value: Buffer.alloc(16) }]),
        P.CKR_TEMPLATE_INCOMPLETE, "secret key without CKA_KEY_TYPE");
      const twice = rvOfDuplicate();
      function rvOfDuplicate(): number | undefined {
        try {
          p11.C_CreateObject(s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_LABEL, value: "a" }, { type: P.CKA_LABEL, value: "b" }]);
          return P.CKR_OK;
        } catch (error) {
          return (error as { code?: number }).code;
        }
      }
      t.is(twice, byTarget(t, token, { emulator: P.CKR_TEMPLATE_INCONSISTENT, softhsm: P.CKR_OK },
        "§5.7.1 lists CKR_TEMPLATE_INCONSISTENT for a template that contradicts itself; SoftHSMv2 takes the last of duplicated attributes. The emulator refuses the ambiguity."));
    },
  },
  {
    area: "objects",
    title: "C_CreateObject: a CKA_CLASS value the token does not know is CKR_ATTRIBUTE_VALUE_INVALID, not a missing CKA_KEY_TYPE",
    run(t, token) {
      const s = userSession(token);
      // §4.1.1 rule 2: an invalid value for a valid attribute. No class is defined at this value.
      expectRv(t, () => token.p11.C_CreateObject(s, [{ type: P.CKA_CLASS, value: 0x1234 }, { type: P.CKA_LABEL, value: "unknown class" }]),
        P.CKR_ATTRIBUTE_VALUE_INVALID);
    },
  },
  {
    area: "objects",
    title: "C_CreateObject: a generic secret's CKA_VALUE the token cannot hold is refused as an invalid value, never CKR_GENERAL_ERROR",
    run(t, token) {
      const s = userSession(token);
      const generic = (value: Buffer) => () => importSecret(token, s, value, [], P.CKK_GENERIC_SECRET);
      t.truthy(generic(randomBytes(1))(), "one byte is a key");
      for (const [name, value] of [["empty", Buffer.alloc(0)], ["8193 bytes", randomBytes(8193)]] as const) {
        if (byTarget(t, token, { emulator: false, softhsm: true },
          "v2.40 §4.1.1 rule 2 makes an unusable value CKR_ATTRIBUTE_VALUE_INVALID; the emulator's key slots hold 1..8192 bytes and refuse the rest so, SoftHSMv2 stores a generic secret of any length, even none (the specification only says 'arbitrary length').")) {
          t.truthy(generic(value)(), name);
        } else {
          expectRv(t, generic(value), P.CKR_ATTRIBUTE_VALUE_INVALID, name);
        }
      }
    },
  },
  {
    area: "objects",
    title: "attribute types an object does not have, and values of the wrong size, are refused",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const data = createData(token, s, "d");
      expectRv(t, () => p11.C_GetAttributeValue(s, data, [{ type: P.CKA_MODULUS }]), P.CKR_ATTRIBUTE_TYPE_INVALID, "reading CKA_MODULUS of a data object");
      expectRv(t, () => createData(token, s, "bool as ulong", [{ type: P.CKA_MODIFIABLE, value: 1 }]), P.CKR_ATTRIBUTE_VALUE_INVALID, "a CK_ULONG where a CK_BBOOL goes");
      expectRv(t, () => p11.C_CreateObject(s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_MODULUS_BITS, value: 2048 }]),
        P.CKR_ATTRIBUTE_TYPE_INVALID, "CKA_MODULUS_BITS on a data object");
    },
  },
  {
    area: "objects",
    title: "C_CopyObject copies with changes to modifiable attributes; C_DestroyObject removes; a gone handle is CKR_OBJECT_HANDLE_INVALID",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const original = createData(token, s, "original");
      const size = p11.C_GetObjectSize(s, original);
      if (byTarget(t, token, { emulator: "a size", softhsm: "CK_UNAVAILABLE_INFORMATION" },
        "§5.7.4 allows CK_UNAVAILABLE_INFORMATION for C_GetObjectSize, which SoftHSMv2 returns (0xffffffff as pkcs11js reads it); the emulator gives an approximate stored size.") === "a size") {
        t.true(size > 0 && size < 0xffffffff);
      } else {
        t.is(size, 0xffffffff);
      }
      const copy = p11.C_CopyObject(s, original, [{ type: P.CKA_LABEL, value: "copy" }]);
      t.false(copy.equals(original));
      t.deepEqual(attribute(token, s, copy, P.CKA_LABEL), Buffer.from("copy"));
      t.deepEqual(attribute(token, s, copy, P.CKA_VALUE), Buffer.from("value of original"));
      expectRv(t, () => p11.C_CopyObject(s, original, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }]), P.CKR_ATTRIBUTE_READ_ONLY, "changing CKA_CLASS");
      p11.C_DestroyObject(s, original);
      expectRv(t, () => p11.C_GetAttributeValue(s, original, [{ type: P.CKA_LABEL }]), P.CKR_OBJECT_HANDLE_INVALID);
      expectRv(t, () => p11.C_DestroyObject(s, original), P.CKR_OBJECT_HANDLE_INVALID);
      expectRv(t, () => p11.C_CopyObject(s, BOGUS_HANDLE, []), P.CKR_OBJECT_HANDLE_INVALID);
      t.deepEqual(attribute(token, s, copy, P.CKA_LABEL), Buffer.from("copy"), "the copy outlives the original");
    },
  },
  {
    area: "objects",
    title: "CKA_MODIFIABLE false forbids changes; CKA_COPYABLE and CKA_DESTROYABLE false forbid copies and destruction",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const fixed = createData(token, s, "fixed", [{ type: P.CKA_MODIFIABLE, value: false }]);
      expectRv(t, () => p11.C_SetAttributeValue(s, fixed, [{ type: P.CKA_LABEL, value: "changed" }]), CKR_ACTION_PROHIBITED, "CKA_MODIFIABLE false");
      const uncopyable = createData(token, s, "uncopyable", [{ type: P.CKA_COPYABLE, value: false }]);
      expectRv(t, () => p11.C_CopyObject(s, uncopyable, []), CKR_ACTION_PROHIBITED, "CKA_COPYABLE false");
      const permanent = createData(token, s, "permanent", [{ type: P.CKA_DESTROYABLE, value: false }]);
      expectRv(t, () => p11.C_DestroyObject(s, permanent), CKR_ACTION_PROHIBITED, "CKA_DESTROYABLE false");
      expectRv(t, () => p11.C_SetAttributeValue(s, uncopyable, [{ type: P.CKA_COPYABLE, value: true }]), P.CKR_ATTRIBUTE_READ_ONLY, "CKA_COPYABLE cannot return to true");
    },
  },
  {
    area: "find",
    title: "C_FindObjects finds by template: by label, by class, all with an empty template; batches and one-at-a-time",
    run(t, token) {
      const { p11 } = token;
      const s = userSession(token);
      const a = createData(token, s, "find-a", [{ type: P.CKA_APPLICATION, value: "app" }]);
      const b = createData(token, s, "find-b", [{ type: P.CKA_APPLICATION, value: "app" }]);
      const c = createData(token, s, "find-c", [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }]);
      t.true(sameHandles(findAll(token, s, [{ type: P.CKA_LABEL, value: "find-b" }]), [b]));
      t.true(sameHandles(findAll(token, s, [{ type: P.CKA_APPLICATION, value: "app" }]), [a, b]));
      t.true(sameHandles(findAll(token, s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true }]), [c]));
      t.true(sameHandles(findAll(token, s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }]), [a, b, c]));
      t.true(sameHandles(findAll(token, s, []), [a, b, c]));
      t.deepEqual(findAll(token, s, [{ type: P.CKA_LABEL, value: "nothing like it" }]), []);
      p11.C_FindObjectsInit(s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }]);
      const two = p11.C_FindObjects(s, 2);
      t.is(two.length, 2);
      const one = p11.C_FindObjects(s);
      t.truthy(one);
      t.is(p11.C_FindObjects(s), null, "then nothing");
      t.deepEqual(p11.C_FindObjects(s, 5), []);
      p11.C_FindObjectsFinal(s);
      t.true(sameHandles([...two, one!], [a, b, c]));
    },
  },
  {
    area: "find",
    title: "find operation errors: C_FindObjects before init and C_FindObjectsFinal twice are CKR_OPERATION_NOT_INITIALIZED, a second init CKR_OPERATION_ACTIVE",
    run(t, token) {
      const { p11 } = token;
      const s = openSession(token);
      expectRv(t, () => p11.C_FindObjects(s, 1), P.CKR_OPERATION_NOT_INITIALIZED, "C_FindObjects");
      expectRv(t, () => p11.C_FindObjectsFinal(s), P.CKR_OPERATION_NOT_INITIALIZED, "C_FindObjectsFinal");
      p11.C_FindObjectsInit(s, []);
      expectRv(t, () => p11.C_FindObjectsInit(s, []), P.CKR_OPERATION_ACTIVE, "second C_FindObjectsInit");
      p11.C_FindObjectsFinal(s);
      expectRv(t, () => p11.C_FindObjectsFinal(s), P.CKR_OPERATION_NOT_INITIALIZED, "second C_FindObjectsFinal");
    },
  },
];
