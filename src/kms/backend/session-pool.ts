/**
 * The backend's logged-in sessions on one token.
 *
 * PKCS#11 rules this follows (v2.40 base specification §5.6, §4.4, and SoftHSMv2's behaviour):
 * - a session runs one operation at a time (CKR_OPERATION_ACTIVE otherwise), so an operation takes a
 *   session from the pool for its duration and gives it back;
 * - login state belongs to the application (the process), not to a session: one C_Login logs every
 *   session of the process in, and CKR_USER_ALREADY_LOGGED_IN means another backend of the process
 *   did it already. The pool never calls C_Logout or C_CloseAllSessions — either would pull the rug
 *   from other backends (or threads) sharing the token; closing a process's last session logs out;
 * - a session object (an unwrapped CMK version) lives as long as the session that created it and is
 *   usable from every session of the process.
 *
 * Hence two kinds of session. The *owner* session creates and destroys the session objects and runs
 * nothing else, so it never holds an operation half-done and is never replaced while the backend is
 * healthy; closing it would destroy every unwrapped key. *Worker* sessions run the cryptographic
 * operations; one that misbehaves is simply closed and replaced, losing nothing.
 *
 * The backend is synchronous, so within one thread operations never overlap and one worker is in use
 * at a time; `size` bounds the workers for when operations overlap (callbacks, re-entrancy) and the
 * rules above keep the pool correct if backends in several worker threads share the token.
 */
import type { Buffer } from "node:buffer";
import { graphene, pkcs11, ckrOf, type PKCS11, type Session, type Slot } from "./pkcs11.js";

const FLAGS = graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION;

export interface SessionPoolStats {
  /** Sessions open now, the owner included. */
  open: number;
  /** Worker sessions waiting for an operation. */
  idle: number;
  /** The bound on worker sessions. */
  size: number;
}

export class SessionPool {
  private ownerSession: Session | undefined;
  private readonly idle: Session[] = [];
  private busy = 0;

  /**
   * Opens the owner session and logs the user in. Throws the token's error (e.g. CKR_PIN_INCORRECT)
   * unchanged, with nothing left open (or, if the token failed to close it, left to `unclosed`).
   */
  constructor(private readonly slot: Slot, pin: string, readonly size: number, private readonly unclosed = new UnclosedSessions()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`session pool size must be an integer ≥ 1, got ${size}`);
    const owner = openSession(slot, unclosed);
    try {
      owner.login(pin, graphene.UserType.USER);
    } catch (error) {
      if (ckrOf(error)?.rv !== pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
        unclosed.close(owner);
        throw error;
      }
    }
    this.ownerSession = owner;
  }

  /** The session that owns the session objects. */
  get owner(): Session {
    if (this.ownerSession === undefined) throw new Error("session pool is closed");
    return this.ownerSession;
  }

  /**
   * Runs `operation` on a worker session, opening one if none is idle. A session whose operation
   * failed in a way that may leave it unusable (`isBroken`) is closed instead of returned.
   */
  run<T>(operation: (session: Session) => T, isBroken: (error: unknown) => boolean): T {
    const session = this.take();
    let healthy = true;
    try {
      return operation(session);
    } catch (error) {
      healthy = !isBroken(error);
      throw error;
    } finally {
      this.give(session, healthy);
    }
  }

  /**
   * The closure-free form of run() for the hot paths: take() a worker session, and give() it back
   * exactly once — healthy, or not (then it is closed). An idle session is reused as it is.
   */
  take(): Session {
    if (this.ownerSession === undefined) throw new Error("session pool is closed");
    // Sessions whose close failed get their next try with the next operation (a length check when there are none).
    this.unclosed.retry();
    let session = this.idle.pop();
    if (session === undefined) {
      if (this.busy >= this.size) throw new Error(`all ${this.size} sessions are busy`);
      session = openSession(this.slot, this.unclosed);
    }
    this.busy++;
    return session;
  }

  /** Returns a session that take() gave out; a broken one, or any after close(), is closed. */
  give(session: Session, healthy: boolean): void {
    this.busy--;
    if (healthy && this.ownerSession !== undefined) {
      this.idle.push(session);
    } else {
      this.unclosed.close(session);
    }
  }

  /**
   * Closes every session, the owner's last (its session objects go with it), after trying again
   * the ones whose close failed before (see UnclosedSessions). Idempotent; never throws.
   */
  close(): void {
    this.unclosed.retry();
    for (const session of this.idle.splice(0)) this.unclosed.close(session);
    if (this.ownerSession !== undefined) this.unclosed.close(this.ownerSession);
    this.ownerSession = undefined;
  }

  stats(): SessionPoolStats {
    return { open: (this.ownerSession === undefined ? 0 : 1) + this.idle.length + this.busy, idle: this.idle.length, size: this.size };
  }
}

/**
 * C_OpenSession, as graphene's Slot.open makes it, but closing the session again when graphene's
 * Session constructor fails in the C_GetSessionInfo it makes after it: Slot.open would throw with
 * the session open and its handle lost, one session more in the token for every such failure.
 */
function openSession(slot: Slot, unclosed: UnclosedSessions): Session {
  const lib = slot.lib;
  const handle = lib.C_OpenSession(slot.handle, FLAGS);
  try {
    return new graphene.Session(handle, slot, lib);
  } catch (error) {
    unclosed.close({ lib, handle });
    throw error;
  }
}

/**
 * C_CloseSession's answers that say the session is closed already: by the token (it dropped its
 * sessions, or was removed), or by a C_Finalize.
 */
const GONE = new Set<number>([
  pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT,
  pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED,
]);

/**
 * Sessions whose C_CloseSession failed with the session possibly still open (CKR_DEVICE_ERROR,
 * CKR_FUNCTION_FAILED…), kept to be closed again later. Forgetting one would leave it open for the
 * life of the process, with whatever objects it made: for the owner session, every cached version
 * the backend has just stopped counting; and on a token that fails now and then, one session
 * more each time, up to CKR_SESSION_COUNT. Shared by a backend's successive pools, since the pool a
 * failed close belonged to is being dropped. A session leaves the list when C_CloseSession succeeds
 * or answers that it is gone (GONE), or after MAX_CLOSE_TRIES: one the token never closes would
 * otherwise cost a call on every operation.
 */
export class UnclosedSessions {
  private readonly sessions: Array<{ session: SessionHandle; tries: number }> = [];

  /** C_CloseSession; kept for retry() if it failed with the session maybe still open. Never throws. */
  close(session: SessionHandle): void {
    this.attempt(session, 1);
  }

  /** Tries each kept session once more. Never throws. */
  retry(): void {
    if (this.sessions.length === 0) return;
    for (const { session, tries } of this.sessions.splice(0)) this.attempt(session, tries + 1);
  }

  private attempt(session: SessionHandle, tries: number): void {
    if (!closed(session) && tries < MAX_CLOSE_TRIES) this.sessions.push({ session, tries });
  }
}

/** Tries at closing a session before it is given up (see UnclosedSessions). */
const MAX_CLOSE_TRIES = 16;

/** What closing a session takes (a graphene Session is one). */
interface SessionHandle {
  readonly lib: PKCS11;
  readonly handle: Buffer;
}

/** C_CloseSession; true when the session is closed now (by this call, or before it). */
function closed(session: SessionHandle): boolean {
  try {
    session.lib.C_CloseSession(session.handle);
    return true;
  } catch (error) {
    const failure = ckrOf(error);
    return failure !== undefined && GONE.has(failure.rv);
  }
}
