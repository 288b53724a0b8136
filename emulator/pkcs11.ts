/**
 * pkcs11js, loaded for its constants (CKA_/CKM_/CKR_/CKF_… — never retyped here) and its
 * Pkcs11Error class, which graphene checks with instanceof. pkcs11js is CommonJS whose exports
 * are spread from its native module, so ES named imports cannot see them; require it instead.
 */
import { createRequire } from "node:module";
import type * as Pkcs11Types from "pkcs11js";

const require = createRequire(import.meta.url);

/** The pkcs11js module: constants, PKCS11, Pkcs11Error. */
export const pkcs11 = require("pkcs11js") as typeof Pkcs11Types;

export type Handle = Pkcs11Types.Handle;
export type Template = Pkcs11Types.Template;
export type Attribute = Pkcs11Types.Attribute;
export type AttributeResult = Pkcs11Types.AttributeResult;
export type Mechanism = Pkcs11Types.Mechanism;
export type ModuleInfo = Pkcs11Types.ModuleInfo;
export type SlotInfo = Pkcs11Types.SlotInfo;
export type TokenInfo = Pkcs11Types.TokenInfo;
export type MechanismInfo = Pkcs11Types.MechanismInfo;
export type SessionInfo = Pkcs11Types.SessionInfo;
export type KeyPair = Pkcs11Types.KeyPair;
export type InitializationOptions = Pkcs11Types.InitializationOptions;
export type PKCS11 = Pkcs11Types.PKCS11;

/**
 * A constant pkcs11js exports at run time but its typings omit (e.g. CKF_TOKEN_PRESENT).
 * Throws at load if pkcs11js does not have it, so a missing value can never become undefined.
 */
export function untypedConstant(name: string): number {
  const value = (pkcs11 as unknown as Record<string, unknown>)[name];
  if (typeof value !== "number") throw new Error(`pkcs11js has no constant ${name}`);
  return value;
}

/** Looks a constant's name up by value within one family ("CKR_", "CKM_", "CKA_"). */
export function constantName(prefix: string, value: number): string {
  let table = names.get(prefix);
  if (table === undefined) {
    table = new Map();
    for (const [name, v] of Object.entries(pkcs11)) {
      if (name.startsWith(prefix) && typeof v === "number" && !table.has(v)) table.set(v, name);
    }
    names.set(prefix, table);
  }
  return table.get(value) ?? `${prefix}0x${value.toString(16).padStart(8, "0")}`;
}
const names = new Map<string, Map<number, string>>();
