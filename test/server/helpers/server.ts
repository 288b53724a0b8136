/**
 * A KMS server for the server tests: a temporary data directory, an ephemeral port (config port 0),
 * logs silent, closed and removed at teardown. Started through startServer() as `npm start` would,
 * or — when the test needs its own clock — from KmsService.open and buildApp with that clock, since
 * startServer() takes none.
 *
 * The service runs in the test's thread by default (server.kmsThread false) so that tests can reach
 * `service.kms` to create principals and credentials that no HTTP route creates (grantees, auditors).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { loadConfig, type ConfigOverrides, type HsmkitConfig } from "../../../src/config/config.js";
import { buildApp } from "../../../src/server/app.js";
import { startServer } from "../../../src/server/server.js";
import { credentialSealer } from "../../../src/service/auth/credential-sealer.js";
import { newAccessKeyPair, newId, type Credentials } from "../../../src/service/identity.js";
import { KmsService, type ServicePort } from "../../../src/service/service.js";
import { sealCredentialSecret } from "../../../src/kms/store/secrets.js";
import type { Role } from "../../../src/kms/types.js";

/** Where a server's close is registered: a test (t.teardown) or a file's shared scope. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * Teardowns for servers shared by a file's tests (made in test.before): run them with
 * `test.after.always(() => scope.close())`, last registered first.
 */
export function sharedScope(): Teardown & { close(): Promise<void> } {
  const pending: Array<() => unknown> = [];
  return {
    teardown: (fn) => void pending.push(fn),
    async close() {
      for (const fn of pending.reverse()) await fn();
    },
  };
}

export interface TestServerOptions {
  /** On top of the test defaults (port 0, log silent, kmsThread false, docs off). */
  overrides?: ConfigOverrides;
  /** Reuse this data directory (a restart); default: a new temporary one, removed at teardown. */
  dir?: string;
  /** A clock for the service and the HTTP layer (then the app is built here, not by startServer). */
  now?: () => number;
  /** Do not register a teardown close (the test closes the server itself). */
  manualClose?: boolean;
}

export interface TestServer {
  url: string;
  config: Readonly<HsmkitConfig>;
  dir: string;
  /** credentials.json of the data directory. */
  credentials: Credentials;
  app: FastifyInstance;
  service: ServicePort;
  /** The service object when it runs in this thread; undefined behind a KMS thread. */
  kmsService: KmsService | undefined;
  close(): Promise<void>;
}

/** A temporary directory removed at the end of the test. */
export function tempDir(t: Teardown, prefix = "hsmkit-server-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The configuration a test server runs with. */
export function testConfig(dir: string, overrides: ConfigOverrides = {}): Readonly<HsmkitConfig> {
  return loadConfig({
    env: {},
    overrides: {
      ...overrides,
      data: overrides.data ?? dir,
      server: { port: 0, kmsThread: false, docs: false, ...overrides.server },
      log: { level: "silent", ...overrides.log },
    },
  });
}

export function readCredentialsFile(dir: string): Credentials {
  return JSON.parse(readFileSync(join(dir, "credentials.json"), "utf8")) as Credentials;
}

export async function startTestServer(t: Teardown, options: TestServerOptions = {}): Promise<TestServer> {
  const dir = options.dir ?? tempDir(t);
  const config = testConfig(dir, options.overrides);
  let server: TestServer;
  if (options.now === undefined) {
    const running = await startServer(config);
    server = {
      url: running.url, config, dir, credentials: readCredentialsFile(dir), app: running.app, service: running.service,
      kmsService: running.service instanceof KmsService ? running.service : undefined,
      close: () => running.close(),
    };
  } else {
    const service = await KmsService.open(config, { now: options.now, sweep: false });
    let app: FastifyInstance;
    try {
      app = await buildApp({ config, service, logger: false, now: options.now });
      await app.listen({ host: config.server.host, port: 0 });
    } catch (error) {
      await service.close();
      throw error;
    }
    const address = app.server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    let closing: Promise<void> | null = null;
    server = {
      url: `http://${config.server.host}:${port}`, config, dir, credentials: service.credentials, app, service, kmsService: service,
      close() {
        closing ??= app.close().finally(() => service.close());
        return closing;
      },
    };
  }
  if (options.manualClose !== true) t.teardown(() => server.close());
  return server;
}

export interface Principal {
  userId: string;
  ak: string;
  sk: string;
  projectId: string;
}

/**
 * A new principal of the default account with its own AK/SK credential and `roles` in `projectId`
 * (default: the data directory's project). Needs the service in this thread.
 */
export async function createPrincipal(
  server: TestServer, roles: readonly Role[], projectId = server.credentials.project_id, domainId = server.credentials.domain_id,
): Promise<Principal> {
  const service = server.kmsService;
  if (service === undefined) throw new Error("the service runs in a KMS thread: principals can only be made in-process");
  const kms = service.kms;
  const userId = newId();
  const { ak, sk } = newAccessKeyPair();
  await kms.admin.createPrincipal({ principalId: userId, domainId, name: `test-${userId.slice(0, 8)}` });
  for (const role of roles) await kms.admin.addRole(userId, projectId, role);
  const secret = await sealCredentialSecret(credentialSealer(kms.backend), ak, userId, Buffer.from(sk, "utf8"));
  await kms.admin.createCredential({ accessKey: ak, principalId: userId, secret, description: "test credential" });
  return { userId, ak, sk, projectId };
}

/** A second project (of another account) with a key administrator of its own; needs the service in this thread. */
export async function createOtherProject(server: TestServer): Promise<{ projectId: string; owner: Principal }> {
  const service = server.kmsService;
  if (service === undefined) throw new Error("the service runs in a KMS thread: projects can only be made in-process");
  const projectId = newId();
  const domainId = newId();
  await service.kms.admin.createProject({ projectId, domainId, name: "other" });
  const owner = await createPrincipal(server, ["key_admin", "crypto_user", "auditor"], projectId, domainId);
  return { projectId, owner };
}
