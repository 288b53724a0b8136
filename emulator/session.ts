/**
 * Sessions: read-only or read/write, with at most one active operation at a time — a search, an
 * encryption, a digest… — and CKR_OPERATION_ACTIVE for another C_*Init meanwhile. PKCS#11 v2.40
 * §5.1 (CKR_OPERATION_ACTIVE) gives an active search blocking C_EncryptInit as its example, and
 * concurrent cryptographic operations are for tokens that set CKF_DUAL_CRYPTO_OPERATIONS and offer
 * the dual-function calls, which this token does not (SoftHSMv2 behaves the same).
 */
import {
  CKS_RO_PUBLIC_SESSION, CKS_RO_USER_FUNCTIONS, CKS_RW_PUBLIC_SESSION, CKS_RW_SO_FUNCTIONS, CKS_RW_USER_FUNCTIONS,
} from "./extra-constants.js";
import { CkrError } from "./errors.js";
import { pkcs11 } from "./pkcs11.js";
import type { Slot } from "./slot.js";
import type { Viewer } from "./objects/access.js";
import type { P11Object } from "./objects/object.js";
import type { LoginState } from "./token.js";

export type OperationKind = "encrypt" | "decrypt" | "digest" | "sign" | "verify" | "find";

/** A multi-part operation in progress. `abort` releases what it holds. */
export interface ActiveOperation {
  abort?(): void;
}

export class Session implements Viewer {
  /**
   * The active operation and its kind. One slot, not a map: begin() refuses a second operation of
   * any kind, so there is never more than one (and this is read on every C_ call of an operation).
   */
  private kind: OperationKind | undefined;
  private operation: ActiveOperation | undefined;
  /** The object whose key the operation uses, held until the operation ends (P11Object.use). */
  private key: P11Object | undefined;
  /**
   * The operation's key has CKA_ALWAYS_AUTHENTICATE and the PIN has not yet been given again
   * (C_Login with CKU_CONTEXT_SPECIFIC). v2.40 §4.9: such a key needs the PIN "for each use (sign
   * or decrypt)"; until then the operation's calls fail with CKR_USER_NOT_LOGGED_IN and end it,
   * as on SoftHSMv2 (SoftHSM.cpp AsymSignInit / AsymDecryptInit and their steps).
   */
  private awaitingLogin = false;

  constructor(
    readonly handle: number,
    readonly slot: Slot,
    readonly rw: boolean,
  ) {}

  /** The login state of the session's token (the session is its own Viewer: no object per access check). */
  get login(): LoginState {
    return this.slot.token!.login;
  }

  get viewer(): Viewer {
    return this;
  }

  /** CK_STATE (§5.6). */
  get state(): number {
    const login = this.slot.token?.login ?? "public";
    if (login === "so") return CKS_RW_SO_FUNCTIONS;
    if (login === "user") return this.rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    return this.rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
  }

  begin<T extends ActiveOperation>(kind: OperationKind, operation: T, key?: P11Object): T {
    if (this.kind !== undefined) {
      operation.abort?.();
      throw new CkrError(pkcs11.CKR_OPERATION_ACTIVE, `a ${this.kind} operation is already active`);
    }
    this.kind = kind;
    this.operation = operation;
    if (key !== undefined) {
      key.use();
      this.key = key;
      this.awaitingLogin = (kind === "sign" || kind === "decrypt") && key.flag(pkcs11.CKA_ALWAYS_AUTHENTICATE);
    }
    return operation;
  }

  /**
   * The active operation of this kind; CKR_OPERATION_NOT_INITIALIZED if none, and
   * CKR_USER_NOT_LOGGED_IN (ending it) while its key awaits the context-specific login.
   */
  active<T extends ActiveOperation>(kind: OperationKind): T {
    if (this.kind !== kind) throw new CkrError(pkcs11.CKR_OPERATION_NOT_INITIALIZED, `no ${kind} operation`);
    if (this.awaitingLogin) {
      this.end(kind);
      throw new CkrError(pkcs11.CKR_USER_NOT_LOGGED_IN, "the key has CKA_ALWAYS_AUTHENTICATE: C_Login with CKU_CONTEXT_SPECIFIC first");
    }
    return this.operation as T;
  }

  /** Whether the active operation waits for C_Login with CKU_CONTEXT_SPECIFIC. */
  get awaitsContextLogin(): boolean {
    return this.awaitingLogin;
  }

  /** The PIN was given again for the active operation (C_Login with CKU_CONTEXT_SPECIFIC). */
  contextLoggedIn(): void {
    this.awaitingLogin = false;
  }

  end(kind: OperationKind): void {
    if (this.kind !== kind) return;
    const operation = this.operation;
    const key = this.key;
    this.kind = undefined;
    this.operation = undefined;
    this.key = undefined;
    this.awaitingLogin = false;
    try {
      operation?.abort?.();
    } finally {
      key?.unuse();
    }
  }

  endAll(): void {
    if (this.kind !== undefined) this.end(this.kind);
  }
}
