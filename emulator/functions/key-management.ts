/**
 * Key management, PKCS#11 v2.40 §5.14: C_GenerateKey, C_GenerateKeyPair, C_WrapKey,
 * C_UnwrapKey, C_DeriveKey — with the wrapping rules of §4.10 and SoftHSMv2: the wrapped key must
 * be extractable; a key with CKA_WRAP_WITH_TRUSTED only under a CKA_TRUSTED wrapping key; the
 * wrapping key's CKA_WRAP_TEMPLATE must match the wrapped key; every attribute of the
 * unwrapping key's CKA_UNWRAP_TEMPLATE must appear, identical, in the caller's template.
 */
import { CkrError } from "../errors.js";
import { toHandle } from "../handles.js";
import { decodeCallerTemplate, decodeTemplate, FALSE, readBool, TRUE } from "../objects/attributes.js";
import { settleCheckValue } from "../objects/check-value.js";
import { buildAttributes, matches, type Origin } from "../objects/object.js";
import type { NewKey } from "../mechanisms/mechanism.js";
import { pkcs11, type Handle, type KeyPair } from "../pkcs11.js";
import type { ModuleState } from "../state.js";
import { bufferArg, checkOutput, deliver } from "./common.js";
import { addObject } from "./object.js";
import { checkKeyUse, mechanismArg } from "./mechanism-use.js";

const P = pkcs11;

/**
 * The attributes of a key an operation made (`build` checks the template), with the secret key's
 * CKA_CHECK_VALUE settled; the key material is destroyed if either step refuses.
 */
function newKeyAttributes(created: NewKey, origin: Origin, build: () => Map<number, Buffer>): Map<number, Buffer> {
  try {
    const attrs = build();
    if (created.material.kind === "secret") settleCheckValue(attrs, created.material.key, origin);
    return attrs;
  } catch (error) {
    if (created.material.kind === "secret") created.material.key.destroy();
    throw error;
  }
}

/** §5.14.1 */
export function generateKey(state: ModuleState, sessionHandle: unknown, mechanismValue: unknown, template: unknown): Handle {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, "generateKey");
  const caller = decodeCallerTemplate(template);
  const created = family.generateKey!(caller, mechanism);
  const isSO = session.slot.token!.login === "so";
  const attrs = newKeyAttributes(created, "generate", () => buildAttributes(caller, { origin: "generate", isSO, fixed: created.fixed }));
  return toHandle(addObject(state, session, attrs, created.material).handle);
}

/** §5.14.2 */
export function generateKeyPair(state: ModuleState, sessionHandle: unknown, mechanismValue: unknown, publicTemplate: unknown, privateTemplate: unknown): KeyPair {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, "generateKeyPair");
  const publicCaller = decodeCallerTemplate(publicTemplate);
  const privateCaller = decodeCallerTemplate(privateTemplate);
  const pair = family.generateKeyPair!(publicCaller, privateCaller, mechanism);
  const isSO = session.slot.token!.login === "so";
  const publicAttrs = buildAttributes(publicCaller, { origin: "generate", isSO, fixed: pair.publicKey.fixed });
  const privateAttrs = buildAttributes(privateCaller, { origin: "generate", isSO, fixed: pair.privateKey.fixed });
  const publicKey = addObject(state, session, publicAttrs, pair.publicKey.material);
  try {
    const privateKey = addObject(state, session, privateAttrs, pair.privateKey.material);
    return { publicKey: toHandle(publicKey.handle), privateKey: toHandle(privateKey.handle) };
  } catch (error) {
    (publicKey.isToken ? session.slot.token!.objects : state.sessionObjects).delete(publicKey.handle);
    if (publicKey.isToken) state.persistence.objectDeleted(session.slot.token!, publicKey.handle);
    throw error;
  }
}

