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
import { graphene, pkcs11, ckrOf, type Session, type Slot } from "./pkcs11.js";

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
   * unchanged, with nothing left open.
   */
  constructor(private readonly slot: Slot, pin: string, readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`session pool size must be an integer ≥ 1, got ${size}`);
    const owner = slot.open(FLAGS);
    try {
      owner.login(pin, graphene.UserType.USER);
    } catch (error) {
      if (ckrOf(error)?.rv !== pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
        closeQuietly(owner);
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
    let session = this.idle.pop();
    if (session === undefined) {
      if (this.busy >= this.size) throw new Error(`all ${this.size} sessions are busy`);
      session = this.slot.open(FLAGS);
    }
    this.busy++;
    return session;
  }

  /** Returns a session that take() gave out; a broken one, or any after close(), is closed. */
  give(session: Session, healthy: boolean): void {
    this.busy--;
    if (healthy && this.ownerSession !== undefined) this.idle.push(session);
    else closeQuietly(session);
  }

  /** Closes every session, the owner's last (its session objects go with it). Idempotent; never throws. */
  close(): void {
    for (const session of this.idle.splice(0)) closeQuietly(session);
    if (this.ownerSession !== undefined) closeQuietly(this.ownerSession);
    this.ownerSession = undefined;
  }

  stats(): SessionPoolStats {
    return { open: (this.ownerSession === undefined ? 0 : 1) + this.idle.length + this.busy, idle: this.idle.length, size: this.size };
  }
}

/** C_CloseSession, ignoring failure: the session may already be gone (device removed, sessions dropped). */
function closeQuietly(session: Session): void {
  try {
    session.close();
  } catch {
    // Nothing to release.
  }
}
