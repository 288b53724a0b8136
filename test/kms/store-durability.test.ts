// Durability: a child process writing keys, state changes and audit records is killed with SIGKILL
// at random moments, round after round on one store directory (both writers, some kills during
// start-up). After each kill this process reopens the store (taking over the dead lock) and checks
// that every write the child reported acknowledged is there, that the audit chain verifies from the
// first record, and that the usage counters agree with the audit log they are derived from.
import test from "ava";
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { fileURLToPath } from "node:url";
import { openSqliteStore } from "../../src/kms/store/sqlite.js";
import { MAC, tempDir } from "./store-helpers.js";

const ROUNDS = 20;
const CHILD = new URL("./store-durability-child.js", import.meta.url);
const P = "project-durable";

/** Runs the child until it is killed; returns the complete lines it printed. */
function runChild(dir: string, writer: string, round: number): Promise<{ lines: string[]; early: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(CHILD), dir, writer, String(round)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    const kill = (): void => void child.kill("SIGKILL");
    // Every fourth round dies at a random moment of start-up (lock takeover, migration, recovery).
    const early = round % 4 === 0;
    if (early) timer = setTimeout(kill, randomInt(0, 200));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      const first = !stdout.includes("ready\n");
      stdout += chunk;
      if (!early && first && stdout.includes("ready\n")) timer = setTimeout(kill, randomInt(5, 400));
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`the child exited by itself (${code ?? signal}): ${stderr}`));
      else resolve({ lines: stdout.split("\n").slice(0, -1), early: !stdout.includes("ready\n") });
    });
  });
}

test("SIGKILL at random moments never loses an acknowledged write nor breaks the audit chain", async (t) => {
  t.timeout(240_000);
  const dir = tempDir(t, "hsmkit-kms-durable-");
  const keys = new Map<string, string>();
  const disabled = new Set<string>();
  const audits = new Map<number, string>();
  let killedEarly = 0;
  let recoveries = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const writer = round % 2 === 0 ? "inline" : "worker";
    const { lines, early } = await runChild(dir, writer, round);
    if (early) killedEarly++;
    for (const line of lines) {
      const [kind, a, b] = line.split(" ") as [string, string, string];
      if (kind === "K") keys.set(a, b);
      else if (kind === "S") disabled.add(a);
      else if (kind === "A") audits.set(Number(a), b);
      else t.is(kind, "ready", line);
    }
    const store = await openSqliteStore({ directory: dir, mac: MAC, writer: "inline", warn: () => {} });
    try {
      const missingKeys = [];
      for (const [keyId, alias] of keys) {
        const key = await store.keys.getForUse(P, keyId);
        if (key?.key.alias !== alias || key.version?.material.toString() !== `material-${keyId}`) missingKeys.push(keyId);
        else if (disabled.has(keyId) && key.key.state !== 3) missingKeys.push(`${keyId} (state ${key.key.state})`);
      }
      t.deepEqual(missingKeys, [], `round ${round}: acknowledged keys and state changes`);
      const missingAudit = [];
      for (const [seq, requestId] of audits) {
        const { records } = await store.audit.query({ afterSeq: seq - 1, limit: 1 });
        if (records[0]?.seq !== seq || records[0].requestId !== requestId) missingAudit.push(seq);
      }
      t.deepEqual(missingAudit, [], `round ${round}: acknowledged audit records`);
      const verdict = await store.audit.verify();
      t.true(verdict.ok, `round ${round}: ${verdict.ok ? "" : verdict.message}`);
      if (verdict.ok) recoveries = verdict.recoveryCheckpoints.length;
      // Usage counters are recounted from the log after a crash: they match it exactly.
      const sample = [...keys.keys()].slice(-3);
      for (const keyId of sample) {
        const usage = await store.usage.get(P, keyId);
        const encrypts = (await store.audit.query({ projectId: P, keyId, action: "encryptData", outcome: "success", limit: 1000 })).records.length;
        t.is(usage.find((u) => u.action === "encryptData")?.count ?? 0, encrypts, `round ${round}: usage of ${keyId}`);
      }
    } finally {
      await store.close();
    }
  }
  t.log(`${ROUNDS} rounds, ${killedEarly} killed during start-up: ${keys.size} keys, ${disabled.size} state changes and ${audits.size} audit records acknowledged; ${recoveries} recovery checkpoints`);
  t.true(keys.size > 0 && audits.size > 0 && disabled.size > 0);
});
