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

export type OperationKind = "encrypt" | "decrypt" | "digest" | "sign" | "verify" | "find";

/** A multi-part operation in progress. `abort` releases what it holds. */
export interface ActiveOperation {
  abort?(): void;
}

export class Session {
  private readonly operations = new Map<OperationKind, ActiveOperation>();

  constructor(
    readonly handle: number,
    readonly slot: Slot,
    readonly rw: boolean,
  ) {}

  get viewer(): Viewer {
    return { rw: this.rw, login: this.slot.token!.login };
  }

  /** CK_STATE (§5.6). */
  get state(): number {
    const login = this.slot.token?.login ?? "public";
    if (login === "so") return CKS_RW_SO_FUNCTIONS;
    if (login === "user") return this.rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    return this.rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
  }

  begin<T extends ActiveOperation>(kind: OperationKind, operation: T): T {
    if (this.operations.size > 0) {
      operation.abort?.();
      throw new CkrError(pkcs11.CKR_OPERATION_ACTIVE, `a ${[...this.operations.keys()].join(", ")} operation is already active`);
    }
    this.operations.set(kind, operation);
    return operation;
  }

  /** The active operation of this kind; CKR_OPERATION_NOT_INITIALIZED if none. */
  active<T extends ActiveOperation>(kind: OperationKind): T {
    const operation = this.operations.get(kind);
    if (operation === undefined) throw new CkrError(pkcs11.CKR_OPERATION_NOT_INITIALIZED, `no ${kind} operation`);
    return operation as T;
  }

  end(kind: OperationKind): void {
    const operation = this.operations.get(kind);
    this.operations.delete(kind);
    operation?.abort?.();
  }

  endAll(): void {
    for (const kind of [...this.operations.keys()]) this.end(kind);
  }
}
