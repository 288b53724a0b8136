/**
 * Who may read and write which objects: PKCS#11 v2.40 §5.8 "Session states" and §6.7.x, the
 * table SoftHSMv2 keeps in src/lib/access.cpp.
 *
 *   session state  | public session obj | private session obj | public token obj | private token obj
 *   ---------------+--------------------+---------------------+------------------+------------------
 *   R/O public     | read/write         | none                | read             | none
 *   R/O user       | read/write         | read/write          | read             | read
 *   R/W public     | read/write         | none                | read/write       | none
 *   R/W user       | read/write         | read/write          | read/write       | read/write
 *   R/W SO         | read/write         | none                | read/write       | none
 *
 * Refusals: a private object without a user login is CKR_USER_NOT_LOGGED_IN for writes and simply
 * invisible (CKR_OBJECT_HANDLE_INVALID, absent from searches) for reads; writing a token object
 * from a read-only session is CKR_SESSION_READ_ONLY.
 */
import { CkrError } from "../errors.js";
import { pkcs11 } from "../pkcs11.js";
import type { LoginState } from "../token.js";

export interface Viewer {
  rw: boolean;
  login: LoginState;
}

export function canSee(viewer: Viewer, object: { isPrivate: boolean }): boolean {
  return !object.isPrivate || viewer.login === "user";
}

/** Throws the CKR the table gives for writing (create, modify, destroy) such an object. */
export function checkWrite(viewer: Viewer, object: { isToken: boolean; isPrivate: boolean }): void {
  if (object.isPrivate && viewer.login !== "user") throw new CkrError(pkcs11.CKR_USER_NOT_LOGGED_IN, "private object needs a user login");
  if (object.isToken && !viewer.rw) throw new CkrError(pkcs11.CKR_SESSION_READ_ONLY, "token object needs a read/write session");
}
