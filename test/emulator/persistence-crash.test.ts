// A process killed with SIGKILL at any moment never leaves a token that fails to open, and never
// loses a change it acknowledged: rounds of a child process changing token objects until killed,
// each followed by a restart in this process that checks every acknowledged change is there.
import test from "ava";
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  attr, CHILD_SCRIPT, churnValue, findAll, handleNumber, openToken, P, tempDir,
} from "./persistence-helpers.js";

const ROUNDS = 25;

interface Pending {
  op: "create" | "generate" | "set" | "destroy";
  handle?: number;
  label?: string;
}

/** Runs one churn child until it is killed; returns the complete lines it printed. */
function churn(dir: string, round: number): Promise<{ lines: string[]; killedEarly: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(CHILD_SCRIPT), "churn", dir, String(round)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let killTimer: NodeJS.Timeout | undefined;
    // A quarter of the rounds die at a random moment of start-up (lock takeover, reading the
    // token, login); the rest while changing objects.
    const early = round % 4 === 0;
    const kill = (): void => {
      child.kill("SIGKILL");
    };
    if (early) killTimer = setTimeout(kill, randomInt(0, 250));
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      const first = !stdout.includes("ready\n");
      stdout += chunk;
      if (!early && first && stdout.includes("ready\n")) killTimer = setTimeout(kill, randomInt(1, 120));
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(killTimer);
      if (signal !== "SIGKILL") reject(new Error(`child exited by itself (${code ?? signal}): ${stderr}`));
      // Only whole lines count: a line cut off by the kill was not fully reported.
      else resolve({ lines: stdout.split("\n").slice(0, -1), killedEarly: !stdout.includes("ready\n") });
    });
  });
}

test("SIGKILL at random moments never breaks the token or loses an acknowledged change", async (t) => {
  t.timeout(120_000);
  const dir = tempDir(t, "hsmkit-crash-");
  // Warnings are the point here (each restart takes over a dead child's lock): collect them.
  const warnings: Array<{ code?: string; message: string }> = [];
  const listeners = process.listeners("warning");
  process.removeAllListeners("warning");
  process.on("warning", (warning) => warnings.push(warning as { code?: string; message: string }));
  t.teardown(() => {
    process.removeAllListeners("warning");
    for (const listener of listeners) process.on("warning", listener);
  });
  openToken(dir).emulator.close();

  /** What the token must hold: handle → label, as acknowledged so far. */
  let model = new Map<number, string>();
  let acknowledged = 0;
  let earlyKills = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const { lines, killedEarly } = await churn(dir, round);
    if (killedEarly) earlyKills++;
    let pending: Pending | null = null;
    for (const line of lines) {
      const [phase, op, a, b] = line.split(" ") as [string, Pending["op"], string | undefined, string | undefined];
      if (phase === "ready") continue;
      if (phase === "begin") {
        pending = op === "create" || op === "generate" ? { op, label: a! } : { op, handle: Number(a), ...(b === undefined ? {} : { label: b }) };
        continue;
      }
      t.is(phase, "done", line);
      acknowledged++;
      pending = null;
      if (op === "destroy") model.delete(Number(a));
      else model.set(Number(a), b!);
    }

    // Restart: the token must open (taking over the dead child's lock) and hold every acknowledged change.
    const warningsBefore = warnings.length;
    const { emulator, session } = openToken(dir);
    const actual = new Map<number, string>();
    for (const handle of findAll(emulator, session)) {
      const id = attr(emulator, session, handle, P.CKA_ID).toString();
      actual.set(handleNumber(handle), attr(emulator, session, handle, P.CKA_LABEL).toString());
      if (id.length > 0 && attr(emulator, session, handle, P.CKA_EXTRACTABLE)[0] === 1) {
        t.true(attr(emulator, session, handle, P.CKA_VALUE).equals(churnValue(id)), `value of ${id}`);
      }
    }
    emulator.close();
    await new Promise((resolve) => setImmediate(resolve));
    const unreadable = warnings.slice(warningsBefore).filter((w) => w.code === "HSMKIT_OBJECT_UNREADABLE");
    t.deepEqual(unreadable.map((w) => w.message), [], `round ${round}: unreadable object files`);

    for (const [handle, label] of model) {
      const got = actual.get(handle);
      if (pending?.op === "destroy" && pending.handle === handle && got === undefined) continue;
      if (pending?.op === "set" && pending.handle === handle && got === pending.label) continue;
      t.is(got, label, `round ${round}: object ${handle} (${label})`);
    }
    const extra = [...actual].filter(([handle]) => !model.has(handle));
    const inFlightCreate = pending?.op === "create" || pending?.op === "generate";
    t.true(extra.length === 0 || (extra.length === 1 && inFlightCreate && extra[0]![1] === pending!.label),
      `round ${round}: objects nobody acknowledged: ${JSON.stringify(extra)} (pending ${JSON.stringify(pending)})`);
    // What is on disk is the truth the next round starts from.
    model = actual;
  }
  t.log(`${ROUNDS} rounds, ${acknowledged} acknowledged changes, ${earlyKills} kills during start-up, ${model.size} objects at the end`);
  t.true(acknowledged > ROUNDS, "the children got work done between kills");
  t.true(warnings.some((w) => w.code === "HSMKIT_STALE_LOCK"), "dead children's locks were taken over with a warning");
});
