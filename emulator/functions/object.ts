/**
 * Object management, PKCS#11 v2.40 §5.7: C_CreateObject, C_CopyObject, C_DestroyObject,
 * C_GetObjectSize, C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit, C_FindObjects,
 * C_FindObjectsFinal.
 */
import { importKey, MAX_KEY_BYTES } from "../../src/crypto/keys.js";
import { CkrError } from "../errors.js";
import { CKR_ACTION_PROHIBITED } from "../extra-constants.js";
import { toHandle } from "../handles.js";
import { native } from "../mechanisms/native-errors.js";
import { checkWrite } from "../objects/access.js";
import { decodeCallerTemplate, readUlong, ulong } from "../objects/attributes.js";
import { settleCheckValue } from "../objects/check-value.js";
import { applyChanges, buildAttributes, matches, P11Object, readAttribute, type ObjectMaterial } from "../objects/object.js";
import { pkcs11, type AttributeResult, type Handle } from "../pkcs11.js";
import type { Session, ActiveOperation } from "../session.js";
import type { ModuleState } from "../state.js";
import { numberArg } from "./common.js";

const P = pkcs11;

/** Stores a new object in its token or among the session objects, and persists token objects. */
export function addObject(state: ModuleState, session: Session, attrs: Map<number, Buffer>, material: ObjectMaterial): P11Object {
  const object = new P11Object(state.newObjectHandle(), attrs, material, undefined);
  try {
    checkWrite(session.viewer, object);
  } catch (error) {
    object.destroy();
    throw error;
  }
  const token = session.slot.token!;
  if (object.isToken) {
    if (token.tokenKey === null) {
      object.destroy();
      throw new CkrError(P.CKR_USER_NOT_LOGGED_IN, "token objects are encrypted under the token key, available after a login");
    }
    token.objects.set(object.handle, object);
    try {
      state.persistence.objectSaved(token, object);
    } catch (error) {
      token.objects.delete(object.handle);
      object.destroy();
      throw error;
    }
  } else {
    object.session = session.handle;
    state.sessionObjects.set(object.handle, object);
  }
  return object;
}

/**
 * Material for C_CreateObject: a secret key's CKA_VALUE moves into a native key slot (and out of
 * the attributes) and its CKA_CHECK_VALUE is settled; data objects keep their value as an
 * attribute. Asymmetric keys are created by the families in emulator/mechanisms (rsa.ts, ec.ts)
 * when present.
 */
function createMaterial(attrs: Map<number, Buffer>): ObjectMaterial {
  const objectClass = readUlong(attrs.get(P.CKA_CLASS)!);
  if (objectClass !== P.CKO_SECRET_KEY) return { kind: "none" };
  const value = attrs.get(P.CKA_VALUE)!;
  attrs.delete(P.CKA_VALUE);
  const keyType = readUlong(attrs.get(P.CKA_KEY_TYPE)!);
  if (keyType === P.CKK_AES && ![16, 24, 32].includes(value.length)) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, "AES keys are 16, 24 or 32 bytes");
  // The native key slot's bounds; checked here because importKey refuses other lengths with a RangeError,
  // which is no native error and would leave as CKR_GENERAL_ERROR.
  if (value.length < 1 || value.length > MAX_KEY_BYTES) throw new CkrError(P.CKR_ATTRIBUTE_VALUE_INVALID, `secret keys are 1..${MAX_KEY_BYTES} bytes`);
  const given = attrs.get(P.CKA_VALUE_LEN);
  if (given !== undefined && readUlong(given) !== value.length) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "CKA_VALUE_LEN disagrees with CKA_VALUE");
  attrs.set(P.CKA_VALUE_LEN, ulong(value.length));
  const key = native({ invalidArgument: P.CKR_ATTRIBUTE_VALUE_INVALID }, () => importKey(value));
  value.fill(0);
  try {
    settleCheckValue(attrs, key, "create");
  } catch (error) {
    key.destroy();
    throw error;
  }
  return { kind: "secret", key };
}

/** §5.7.1 */
export function createObject(state: ModuleState, sessionHandle: unknown, template: unknown): Handle {
  const session = state.session(sessionHandle);
  const token = session.slot.token!;
  const attrs = buildAttributes(decodeCallerTemplate(template), { origin: "create", isSO: token.login === "so" });
  const objectClass = readUlong(attrs.get(P.CKA_CLASS)!);
  if (objectClass === P.CKO_SECRET_KEY && !attrs.has(P.CKA_VALUE)) throw new CkrError(P.CKR_TEMPLATE_INCOMPLETE, "CKA_VALUE is required");
  if (objectClass === P.CKO_PUBLIC_KEY || objectClass === P.CKO_PRIVATE_KEY) {
    const create = state.asymmetricImport;
    if (create === undefined) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "asymmetric key import is not available");
    const material = create(attrs);
    return toHandle(addObject(state, session, attrs, material).handle);
  }
  return toHandle(addObject(state, session, attrs, createMaterial(attrs)).handle);
}

