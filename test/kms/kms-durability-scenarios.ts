/**
 * Durability of the Kms, one body for both tokens (kms-durability-emulator.test.ts,
 * kms-durability-softhsm.test.ts): a child process running streams of create-key and encrypt-data
 * (kms-durability-child.ts) is killed with SIGKILL at a random moment, round after round on one
 * token and one store (every fourth round during its start-up). After each round this process
 * opens the Kms on the same data and checks that every key the child reported acknowledged exists,
 * that every ciphertext it reported returned still decrypts to its plaintext, and that the audit
 * chain verifies from the first record.
 */
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Kms } from "../../src/kms/kms.js";
import { openSqliteStore } from "../../src/kms/store/sqlite.js";
import type { ChildToken, TokenFixture, TokenHarness } from "./backend-fixtures.js";
import type { DurabilityChildArgs } from "./kms-durability-child.js";
import { tempDir } from "./store-helpers.js";

const ROUNDS = 15;
const CHILD = fileURLToPath(new URL("./kms-durability-child.js", import.meta.url));
const PROJECT = "durable";
const WRITER = "writer";
const AUDITOR = "auditor";

/** Runs the child until it is killed; returns the complete lines it printed and whether it got ready. */
function runChild(args: DurabilityChildArgs): Promise<{ lines: string[]; ready: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    const kill = (): void => void child.kill("SIGKILL");
    const early = args.round % 4 === 0;
    if (early) timer = setTimeout(kill, randomInt(0, 400));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      const first = !stdout.includes("ready\n");
      stdout += chunk;
      if (!early && first && stdout.includes("ready\n")) timer = setTimeout(kill, randomInt(20, 700));
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`the child exited by itself (${code ?? signal}): ${stderr}`));
      else resolve({ lines: stdout.split("\n").slice(0, -1), ready: stdout.includes("ready\n") });
    });
  });
}

/** A Kms over the token and the store directory, for the parent's checks. */
async function openKms(token: TokenHarness, dir: string, createKeys: boolean): Promise<{ kms: Kms; close(): Promise<void> }> {
  const backend = token.open({ createKeys });
  const store = await openSqliteStore({ directory: dir, mac: { mac: (d) => backend.mac(d), verifyMac: (d, m) => backend.verifyMac(d, m) }, warn: () => {} });
  const kms = new Kms({ backend, store, limits: { customKeysPerProject: 1_000_000 }, warn: () => {} });
  return { kms, close: async () => {
    await store.close();
    backend.close();
  } };
}

async function scenario(t: ExecutionContext, token: TokenHarness): Promise<void> {
  t.timeout(600_000);
  const dir = tempDir(t, "hsmkit-kms-durable-");
  const setup = await openKms(token, dir, true);
  await setup.kms.admin.createPrincipal({ principalId: WRITER, domainId: "d" });
  await setup.kms.admin.createPrincipal({ principalId: AUDITOR, domainId: "d" });
  await setup.kms.admin.addRole(WRITER, PROJECT, "key_admin");
  await setup.kms.admin.addRole(WRITER, PROJECT, "crypto_user");
  await setup.kms.admin.addRole(AUDITOR, PROJECT, "auditor");
  await setup.close();

  const keys = new Set<string>();
  const ciphertexts: Array<{ keyId: string; blob: Buffer; text: Buffer; round: number }> = [];
  let killedEarly = 0;
  let auditRecords = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const handed: ChildToken = token.handOver();
    const { lines, ready } = await runChild({ token: handed, dir, round, projectId: PROJECT, principalId: WRITER });
    if (!ready) killedEarly++;
    const fresh: typeof ciphertexts = [];
    for (const line of lines) {
      const [kind, keyId, blob, text] = line.split(" ") as [string, string, string, string];
      if (kind === "K") keys.add(keyId);
      else if (kind === "C") fresh.push({ keyId, blob: Buffer.from(blob, "hex"), text: Buffer.from(text, "hex"), round });
      else t.is(kind, "ready", line);
    }
    ciphertexts.push(...fresh);

    const check = await openKms(token, dir, false);
    try {
      const ctx = { projectId: PROJECT, principalId: WRITER, requestId: `check-${round}`, source: "parent" };
      const listed = new Set<string>();
      let marker: string | undefined;
      do {
        const page = await check.kms.listKeys(ctx, { marker });
        for (const keyId of page.keys) listed.add(keyId);
        marker = page.nextMarker ?? undefined;
      } while (marker !== undefined);
      const lost = [...keys].filter((keyId) => !listed.has(keyId));
      t.deepEqual(lost, [], `round ${round}: every acknowledged key exists`);
      // The new ciphertexts every round, all of them in the last.
      const toCheck = round === ROUNDS ? ciphertexts : fresh;
      const failures = (await Promise.all(toCheck.map(async ({ blob, text, round: made }) => {
        try {
          const opened = await check.kms.decryptData({ ...ctx, requestId: `check-${round}-${made}` }, { cipherText: blob, encryptionContext: { round: String(made) } });
          return opened.plainText.equals(text) ? null : "wrong plaintext";
        } catch (error) {
          return String((error as Error & { code?: string }).code ?? error);
        }
      }))).filter((failure) => failure !== null);
      t.deepEqual(failures, [], `round ${round}: every acknowledged ciphertext decrypts`);
      const verdict = await check.kms.verifyAuditLog({ ...ctx, principalId: AUDITOR });
      t.true(verdict.ok, `round ${round}: ${JSON.stringify(verdict)}`);
      if (verdict.ok) auditRecords = verdict.records;
    } finally {
      await check.close();
    }
  }
  t.true(keys.size > 0 && ciphertexts.length > 0, "the child got work done");
  t.log(`${ROUNDS} rounds (${killedEarly} killed during start-up): ${keys.size} keys and ${ciphertexts.length} ciphertexts acknowledged, all intact; ${auditRecords} audit records verify`);
}

/** Each round's kill leaves the emulator's token lock behind, which this process then takes over, as intended: not worth a warning each. */
function quietStaleLocks(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const options = rest[0];
    const code = typeof options === "object" && options !== null ? (options as { code?: string }).code : rest[1];
    if (code === "HSMKIT_STALE_LOCK") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

export function registerDurability(fixture: TokenFixture): void {
  quietStaleLocks();
  const title = `${fixture.name} › SIGKILL at random moments during create-key and encrypt-data never loses an acknowledged key or ciphertext, and the audit chain verifies`;
  if (fixture.missing !== undefined) {
    test.skip(`${title} — skipped: ${fixture.missing}`, () => {});
    return;
  }
  const register = fixture.serial ? test.serial : test;
  register(title, async (t) => scenario(t, fixture.setup(t)));
}
