/**
 * A Kms on a token for the kms-*.test.ts files: the same scenarios on the emulator and on
 * SoftHSMv2 (backend-fixtures.ts gives the tokens), each with a fresh store directory, a clock the
 * test moves, and two projects with principals in every role:
 *
 *   project P (account D1): alice key_admin, carol crypto_user, dave auditor, erin no role,
 *                           mallory crypto_user + key_admin (convenience)
 *   project Q (account D2): bob key_admin + crypto_user + auditor
 *   frank (account D1): no role anywhere (a grantee)
 *
 * A file registers scenarios with registerKmsScenarios(fixture, scenarios); on a token that is
 * missing, every scenario is registered as skipped with the reason in its title.
 */
import test, { type ExecutionContext } from "ava";
import { Kms, type KmsOptions } from "../../src/kms/kms.js";
import type { RequestContext } from "../../src/kms/access.js";
import type { KmsBackend } from "../../src/kms/backend/backend.js";
import { KmsError, type KmsErrorCode } from "../../src/kms/errors.js";
import { openSqliteStore, type SqliteStore, type SqliteStoreOptions } from "../../src/kms/store/sqlite.js";
import type { Role } from "../../src/kms/types.js";
import type { TokenFixture, TokenHarness } from "./backend-fixtures.js";
import { tempDir } from "./store-helpers.js";

export const P = "projectp";
export const Q = "projectq";
export const D1 = "domain1";
export const D2 = "domain2";

const PEOPLE: Array<{ id: string; domain: string; roles: Array<[string, Role]> }> = [
  { id: "alice", domain: D1, roles: [[P, "key_admin"]] },
  { id: "carol", domain: D1, roles: [[P, "crypto_user"]] },
  { id: "dave", domain: D1, roles: [[P, "auditor"]] },
  { id: "erin", domain: D1, roles: [] },
  { id: "mallory", domain: D1, roles: [[P, "crypto_user"], [P, "key_admin"]] },
  { id: "frank", domain: D1, roles: [] },
  { id: "bob", domain: D2, roles: [[Q, "key_admin"], [Q, "crypto_user"], [Q, "auditor"]] },
];

/** A clock the test moves (ms since the epoch). */
export class Clock {
  now = Date.UTC(2030, 0, 1);
  advanceDays(days: number): void {
    this.now += days * 86_400_000;
  }
}

export interface KmsHarness {
  readonly token: TokenHarness;
  readonly dir: string;
  readonly clock: Clock;
  /** The Kms opened last. */
  kms: Kms;
  store: SqliteStore;
  backend: KmsBackend;
  /** A request context for `principal` in `project` (default P). */
  ctx(principal: string, project?: string): RequestContext;
  /** Closes the Kms, its store and backend, restarts the token's library, and opens them again on the same data. */
  restart(options?: Partial<KmsOptions>): Promise<Kms>;
  /** Opens the Kms again over the open backend and store with other options. */
  reconfigure(options: Partial<KmsOptions>): Kms;
}

let requests = 0;

/** Kms options for a scenario, and store options besides the directory and MAC. */
export type KmsHarnessOptions = Omit<Partial<KmsOptions>, "store" | "backend"> & { store?: Partial<SqliteStoreOptions> };

export async function setupKms(
  t: ExecutionContext, token: TokenHarness, options: KmsHarnessOptions = {},
): Promise<KmsHarness> {
  const dir = tempDir(t, "hsmkit-kms-service-");
  const clock = new Clock();
  const { store: storeOptions, ...kmsOptions } = options;
  const open = async (extra: Partial<KmsOptions> = {}): Promise<{ kms: Kms; store: SqliteStore; backend: KmsBackend }> => {
    const backend = token.open();
    const store = await openSqliteStore({
      directory: dir, mac: { mac: (d) => backend.mac(d), verifyMac: (d, m) => backend.verifyMac(d, m) }, warn: () => {}, ...storeOptions,
    });
    t.teardown(() => store.close());
    const kms = new Kms({ backend, store, now: () => clock.now, warn: () => {}, ...kmsOptions, ...extra });
    return { kms, store, backend };
  };
  const first = await open();
  const harness: KmsHarness = {
    token, dir, clock, kms: first.kms, store: first.store, backend: first.backend,
    ctx: (principal, project = P) => ({ projectId: project, principalId: principal, requestId: `req-${++requests}`, source: "test" }),
    async restart(extra = {}) {
      await harness.kms.close();
      await harness.store.close();
      harness.backend.close();
      token.restart();
      const next = await open(extra);
      Object.assign(harness, next);
      return next.kms;
    },
    reconfigure(extra) {
      harness.kms = new Kms({ backend: harness.backend, store: harness.store, now: () => clock.now, warn: () => {}, ...kmsOptions, ...extra });
      return harness.kms;
    },
  };
  for (const person of PEOPLE) {
    await first.kms.admin.createPrincipal({ principalId: person.id, domainId: person.domain });
    for (const [project, role] of person.roles) await first.kms.admin.addRole(person.id, project, role);
  }
  await first.kms.admin.createProject({ projectId: P, domainId: D1 });
  await first.kms.admin.createProject({ projectId: Q, domainId: D2 });
  return harness;
}

export interface KmsScenario {
  title: string;
  run(t: ExecutionContext, harness: KmsHarness): Promise<void>;
  /** Options for setupKms. */
  options?: KmsHarnessOptions;
}

/** Registers each scenario on the fixture's token (serially on SoftHSMv2), or as skipped with the reason. */
export function registerKmsScenarios(fixture: TokenFixture, scenarios: readonly KmsScenario[]): void {
  for (const scenario of scenarios) {
    const title = `${fixture.name} › ${scenario.title}`;
    if (fixture.missing !== undefined) {
      test.skip(`${title} — skipped: ${fixture.missing}`, () => {});
      continue;
    }
    const register = fixture.serial ? test.serial : test;
    register(title, async (t) => {
      const token = fixture.setup(t);
      await scenario.run(t, await setupKms(t, token, scenario.options));
    });
  }
}

/** Asserts that `promise` rejects with a KmsError of `code`; returns the error. */
export async function rejects(t: ExecutionContext, promise: Promise<unknown>, code: KmsErrorCode, message?: string): Promise<KmsError> {
  const error = await t.throwsAsync(promise, { instanceOf: KmsError }, message);
  t.is(error?.code, code, `${message ?? ""} ${error?.detail ?? ""}`.trim());
  return error!;
}