/** §5.7.2 C_CopyObject: a new object with the same material; only modifiable attributes (and, §4.4, TOKEN/PRIVATE/MODIFIABLE) may change. */
export function copyObject(state: ModuleState, sessionHandle: unknown, objectHandle: unknown, template: unknown): Handle {
  const session = state.session(sessionHandle);
  const source = state.object(session, objectHandle);
  if (!source.flag(P.CKA_COPYABLE)) throw new CkrError(CKR_ACTION_PROHIBITED, "object is not copyable");
  const token = session.slot.token!;
  const attrs = applyChanges(source, decodeCallerTemplate(template), { copy: true, isSO: token.login === "so" });
  let material: ObjectMaterial = source.material;
  if (material.kind === "secret") {
    const bytes = material.key.exportBytes();
    material = { kind: "secret", key: importKey(bytes) };
    bytes.fill(0);
  }
  return toHandle(addObject(state, session, attrs, material).handle);
}

/** §5.7.3 */
export function destroyObject(state: ModuleState, sessionHandle: unknown, objectHandle: unknown): void {
  const session = state.session(sessionHandle);
  const object = state.object(session, objectHandle);
  checkWrite(session.viewer, object);
  if (!object.flag(P.CKA_DESTROYABLE)) throw new CkrError(CKR_ACTION_PROHIBITED, "object is not destroyable");
  const token = session.slot.token!;
  if (object.isToken) {
    // The file first: if it cannot be removed the object stays, in memory as on disk.
    state.persistence.objectDeleted(token, object.handle);
    token.objects.delete(object.handle);
  } else {
    state.sessionObjects.delete(object.handle);
  }
  object.destroy();
}

/** §5.7.4: an approximation of the stored size, as SoftHSMv2 gives. */
export function getObjectSize(state: ModuleState, sessionHandle: unknown, objectHandle: unknown): number {
  const session = state.session(sessionHandle);
  const object = state.object(session, objectHandle);
  let size = 0;
  for (const value of object.attrs.values()) size += 16 + value.length;
  return size;
}

/**
 * §5.7.5 C_GetAttributeValue. pkcs11js makes this call twice and throws on any non-OK result,
 * so one sensitive or invalid attribute fails the whole call with that CKR, as with a real module.
 */
export function getAttributeValue(state: ModuleState, sessionHandle: unknown, objectHandle: unknown, template: unknown): AttributeResult[] {
  const session = state.session(sessionHandle);
  const object = state.object(session, objectHandle);
  if (!Array.isArray(template)) throw new CkrError(P.CKR_ARGUMENTS_BAD, "template must be an array");
  let failure: CkrError | undefined;
  const results: AttributeResult[] = [];
  for (const entry of template as unknown[]) {
    const type = (entry as { type?: unknown } | null)?.type;
    if (typeof type !== "number") throw new CkrError(P.CKR_ARGUMENTS_BAD, "template entries must have a numeric type");
    try {
      results.push({ type, value: readAttribute(object, type) });
    } catch (error) {
      if (!(error instanceof CkrError)) throw error;
      failure ??= error;
    }
  }
  if (failure !== undefined) throw failure;
  return results;
}

/** §5.7.6 */
export function setAttributeValue(state: ModuleState, sessionHandle: unknown, objectHandle: unknown, template: unknown): void {
  const session = state.session(sessionHandle);
  const object = state.object(session, objectHandle);
  checkWrite(session.viewer, object);
  if (!object.flag(P.CKA_MODIFIABLE)) throw new CkrError(CKR_ACTION_PROHIBITED, "object is not modifiable");
  const token = session.slot.token!;
  const next = applyChanges(object, decodeCallerTemplate(template), { copy: false, isSO: token.login === "so" });
  const previous = new Map(object.attrs);
  object.attrs.clear();
  for (const [type, value] of next) object.attrs.set(type, value);
  if (object.isToken) {
    try {
      state.persistence.objectSaved(token, object);
    } catch (error) {
      object.attrs.clear();
      for (const [type, value] of previous) object.attrs.set(type, value);
      throw error;
    }
  }
}

interface FindOperation extends ActiveOperation {
  results: number[];
}

/** §5.7.7 */
export function findObjectsInit(state: ModuleState, sessionHandle: unknown, template: unknown): void {
  const session = state.session(sessionHandle);
  const wanted = decodeCallerTemplate(template ?? []);
  const results = state.visibleObjects(session).filter((o) => matches(o, wanted)).map((o) => o.handle).sort((a, b) => a - b);
  session.begin<FindOperation>("find", { results });
}

/** §5.7.8: up to `max` handles; pkcs11js without `max` asks for one and returns it or null. */
export function findObjects(state: ModuleState, sessionHandle: unknown, max?: unknown): Handle[] {
  const session = state.session(sessionHandle);
  const operation = session.active<FindOperation>("find");
  const count = max === undefined ? 1 : numberArg(max, "maxObjectCount");
  if (count === 0) throw new CkrError(P.CKR_ARGUMENTS_BAD, "maxObjectCount must be at least 1");
  return operation.results.splice(0, count).map(toHandle);
}

/** §5.7.9 */
export function findObjectsFinal(state: ModuleState, sessionHandle: unknown): void {
  const session = state.session(sessionHandle);
  session.active("find");
  session.end("find");
}
