/**
 * Targets: where a thread runs its trials. `openTarget` opens one in the calling thread, with its
 * own session for PKCS#11 targets:
 * - native: the native core (src/crypto), in this thread;
 * - node-crypto: node:crypto, the software peer;
 * - emulator: an in-memory Emulator of this thread. An Emulator instance cannot be shared across
 *   worker threads, so with --threads N each thread runs its own emulator with its own token: the
 *   threads do not contend for one token as they would on a module;
 * - module: a PKCS#11 library by path, loaded once per process and initialized with
 *   CKF_OS_LOCKING_OK through the KMS's module loader (src/kms/backend/module-loader.ts). The main
 *   thread opens it first and holds it until every worker is done; a worker's C_Initialize then
 *   meets CKR_CRYPTOKI_ALREADY_INITIALIZED and the worker never finalizes. Each thread opens its own
 *   session and logs in (login is per token, so CKR_USER_ALREADY_LOGGED_IN is expected).
 */
import { existsSync, statSync } from "node:fs";
import { Emulator } from "../../emulator/index.js";
import { pkcs11, type Handle, type PKCS11 } from "../../emulator/pkcs11.js";
import { acquireModule, type ModuleLease } from "../kms/backend/module-loader.js";
import { ckrOf } from "../kms/backend/pkcs11.js";
import { BenchError, type TargetContext } from "./types.js";

const P = pkcs11;

export type TargetKind = "native" | "node-crypto" | "emulator" | "module" | "http";

export interface TargetSpec {
  /** Name in tables and JSON: native, node-crypto, emulator, kms-http, or the module's file name. */
  name: string;
  kind: TargetKind;
  /** The module path (kind module) or URL (kind http). */
  location?: string;
  token?: string;
  pin?: string;
}

export interface TargetInfo {
  name: string;
  kind: TargetKind;
  note?: string;
  module?: {
    path: string;
    manufacturer: string;
    description: string;
    library_version: string;
    cryptoki_version: string;
  };
  token?: { label: string; manufacturer: string; model: string; serial: string; slot: string };
  /** KMS HTTP target: the endpoint, the project and CMK used, and where the credentials came from (never the SK). */
  http?: { url: string; project_id: string; key_id: string; key_alias: string; credentials: string };
}

export interface OpenTarget {
  ctx: TargetContext;
  info: TargetInfo;
  /** The session handle (PKCS#11 targets), to show that threads use separate sessions. */
  session?: string;
  close(): void;
}

