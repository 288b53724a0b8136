/**
 * Tokens for the backend and envelope tests: the same scenarios run on the emulator (with a token
 * directory, so restarts are real) and on SoftHSMv2 (a fresh token per test through
 * test/helpers/softhsm.ts, serially, since SoftHSMv2 is one library per process). A harness opens
 * backends on its token (closed at teardown), restarts the token's library, and looks at the token
 * from the side through graphene, as an auditor would.
 */
import type { ExecutionContext } from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Emulator, type EmulatorOptions } from "../../emulator/index.js";
import type { KmsBackend } from "../../src/kms/backend/backend.js";
import { openBackend, type GrapheneBackendOptions } from "../../src/kms/backend/graphene.js";
import { acquireModule, type ModuleSource } from "../../src/kms/backend/module-loader.js";
import { graphene, pkcs11, type Session } from "../../src/kms/backend/pkcs11.js";
import { freshSoftHsmToken, SOFTHSM } from "../helpers/softhsm.js";

export const TOKEN_LABEL = "hsmkit-kms";
export const USER_PIN = "246810";
export const SO_PIN = "12345678";
/** scrypt N=16, r=1, p=1: microseconds per emulator login (the default cost is for real PINs). */
export const FAST_KDF = { N: 16, r: 1, p: 1 };

/** How a child process reaches the same token. */
export type ChildToken = { kind: "emulator"; tokenDir: string } | { kind: "softhsm"; library: string; conf: string };

/** What a session object of the token looks like from the side. */
export interface ObjectView {
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  encrypt: boolean;
  decrypt: boolean;
  wrap: boolean;
  unwrap: boolean;
}

export interface TokenHarness {
  readonly name: "emulator" | "softhsm";
  /** The module the backends use. */
  module(): ModuleSource;
  /** Opens a backend on the token (options override the defaults); closed at teardown. */
  open(options?: Partial<GrapheneBackendOptions>): KmsBackend;
  /**
   * Restarts the token's library as a process restart would (every backend must be closed first):
   * the emulator is closed and reopened on its directory; SoftHSMv2 is finalized and initialized
   * again, which makes it read its token directory afresh.
   */
  restart(): void;
  /** Lets another process take the token (the emulator's directory lock); backends must be closed. */
  handOver(): ChildToken;
  /** The secret keys that are session objects, seen through a session of our own. */
  sessionKeys(): ObjectView[];
  /** Runs `body` on a logged-in graphene session of our own (for planting objects). */
  withSession<T>(body: (session: Session) => T): T;
  /** Runs `body` on a session of our own without logging in: a public session while no other session of the application is logged in. */
  withPublicSession<T>(body: (session: Session) => T): T;
}

export interface TokenFixture {
  readonly name: "emulator" | "softhsm";
  /** Why the token cannot be used here, if it cannot. */
  readonly missing: string | undefined;
  /** SoftHSMv2 tests must be serial (one token per process at a time). */
  readonly serial: boolean;
  setup(t: ExecutionContext, options?: { emulator?: EmulatorOptions }): TokenHarness;
}

/** Session helpers shared by both harnesses, over a lease on the backend's own module. */
function sideSession<T>(source: ModuleSource, body: (session: Session) => T, login = true): T {
  const lease = acquireModule(source);
  try {
    const slots = lease.module.getSlots(true);
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      if (slot.getToken().label.replace(/[\0 ]+$/u, "") !== TOKEN_LABEL) continue;
      const session = slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
      try {
        if (login) {
          try {
            session.login(USER_PIN);
          } catch (error) {
            if (!/CKR_USER_ALREADY_LOGGED_IN/u.test(String(error))) throw error;
          }
        }
        return body(session);
      } finally {
        session.close();
      }
    }
    throw new Error(`no token labelled ${TOKEN_LABEL}`);
  } finally {
    lease.release();
  }
}

function sessionKeys(source: ModuleSource): ObjectView[] {
  return sideSession(source, (session) => {
    const found = session.find({ class: graphene.ObjectClass.SECRET_KEY, token: false });
    const views: ObjectView[] = [];
    for (let i = 0; i < found.length; i++) {
      views.push(found.items(i).getAttribute({
        token: null, sensitive: null, extractable: null, encrypt: null, decrypt: null, wrap: null, unwrap: null,
      }) as ObjectView);
    }
    return views;
  });
}

function tracker(t: ExecutionContext, source: () => ModuleSource): (options?: Partial<GrapheneBackendOptions>) => KmsBackend {
  const opened: KmsBackend[] = [];
  t.teardown(() => {
    for (const backend of opened) backend.close();
  });
  return (options = {}) => {
    const backend = openBackend({ module: source(), tokenLabel: TOKEN_LABEL, pin: USER_PIN, ...options });
    opened.push(backend);
    return backend;
  };
}

export const EMULATOR: TokenFixture = {
  name: "emulator",
  missing: undefined,
  serial: false,
  setup(t, options = {}) {
    const tokenDir = mkdtempSync(join(tmpdir(), "hsmkit-kms-emulator-"));
    const make = (): Emulator => new Emulator({
      tokenDir, kdf: FAST_KDF, slots: [{ token: { label: TOKEN_LABEL, soPin: SO_PIN, userPin: USER_PIN } }], ...options.emulator,
    });
    let emulator: Emulator | undefined = make();
    t.teardown(() => {
      emulator?.close();
      rmSync(tokenDir, { recursive: true, force: true });
    });
    const current = (): Emulator => {
      emulator ??= make();
      return emulator;
    };
    const open = tracker(t, current);
    return {
      name: "emulator",
      module: current,
      open,
      restart() {
        current().close();
        emulator = make();
      },
      handOver() {
        current().close();
        emulator = undefined;
        return { kind: "emulator", tokenDir };
      },
      sessionKeys: () => sessionKeys(current()),
      withSession: (body) => sideSession(current(), body),
      withPublicSession: (body) => sideSession(current(), body, false),
    };
  },
};

export const SOFTHSM_FIXTURE: TokenFixture = {
  name: "softhsm",
  missing: SOFTHSM.missing,
  serial: true,
  setup(t) {
    const fresh = freshSoftHsmToken(t, { label: TOKEN_LABEL, soPin: SO_PIN, userPin: USER_PIN });
    const library = SOFTHSM.installation!.library;
    const open = tracker(t, () => library);
    return {
      name: "softhsm",
      module: () => library,
      open,
      restart() {
        // The fixture initialized SoftHSMv2 (so backends never finalize it): cycle it through the fixture's handle.
        fresh.p11.C_Finalize();
        fresh.p11.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
      },
      handOver() {
        // SoftHSMv2's file store is shared between processes (fcntl locks): nothing to release.
        return { kind: "softhsm", library, conf: join(fresh.dir, "softhsm2.conf") };
      },
      sessionKeys: () => sessionKeys(library),
      withSession: (body) => sideSession(library, body),
      withPublicSession: (body) => sideSession(library, body, false),
    };
  },
};
