/**
 * Find objects: C_FindObjectsInit on a CKA_LABEL template, C_FindObjects (up to 16), and
 * C_FindObjectsFinal, among 16 session data objects of this thread's session (plus whatever the
 * token holds). PKCS#11 targets only.
 */
import type { Operation } from "../types.js";
import { P, unsupportedOn } from "./common.js";

const OBJECTS = 16;

export const find: Operation = {
  mech: "find", description: "C_FindObjects by label among 16 session objects", ops: ["find"], sized: false, fixedBytes: 0,
  defaultKeyBits: 0, keyBits: [0],
  prepare(ctx) {
    if (ctx.kind !== "pkcs11") unsupportedOn(ctx, "object search");
    const { p11, session } = ctx;
    const label = `hsmkit-bench-find-${process.pid}-${Math.random().toString(36).slice(2)}`;
    for (let i = 0; i < OBJECTS; i++) {
      p11.C_CreateObject(session, [
        { type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: false },
        { type: P.CKA_LABEL, value: i === 0 ? label : `${label}-${i}` }, { type: P.CKA_VALUE, value: Buffer.from([i]) },
      ]);
    }
    const template = [{ type: P.CKA_LABEL, value: label }];
    return {
      run() {
        p11.C_FindObjectsInit(session, template);
        try {
          if (p11.C_FindObjects(session, OBJECTS).length !== 1) throw new Error("find objects: expected exactly one match");
        } finally {
          p11.C_FindObjectsFinal(session);
        }
      },
    };
  },
};
