/**
 * The shapes shared by the bench trial table, the operations (src/bench/ops/*.ts), the targets and
 * the runner.
 */
import type { Handle, PKCS11 } from "../../emulator/pkcs11.js";

/** Where the operations run. `pkcs11` covers the emulator and any module loaded by path. */
export type TargetContext =
  | { kind: "native" }
  | { kind: "node-crypto" }
  | { kind: "pkcs11"; p11: PKCS11; session: Handle; mechanisms: ReadonlySet<number> };

/** One operation ready to time: `run` is timed; `cleanup`, if any, runs after it untimed. */
export interface Prepared {
  run(): void;
  cleanup?: () => void;
}

/** What a trial asks an operation to prepare. */
export interface TrialSpec {
  /** Mechanism family name from --mech (e.g. "aes-gcm", "rsa"). */
  mech: string;
  /** Sub-operation (e.g. "encrypt", "sign"). */
  op: string;
  /** Message size in bytes (the wrapped key's size for KW/KWP, 0 for find). */
  bytes: number;
  /** Key length in bits (RSA modulus, EC curve size, AES or HMAC key). */
  keyBits: number;
}

/** One --mech family: its sub-operations, whether it takes --sizes, and its key lengths. */
export interface Operation {
  mech: string;
  description: string;
  ops: readonly string[];
  /** Whether the message size comes from --sizes; otherwise `fixedBytes`. */
  sized: boolean;
  fixedBytes?: number;
  defaultKeyBits: number;
  keyBits: readonly number[];
  /** Builds the timed closure in this thread, or throws {@link Unsupported}. */
  prepare(ctx: TargetContext, spec: TrialSpec): Prepared;
}

/** This target cannot run this trial (mechanism absent, convention not offered, no such operation). */
export class Unsupported extends Error {
  override name = "Unsupported";
}

/** A failure the CLI reports with a clear message and exits with `exitCode`. */
export class BenchError extends Error {
  override name = "BenchError";
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