/** Builds a target from one --module value. */
export function targetSpec(value: string, token: string | undefined, pin: string | undefined): TargetSpec {
  if (value === "native" || value === "node-crypto" || value === "emulator") {
    return { name: value, kind: value, ...(token !== undefined ? { token } : {}), ...(pin !== undefined ? { pin } : {}) };
  }
  if (/^https?:\/\//u.test(value)) return { name: "kms-http", kind: "http", location: value };
  const name = value.split("/").pop()!.replace(/^lib/u, "").replace(/\.(so|dylib|dll)(\..*)?$/u, "") || value;
  return { name, kind: "module", location: value, ...(token !== undefined ? { token } : {}), ...(pin !== undefined ? { pin } : {}) };
}

const text = (s: string): string => s.replace(/[\0 ]+$/u, "");

function describe(error: unknown): string {
  const ckr = ckrOf(error);
  return ckr !== undefined ? ckr.name : error instanceof Error ? error.message : String(error);
}

/** Session, login and facts on a pkcs11js-shaped object that is already initialized. */
function openPkcs11(spec: TargetSpec, p11: PKCS11, close: () => void, modulePath: string): OpenTarget {
  let session: Handle | undefined;
  try {
    const slots = p11.C_GetSlotList(true);
    // An uninitialized token (SoftHSMv2 always offers one in its spare slot) has no user PIN to log
    // in with, so it is never a candidate: it would make a module's one real token ambiguous.
    const labelled = slots.map((slot) => ({ slot, info: p11.C_GetTokenInfo(slot) }))
      .filter((s) => (s.info.flags & P.CKF_TOKEN_INITIALIZED) !== 0);
    const labels = labelled.map((s) => `"${text(s.info.label)}"`);
    let chosen = labelled[0];
    if (spec.token !== undefined) {
      chosen = labelled.find((s) => text(s.info.label) === spec.token);
      if (chosen === undefined) {
        throw new BenchError(`${spec.name}: no token labelled "${spec.token}" (tokens present: ${labels.join(", ") || "none"})`);
      }
    } else if (labelled.length !== 1) {
      throw new BenchError(`${spec.name}: ${labelled.length === 0 ? "no initialized token present" : `several tokens (${labels.join(", ")}): choose one with --token LABEL`}`);
    }
    const { slot, info } = chosen!;
    session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    if (spec.pin === undefined) throw new BenchError(`${spec.name}: token "${text(info.label)}" needs a user PIN: pass --pin PIN or set HSMKIT_PIN`);
    try {
      p11.C_Login(session, P.CKU_USER, spec.pin);
    } catch (error) {
      const ckr = ckrOf(error);
      if (ckr?.rv === P.CKR_USER_ALREADY_LOGGED_IN) {
        // login is per token: another thread's session logged it in
      } else if (ckr?.rv === P.CKR_PIN_INCORRECT || ckr?.rv === P.CKR_PIN_INVALID || ckr?.rv === P.CKR_PIN_LEN_RANGE) {
        throw new BenchError(`${spec.name}: wrong PIN for token "${text(info.label)}" (${ckr.name})`);
      } else if (ckr?.rv === P.CKR_PIN_LOCKED) {
        throw new BenchError(`${spec.name}: the user PIN of token "${text(info.label)}" is locked (CKR_PIN_LOCKED)`);
      } else {
        throw new BenchError(`${spec.name}: login to token "${text(info.label)}" failed: ${describe(error)}`);
      }
    }
    const mechanisms = new Set(p11.C_GetMechanismList(slot));
    const moduleInfo = p11.C_GetInfo();
    const version = (v: { major: number; minor: number }): string => `${v.major}.${v.minor}`;
    const opened = session;
    return {
      ctx: { kind: "pkcs11", p11, session: opened, mechanisms },
      session: opened.toString("hex"),
      info: {
        name: spec.name,
        kind: spec.kind,
        module: {
          path: modulePath,
          manufacturer: text(moduleInfo.manufacturerID),
          description: text(moduleInfo.libraryDescription),
          library_version: version(moduleInfo.libraryVersion),
          cryptoki_version: version(moduleInfo.cryptokiVersion),
        },
        token: { label: text(info.label), manufacturer: text(info.manufacturerID), model: text(info.model), serial: text(info.serialNumber), slot: slot.toString("hex") },
      },
      close() {
        try {
          p11.C_CloseSession(opened);
        } catch {
          // already closed with the module
        }
        close();
      },
    };
  } catch (error) {
    try {
      if (session !== undefined) p11.C_CloseSession(session);
    } catch {
      /* nothing to add */
    }
    close();
    if (error instanceof BenchError) throw error;
    throw new BenchError(`${spec.name}: ${describe(error)}`);
  }
}

/** Opens a target in this thread (see the file comment). Throws BenchError with a clear message. */
export function openTarget(spec: TargetSpec): OpenTarget {
  switch (spec.kind) {
    case "native":
      return { ctx: { kind: "native" }, info: { name: spec.name, kind: spec.kind }, close() {} };
    case "node-crypto":
      return { ctx: { kind: "node-crypto" }, info: { name: spec.name, kind: spec.kind }, close() {} };
    case "http":
      // KMS operations, not PKCS#11 mechanisms: measured by runHttpBench (src/bench/http).
      throw new BenchError(`${spec.location}: the KMS HTTP target is measured by runHttpBench (src/bench/http/index.ts), not by the mechanism trials`, 2);
    case "emulator": {
      const label = spec.token ?? "hsmkit-bench";
      const pin = spec.pin ?? "1234";
      const emulator = new Emulator({ slots: [{ token: { label, soPin: "12345678", userPin: pin } }], kdf: { N: 1024, r: 8, p: 1 } });
      emulator.C_Initialize();
      const opened = openPkcs11({ ...spec, token: label, pin }, emulator, () => { try { emulator.C_Finalize(); } finally { emulator.close(); } }, "emulator");
      opened.info.note = "in-memory emulator; each thread runs its own Emulator instance (one cannot be shared across worker threads)";
      return opened;
    }
    case "module": {
      const path = spec.location!;
      if (!existsSync(path)) throw new BenchError(`no PKCS#11 module at ${path} (file not found)`);
      if (!statSync(path).isFile()) throw new BenchError(`${path} is not a file, so not a PKCS#11 module`);
      let lease: ModuleLease;
      try {
        lease = acquireModule(path);
      } catch (error) {
        throw new BenchError(`could not load ${path} as a PKCS#11 module: ${describe(error)}`);
      }
      const p11 = (lease.module as unknown as { lib: PKCS11 }).lib;
      return openPkcs11(spec, p11, () => lease.release(), lease.source);
    }
  }
}
