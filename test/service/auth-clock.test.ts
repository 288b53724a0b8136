/**
 * Authentication when the wall clock steps (NTP step, VM restore), and as credentials expire or
 * change while tokens obtained with them are held: the service's clock is the one the test moves
 * (KmsService.open `now`), on a fresh data directory per test.
 */
import test, { type ExecutionContext } from "ava";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/config.js";
import { KmsError } from "../../src/kms/errors.js";
import { sealCredentialSecret } from "../../src/kms/store/secrets.js";
import { Authenticator } from "../../src/service/auth/authenticator.js";
import { credentialSealer } from "../../src/service/auth/credential-sealer.js";
import { TokenIssuer } from "../../src/service/auth/tokens.js";
import { KmsService } from "../../src/service/service.js";

const HOUR_MS = 3_600_000;

async function openService(t: ExecutionContext): Promise<{ service: KmsService; clock: { now: number } }> {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-auth-clock-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const clock = { now: Date.UTC(2030, 0, 1) };
  const service = await KmsService.open(loadConfig({ overrides: { data: dir }, env: {} }), { sweep: false, now: () => clock.now });
  t.teardown(() => service.close());
  return { service, clock };
}

function tokenRequest(service: KmsService): Parameters<KmsService["issueToken"]>[0] {
  const c = service.credentials;
  return { password: { accessKey: c.ak, secretKey: c.sk }, projectId: c.project_id, requestId: "req-token", source: "test" };
}

test("a token minted while the clock ran ahead is refused once the clock is set right, not honoured for the jump plus its lifetime", async (t) => {
  const { service, clock } = await openService(t);
  const corrected = clock.now;
  clock.now += 365 * 24 * HOUR_MS;
  const { token, expiresAt } = await service.issueToken(tokenRequest(service));
  clock.now = corrected;
  t.true(expiresAt - clock.now > 300 * 24 * HOUR_MS, "by its expiry alone it would live for most of a year");
  const error = await t.throwsAsync(service.authenticate({ kind: "token", token }, service.credentials.project_id), { instanceOf: KmsError });
  t.is(error?.code, "KMS.0302");

  // A token minted by the right clock still works, also a little before its issue time (a clock slewed back).
  const fresh = await service.issueToken(tokenRequest(service));
  clock.now -= 1000;
  await t.notThrowsAsync(service.authenticate({ kind: "token", token: fresh.token }, service.credentials.project_id));
});

test("a principal disabled after the clock stepped back is refused within the refresh time, by AK/SK and by token", async (t) => {
  const { service, clock } = await openService(t);
  const corrected = clock.now;
  const { token } = await service.issueToken(tokenRequest(service));
  // The clock an hour ahead when the credential and the token's principal were last read.
  clock.now += HOUR_MS;
  await service.issueToken(tokenRequest(service));
  await service.authenticate({ kind: "token", token }, service.credentials.project_id);
  clock.now = corrected;
  await service.kms.admin.setPrincipalDisabled(service.credentials.user_id, true);
  // Well past the refresh time (1 s) by the corrected clock, yet before the last read's time.
  clock.now += 5000;

  const password = await t.throwsAsync(service.issueToken(tokenRequest(service)), { instanceOf: KmsError });
  t.is(password?.code, "APIGW.0301", "the secret of a disabled principal");
  const held = await t.throwsAsync(service.authenticate({ kind: "token", token }, service.credentials.project_id), { instanceOf: KmsError });
  t.is(held?.code, "KMS.0302", "a token of a disabled principal");
});

test("with replays rejected, a clock stepped back does not stop the replay memory forgetting: requests dated now keep being accepted", async (t) => {
  const { service, clock } = await openService(t);
  const backend = service.kms.backend;
  const skewSeconds = 300;
  const auth = new Authenticator({
    store: service.kms.store, sealer: credentialSealer(backend), tokens: new TokenIssuer(backend), clockSkewSeconds: skewSeconds,
    rejectReplays: true, maxRememberedSignatures: 3,
  });
  t.teardown(() => auth.close());
  const { ak, sk } = service.credentials;
  let n = 0;
  // The HTTP layer passes only dates inside the skew window of `now`.
  const signed = (signedAt: number): Parameters<Authenticator["authenticate"]>[0] => {
    const stringToSign = `SDK-HMAC-SHA256\n${signedAt}\nrequest ${++n}`;
    return { kind: "aksk", accessKey: ak, signature: createHmac("sha256", sk).update(stringToSign).digest("hex"), stringToSign, signedAt };
  };
  const corrected = clock.now;
  const ahead = signed(corrected + 3_600_000);
  await auth.authenticate(ahead, corrected + 3_600_000);
  // Stepped back an hour; a request near the window's old edge, then a steady trickle.
  await auth.authenticate(signed(corrected - 250_000), corrected);
  for (let second = 100; second < 106; second++) {
    const now = corrected + second * 1000;
    await t.notThrowsAsync(auth.authenticate(signed(now), now), `request at +${second} s`);
  }
  const replay = await t.throwsAsync(auth.authenticate(ahead, corrected + 3_600_000), { instanceOf: KmsError });
  t.is(replay?.code, "APIGW.0301", "the request signed while the clock ran ahead cannot be replayed once the clock gets there");
});

test("a token dies with the credential it was obtained with: expired, made inactive or deleted (IAM: changing an access key invalidates tokens)", async (t) => {
  const { service, clock } = await openService(t);
  const { user_id: userId, project_id: projectId } = service.credentials;
  const kms = service.kms;
  const refreshMs = 1000;
  const credential = async (ak: string, expiresAt: number | null): Promise<string> => {
    const sk = `${ak}-secret-0123456789abcdefghij`;
    const secret = await sealCredentialSecret(credentialSealer(kms.backend), ak, userId, Buffer.from(sk, "utf8"));
    await kms.admin.createCredential({ accessKey: ak, principalId: userId, secret, expiresAt });
    return (await service.issueToken({ password: { accessKey: ak, secretKey: sk }, projectId, requestId: "req", source: "test" })).token;
  };
  const refused = async (token: string, message: string): Promise<void> => {
    const error = await t.throwsAsync(service.authenticate({ kind: "token", token }, projectId), { instanceOf: KmsError }, message);
    t.is(error?.code, "KMS.0302", message);
  };
  const expiring = await credential("AKTESTEXPIRING000001", clock.now + 60_000);
  const deactivated = await credential("AKTESTINACTIVE000001", null);
  const deleted = await credential("AKTESTDELETED0000001", null);
  const kept = (await service.issueToken(tokenRequest(service))).token;
  for (const token of [expiring, deactivated, deleted, kept]) await t.notThrowsAsync(service.authenticate({ kind: "token", token }, projectId));

  await kms.store.principals.updateCredential("AKTESTINACTIVE000001", { status: "inactive" });
  await kms.store.principals.deleteCredential("AKTESTDELETED0000001");
  // Past the credential's expiry (the token itself lives a day) and past the refresh time.
  clock.now += 60_000 + refreshMs;
  await refused(expiring, "a token of an expired credential");
  await refused(deactivated, "a token of an inactive credential");
  await refused(deleted, "a token of a deleted credential");
  await t.notThrowsAsync(service.authenticate({ kind: "token", token: kept }, projectId), "the same principal's token from another credential");
});
