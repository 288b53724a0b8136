/**
 * The module's state between C_Initialize and C_Finalize: slots with their tokens, sessions,
 * session objects, and the lookups every function starts with. Lookups throw the CKR the
 * specification gives for each failure, so function bodies read as the spec's happy path.
 */
import { CkrError } from "./errors.js";
import { fromHandle, toHandle } from "./handles.js";
import { canSee } from "./objects/access.js";
import type { ObjectMaterial, P11Object } from "./objects/object.js";
import { pkcs11 } from "./pkcs11.js";
import { Session } from "./session.js";
import type { Slot } from "./slot.js";
import type { Token } from "./token.js";

const P = pkcs11;

/**
 * Where token state goes when it changes. In memory by default; emulator/store supplies the
 * token-directory implementation. Each call is made after the change is complete, before the
 * function returns, so an acknowledged change is a persisted one.
 */
export interface Persistence {
  tokenInitialized(token: Token): void;
  tokenChanged(token: Token): void;
  /** A login made the token key available: private objects may now be loaded. */
  loggedIn(token: Token): void;
  objectSaved(token: Token, object: P11Object): void;
  objectDeleted(token: Token, handle: number): void;
}

export const IN_MEMORY: Persistence = {
  tokenInitialized() {},
  tokenChanged() {},
  loggedIn() {},
  objectSaved() {},
  objectDeleted() {},
};

export class ModuleState {
  persistence: Persistence = IN_MEMORY;
  /** C_CreateObject for public and private keys, supplied by the asymmetric mechanism families. */
  asymmetricImport?: (attrs: Map<number, Buffer>) => ObjectMaterial;
  /** Slots whose token was removed or inserted, for C_WaitForSlotEvent. */
  readonly slotEvents: number[] = [];
  initialized = false;
  readonly sessions = new Map<number, Session>();
  /** Session objects of every session of this application, by handle. */
  readonly sessionObjects = new Map<number, P11Object>();
  private nextSession = 1;
  private nextObject = 1;

  constructor(readonly slots: Slot[]) {}

  takeSlotEvent(): Buffer | null {
    const id = this.slotEvents.shift();
    return id === undefined ? null : toHandle(id);
  }

  checkInitialized(): void {
    if (!this.initialized) throw new CkrError(P.CKR_CRYPTOKI_NOT_INITIALIZED);
  }

  slot(handle: unknown): Slot {
    this.checkInitialized();
    const id = fromHandle(handle, P.CKR_SLOT_ID_INVALID);
    const slot = this.slots.find((s) => s.id === id);
    if (slot === undefined) throw new CkrError(P.CKR_SLOT_ID_INVALID);
    return slot;
  }

  /** The slot's token; CKR_TOKEN_NOT_PRESENT when it was removed. */
  token(slot: Slot): Token {
    if (slot.token === null) throw new CkrError(P.CKR_TOKEN_NOT_PRESENT);
    return slot.token;
  }

  session(handle: unknown): Session {
    this.checkInitialized();
    const id = fromHandle(handle, P.CKR_SESSION_HANDLE_INVALID);
    const session = this.sessions.get(id);
    if (session === undefined) throw new CkrError(P.CKR_SESSION_HANDLE_INVALID);
    if (session.slot.token === null) throw new CkrError(P.CKR_DEVICE_REMOVED);
    return session;
  }

  openSession(slot: Slot, rw: boolean): Session {
    const session = new Session(this.nextSession++, slot, rw);
    this.sessions.set(session.handle, session);
    return session;
  }

  closeSession(session: Session): void {
    session.endAll();
    this.sessions.delete(session.handle);
    for (const [handle, object] of this.sessionObjects) {
      if (object.session === session.handle) {
        object.destroy();
        this.sessionObjects.delete(handle);
      }
    }
    const token = session.slot.token;
    if (token !== null && ![...this.sessions.values()].some((s) => s.slot === session.slot)) {
      // §5.6: when the last session of a token closes, the application is logged out.
      this.logout(token);
    }
  }

  sessionsOf(slot: Slot): Session[] {
    return [...this.sessions.values()].filter((s) => s.slot === slot);
  }

  newObjectHandle(): number {
    return this.nextObject++;
  }

  /** Handles up to `highest` are taken (by stored token objects, emulator/store): new objects get higher ones. */
  reserveObjectHandles(highest: number): void {
    if (this.nextObject <= highest) this.nextObject = highest + 1;
  }

  /** An object the session can see; CKR_OBJECT_HANDLE_INVALID otherwise (also for private ones it may not see). */
  object(session: Session, handle: unknown): P11Object {
    const id = fromHandle(handle, P.CKR_OBJECT_HANDLE_INVALID);
    const token = session.slot.token!;
    const object = token.objects.get(id) ?? this.sessionObjects.get(id);
    if (object === undefined || (object.session === undefined && !token.objects.has(id))) {
      throw new CkrError(P.CKR_OBJECT_HANDLE_INVALID);
    }
    if (object.session !== undefined && this.sessions.get(object.session)?.slot !== session.slot) {
      throw new CkrError(P.CKR_OBJECT_HANDLE_INVALID);
    }
    if (!canSee(session.viewer, object)) throw new CkrError(P.CKR_OBJECT_HANDLE_INVALID);
    return object;
  }

  /** A key argument: as object(), but a bad handle is CKR_KEY_HANDLE_INVALID (and `invalid` if given). */
  key(session: Session, handle: unknown, invalid: number = P.CKR_KEY_HANDLE_INVALID): P11Object {
    try {
      return this.object(session, handle);
    } catch (error) {
      if (error instanceof CkrError && error.rv === P.CKR_OBJECT_HANDLE_INVALID) throw new CkrError(invalid);
      throw error;
    }
  }

  /** Every object visible to the session: its token's and its slot's session objects. */
  visibleObjects(session: Session): P11Object[] {
    const token = session.slot.token!;
    const all = [...token.objects.values()];
    for (const object of this.sessionObjects.values()) {
      if (this.sessions.get(object.session!)?.slot === session.slot) all.push(object);
    }
    return all.filter((object) => canSee(session.viewer, object));
  }

  /** C_Logout semantics: private session objects go, and so does the login. */
  logout(token: Token): void {
    for (const [handle, object] of this.sessionObjects) {
      if (object.isPrivate && this.sessions.get(object.session!)?.slot.token === token) {
        object.destroy();
        this.sessionObjects.delete(handle);
      }
    }
    token.login = "public";
  }
}
