// Graceful shutdown: close() lets the requests in flight finish with their answers, flushes their
// audit records, and only then closes the store and the token — with the KMS in its own thread and
// in the server's thread.
import test from "ava";
import { startServer } from "../../src/server/server.js";
import { KmsService, type ServicePort } from "../../src/service/service.js";
import { openConfiguredService } from "../../src/server/server.js";
import { kmsPath, signedRequest } from "./helpers/client.js";
import { readCredentialsFile, tempDir, testConfig } from "./helpers/server.js";

const IN_FLIGHT = 40;

for (const kmsThread of [true, false]) {
  test(`close() answers every request in flight and their audit records survive (kmsThread ${kmsThread})`, async (t) => {
    const dir = tempDir(t);
    const config = testConfig(dir, { server: { kmsThread } });
    // A service whose calls wait until every request has arrived, so that close() starts while all
    // of them are in flight inside the server.
    let arrived = 0;
    let release!: () => void;
    const allIn = new Promise<void>((resolve) => (release = resolve));
    let everyoneArrived!: () => void;
    const gathered = new Promise<void>((resolve) => (everyoneArrived = resolve));
    const server = await startServer(config, {
      openService: async (c, log) => {
        const inner: ServicePort = await openConfiguredService(c, log);
        return {
          call: async (call) => {
            if (call.method === "encryptData" && ++arrived === IN_FLIGHT) everyoneArrived();
            if (call.method === "encryptData") await allIn;
            return inner.call(call);
          },
          authenticate: (auth, projectId) => inner.authenticate(auth, projectId),
          issueToken: (request) => inner.issueToken(request),
          health: () => inner.health(),
          stats: () => inner.stats(),
          close: () => inner.close(),
        };
      },
      logger: (await import("pino")).default({ level: "silent" }),
    });
    const credentials = readCredentialsFile(dir);
    const identity = { ak: credentials.ak, sk: credentials.sk };
    const created = await signedRequest(server.url, {
      method: "POST", path: kmsPath(credentials.project_id, "create-key"), identity, body: JSON.stringify({ key_alias: "bye" }),
    });
    t.is(created.status, 200);

    const requests = Array.from({ length: IN_FLIGHT }, (_, i) => signedRequest(server.url, {
      method: "POST", path: kmsPath(credentials.project_id, "encrypt-data"), identity,
      body: JSON.stringify({ key_id: "bye", plain_text: `message ${i}` }),
    }));
    await gathered;
    const closed = server.close();
    // New connections are refused once closing has begun; the ones inside finish.
    release();
    const responses = await Promise.all(requests);
    await closed;
    t.deepEqual(responses.map((r) => r.status), Array(IN_FLIGHT).fill(200));

    const reopened = await KmsService.open(testConfig(dir), { sweep: false });
    t.teardown(() => reopened.close());
    const ctx = { projectId: credentials.project_id, principalId: credentials.user_id, requestId: "check", source: "test" };
    const page = await reopened.kms.queryAuditLog(ctx, { action: "encryptData", limit: 1000 });
    t.is(page.records.filter((r) => r.outcome === "success").length, IN_FLIGHT);
    t.true((await reopened.kms.verifyAuditLog(ctx)).ok);
    for (const response of responses) {
      const blob = Buffer.from((response.json as { cipher_text: string }).cipher_text, "base64");
      t.regex((await reopened.kms.decryptData(ctx, { cipherText: blob })).plainText.toString(), /^message \d+$/u);
    }
  });
}