/** §5.14.3 */
export function wrapKey(state: ModuleState, sessionHandle: unknown, mechanismValue: unknown, wrappingHandle: unknown, keyHandle: unknown, out: unknown): Buffer {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, "wrap");
  const wrappingKey = state.key(session, wrappingHandle, P.CKR_WRAPPING_KEY_HANDLE_INVALID);
  const key = state.key(session, keyHandle);
  try {
    checkKeyUse(wrappingKey, family, mechanism, P.CKA_WRAP);
  } catch (error) {
    if (error instanceof CkrError && error.rv === P.CKR_KEY_TYPE_INCONSISTENT) throw new CkrError(P.CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
    throw error;
  }
  if (!key.flag(P.CKA_EXTRACTABLE)) throw new CkrError(P.CKR_KEY_UNEXTRACTABLE);
  if (key.flag(P.CKA_WRAP_WITH_TRUSTED) && !wrappingKey.flag(P.CKA_TRUSTED)) throw new CkrError(P.CKR_KEY_NOT_WRAPPABLE, "key may only be wrapped by a trusted key");
  const wrapTemplate = wrappingKey.attrs.get(P.CKA_WRAP_TEMPLATE);
  if (wrapTemplate !== undefined && wrapTemplate.length > 0 && !matches(key, decodeTemplate(wrapTemplate, P.CKA_WRAP_TEMPLATE))) {
    throw new CkrError(P.CKR_KEY_NOT_WRAPPABLE, "key does not match the wrapping key's CKA_WRAP_TEMPLATE");
  }
  const target = bufferArg(out, "output");
  const wrapped = family.wrap!(wrappingKey, key, mechanism);
  checkOutput(target, wrapped.length);
  return deliver(target, wrapped);
}

/** §5.14.4 */
export function unwrapKey(state: ModuleState, sessionHandle: unknown, mechanismValue: unknown, unwrappingHandle: unknown, wrapped: unknown, template: unknown): Handle {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, "unwrap");
  const unwrappingKey = state.key(session, unwrappingHandle, P.CKR_UNWRAPPING_KEY_HANDLE_INVALID);
  try {
    checkKeyUse(unwrappingKey, family, mechanism, P.CKA_UNWRAP);
  } catch (error) {
    if (error instanceof CkrError && error.rv === P.CKR_KEY_TYPE_INCONSISTENT) throw new CkrError(P.CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
    throw error;
  }
  const caller = decodeCallerTemplate(template);
  const unwrapTemplate = unwrappingKey.attrs.get(P.CKA_UNWRAP_TEMPLATE);
  if (unwrapTemplate !== undefined && unwrapTemplate.length > 0) {
    for (const [type, value] of decodeTemplate(unwrapTemplate, P.CKA_UNWRAP_TEMPLATE)) {
      const given = caller.get(type);
      if (given === undefined || !given.equals(value)) throw new CkrError(P.CKR_TEMPLATE_INCONSISTENT, "template does not satisfy CKA_UNWRAP_TEMPLATE");
    }
  }
  const created = family.unwrap!(unwrappingKey, bufferArg(wrapped, "wrapped key"), caller, mechanism);
  const isSO = session.slot.token!.login === "so";
  const attrs = newKeyAttributes(created, "unwrap", () => buildAttributes(caller, { origin: "unwrap", isSO, fixed: created.fixed }));
  return toHandle(addObject(state, session, attrs, created.material).handle);
}

/** §5.14.5 */
export function deriveKey(state: ModuleState, sessionHandle: unknown, mechanismValue: unknown, baseHandle: unknown, template: unknown): Handle {
  const session = state.session(sessionHandle);
  const { mechanism, family } = mechanismArg(mechanismValue, "derive");
  const baseKey = state.key(session, baseHandle);
  checkKeyUse(baseKey, family, mechanism, P.CKA_DERIVE);
  const caller = decodeCallerTemplate(template);
  const created = family.derive!(baseKey, caller, mechanism);
  const isSO = session.slot.token!.login === "so";
  const attrs = newKeyAttributes(created, "derive", () => buildAttributes(caller, { origin: "derive", isSO, fixed: created.fixed }));
  // §4.10: a derived key is always-sensitive / never-extractable only if its base key was too.
  if (attrs.has(P.CKA_ALWAYS_SENSITIVE)) {
    const always = baseKey.flag(P.CKA_ALWAYS_SENSITIVE) && readBool(attrs.get(P.CKA_SENSITIVE));
    const never = baseKey.flag(P.CKA_NEVER_EXTRACTABLE) && !readBool(attrs.get(P.CKA_EXTRACTABLE));
    attrs.set(P.CKA_ALWAYS_SENSITIVE, always ? TRUE : FALSE);
    attrs.set(P.CKA_NEVER_EXTRACTABLE, never ? TRUE : FALSE);
  }
  return toHandle(addObject(state, session, attrs, created.material).handle);
}
