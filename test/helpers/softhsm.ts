/**
 * A fresh SoftHSMv2 token per test, as the reference token the emulator is compared with.
 *
 * Each call makes a temporary directory holding a softhsm2.conf and an empty token directory,
 * initializes a token there with softhsm2-util (SO PIN and user PIN set), points SOFTHSM2_CONF at
 * it and C_Initializes SoftHSMv2 through pkcs11js with CKF_OS_LOCKING_OK; t.teardown finalizes
 * and removes the directory.
 *
 * SoftHSMv2 is a process-wide singleton that reads SOFTHSM2_CONF with getenv() at C_Initialize,
 * which brings two rules (shared/reference/pkcs11.md §4):
 * - The test file must run in its own process (ava `workerThreads: false`): a worker thread's
 *   process.env is a copy that getenv() never sees, so a worker would silently open the system's
 *   default token directory instead. The fixture refuses to run in a worker thread.
 * - One token at a time per process, so tests that use this fixture are declared `test.serial`;
 *   the fixture refuses a second token while one is open.
 */
import type { ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { isMainThread } from "node:worker_threads";
import { pkcs11, type Handle, type PKCS11 } from "../../emulator/pkcs11.js";

/** Where SoftHSMv2's module is looked for: $HSMKIT_SOFTHSM2_LIB alone when set, else the usual package locations. */
const LIBRARY_CANDIDATES = process.env.HSMKIT_SOFTHSM2_LIB ? [process.env.HSMKIT_SOFTHSM2_LIB] : [
  "/usr/lib/softhsm/libsofthsm2.so",
  "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
  "/usr/lib64/pkcs11/libsofthsm2.so",
  "/usr/local/lib/softhsm/libsofthsm2.so",
  "/opt/homebrew/lib/softhsm/libsofthsm2.so",
];

function findUtil(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "softhsm2-util");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export interface SoftHsmInstallation {
  library: string;
  util: string;
}

/** The installed SoftHSMv2, or why it cannot be used (the reason goes into skipped tests' titles). */
export const SOFTHSM: { installation: SoftHsmInstallation; missing?: undefined } | { installation?: undefined; missing: string } = (() => {
  const library = LIBRARY_CANDIDATES.find((p) => existsSync(p));
  if (library === undefined) return { missing: `libsofthsm2.so not installed (looked in ${LIBRARY_CANDIDATES.join(", ")})` };
  const util = findUtil();
  if (util === undefined) return { missing: "softhsm2-util not on PATH" };
  return { installation: { library, util } };
})();

export interface SoftHsmToken {
  p11: PKCS11;
  /** The slot holding the fresh token. */
  slot: Handle;
  label: string;
  soPin: string;
  userPin: string;
  /** The temporary directory (softhsm2.conf and tokens/), removed at teardown. */
  dir: string;
}

export interface SoftHsmTokenOptions {
  label?: string;
  soPin?: string;
  userPin?: string;
}

let module: PKCS11 | undefined;
let open = false;

/** The one pkcs11js instance with SoftHSMv2 loaded, for this process. */
function library(path: string): PKCS11 {
  if (module === undefined) {
    const instance = new pkcs11.PKCS11();
    instance.load(path);
    module = withPkcs11Errors(instance);
  }
  return module;
}

/**
 * pkcs11js 2.1.7 wraps a module's failures in Pkcs11Error everywhere but in four methods, which
 * throw a plain Error whose message is "CKR_NAME:code": C_CreateObject, C_CopyObject and
 * C_SetAttributeValue (its PKCS11 class redefines them as non-enumerable methods, which hides
 * them from the for…in loop that installs its error wrapper) and C_FindObjects (its special
 * case calls the unwrapped native method). Callers such as graphene therefore see different
 * error classes for the same CKR. So that scenarios can assert codes on every call alike, this
 * proxy gives those errors the Pkcs11Error that pkcs11js gives everywhere else; the emulator
 * throws Pkcs11Error from every method on its own.
 */
export function withPkcs11Errors(p11: PKCS11): PKCS11 {
  return new Proxy(p11, {
    get(target, name, receiver) {
      const value: unknown = Reflect.get(target, name, receiver);
      if (typeof value !== "function" || typeof name !== "string" || !name.startsWith("C_")) return value;
      return (...args: unknown[]) => {
        try {
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (error) {
          if (!(error instanceof pkcs11.Pkcs11Error) && error instanceof Error && /^CKR_\w+:\d+$/u.test(error.message)) {
            throw new pkcs11.Pkcs11Error(error.message, 0, name);
          }
          throw error;
        }
      };
    },
  });
}

/** Trailing blanks and NULs off a fixed-width CK_* text field (SoftHSMv2 pads labels with either). */
export function fieldText(value: string): string {
  return value.replace(/[\0 ]+$/u, "");
}

/**
 * Creates and initializes a fresh token and C_Initializes SoftHSMv2 on it; nothing is logged in
 * and no session is open. Call only when {@link SOFTHSM} has an installation, from a serial test.
 */
export function freshSoftHsmToken(t: ExecutionContext, options: SoftHsmTokenOptions = {}): SoftHsmToken {
  const installation = SOFTHSM.installation;
  if (installation === undefined) throw new Error(`SoftHSMv2 unavailable: ${SOFTHSM.missing}`);
  if (!isMainThread) {
    throw new Error("SoftHSMv2 reads SOFTHSM2_CONF with getenv(), which a worker thread's process.env does not reach: run ava with workerThreads: false");
  }
  if (open) throw new Error("one SoftHSMv2 token at a time per process: declare tests that use it with test.serial");
  const label = options.label ?? "hsmkit-conformance";
  const soPin = options.soPin ?? "12345678";
  const userPin = options.userPin ?? "123456";

  const dir = mkdtempSync(join(tmpdir(), "hsmkit-softhsm-"));
  const tokens = join(dir, "tokens");
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, [
    `directories.tokendir = ${tokens}`,
    "objectstore.backend = file",
    "log.level = ERROR",
    "slots.removable = false",
    "slots.mechanisms = ALL",
    "library.reset_on_fork = false",
    "",
  ].join("\n"));
  const previousConf = process.env.SOFTHSM2_CONF;
  let initialized = false;
  open = true;
  t.teardown(() => {
    try {
      if (initialized) module?.C_Finalize();
    } finally {
      if (previousConf === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previousConf;
      rmSync(dir, { recursive: true, force: true });
      open = false;
    }
  });

  execFileSync(installation.util, ["--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", userPin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: "pipe",
  });
  process.env.SOFTHSM2_CONF = conf;
  const p11 = library(installation.library);
  p11.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  initialized = true;
  const slot = p11.C_GetSlotList(true).find((s) => fieldText(p11.C_GetTokenInfo(s).label) === label);
  if (slot === undefined) throw new Error(`SoftHSMv2 shows no token labelled ${label} in ${tokens}`);
  return { p11, slot, label, soPin, userPin, dir };
}
