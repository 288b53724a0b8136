/**
 * KmsService (src/service/service.ts) in the server's own thread, on a fresh data directory per
 * test: what its callers rely on when they shut it down.
 */
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/config.js";
import { KmsError } from "../../src/kms/errors.js";
import { KmsService } from "../../src/service/service.js";

test("a second close() resolves only once the service is closed, as the first does", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-service-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const service = await KmsService.open(loadConfig({ overrides: { data: dir }, env: {} }), { sweep: false });
  // A signal handler and the normal shutdown path both closing: whichever returns first must not
  // let the process exit before the store and the token are closed.
  let closed = false;
  const first = service.close().then(() => (closed = true));
  await service.close();
  t.true(closed, "the second close() waited for the first");
  await first;
  const late = await t.throwsAsync(service.callAs({ projectId: "p", principalId: "u", requestId: "r", source: "test" }, "genRandom", {}), { instanceOf: KmsError });
  t.is(late?.code, "KMS.0104");
});
