/**
 * /healthz as a supervisor or load balancer reads it, with the service in this thread and behind
 * the KMS thread: 200 while the service can serve; once the token refuses the configured PIN (the
 * backend never tries it again, so nothing gets better until the configuration is fixed and the
 * process restarted), 503 with a reason the operator can act on and no secret in it.
 */
import test, { type ExecutionContext } from "ava";
import { startServer } from "../../src/server/server.js";
import { KmsService } from "../../src/service/service.js";
import { ThreadServicePort } from "../../src/service/thread.js";
import { assertHuaweiError, kmsPath, signedRequest, type RawResponse } from "./helpers/client.js";
import { readCredentialsFile, tempDir, testConfig } from "./helpers/server.js";
import { CHANGE_PIN_REQUEST, CHANGED_PIN, CONFIGURED_PIN, changeTokenPin } from "./helpers/token-pin.js";

const PIN_CHANGE_WORKER = new URL("./helpers/pin-change-worker.js", import.meta.url);

async function health(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: await response.json() };
}

for (const kmsThread of [false, true]) {
  test(`${kmsThread ? "KMS thread" : "one thread"} › once the token refuses the configured PIN, /healthz is 503 saying what to do, with no PIN in it, and stays so`, async (t: ExecutionContext) => {
    const dir = tempDir(t);
    const config = testConfig(dir, { token: { pin: CONFIGURED_PIN }, server: { kmsThread } });
    const server = await startServer(config, {
      openService: (c, log) => (kmsThread ? ThreadServicePort.open(c, log, { sweep: false, entry: PIN_CHANGE_WORKER }) : KmsService.open(c, { log, sweep: false })),
    });
    t.teardown(() => server.close());
    const identity = readCredentialsFile(dir);
    const genRandom = (requestId: string): Promise<RawResponse> => signedRequest(server.url, {
      method: "POST", path: kmsPath(identity.project_id, "gen-random"), body: JSON.stringify({ random_data_length: "256" }), identity,
      headers: { "x-request-id": requestId },
    });

    t.is((await genRandom("first")).status, 200);
    const before = await health(server.url);
    t.is(before.status, 200);
    t.is(before.body.status, "ok");

    // In the KMS thread, its entry changes the PIN when this call arrives, before the call runs.
    if (!kmsThread) changeTokenPin();
    // The call finds its sessions gone and logs in again with the configured PIN: refused.
    assertHuaweiError(t, await genRandom(CHANGE_PIN_REQUEST), 500, "KMS.0101");
    const after = await health(server.url);
    t.is(after.status, 503);
    t.is(after.body.status, "unavailable");
    t.regex(after.body.problem, /CKR_PIN_INCORRECT/u);
    t.regex(after.body.problem, /configure the token's current PIN and restart/u);
    t.notRegex(JSON.stringify(after.body), new RegExp(`${CONFIGURED_PIN}|${CHANGED_PIN}`, "u"), "no PIN in the answer");

    // Nothing heals it: the PIN is never tried again.
    assertHuaweiError(t, await genRandom("later"), 500, "KMS.0101");
    t.is((await health(server.url)).status, 503);
  });
}
