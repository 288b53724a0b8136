/**
 * The KMS backend and envelope on the emulator and on SoftHSMv2, in one process, through the same
 * code (src/kms/backend/graphene.ts): the shapes of the KMS's hot operations, one core.
 *
 *   node dist/bench/kms-backend.js [--quick] [--json FILE]
 *
 * Rows (1 KiB unless named): backend GCM encrypt and decrypt alone; random (32 bytes from the
 * token, as create-datakey draws a key); encrypt-data shape (Envelope.seal with a
 * two-pair context: IV from the token in batches, GCM in the token); decrypt-data shape
 * (Envelope.open); create-datakey shape (32 random bytes from the token, sealed); decrypt with a
 * cold handle cache (every call unwraps the version again); a new version key (generate, wrap,
 * destroy); an audit-checkpoint MAC. No store, no audit, no HTTP: the ceiling the service layer
 * spends from. SoftHSMv2 gets a fresh token in a temporary directory and is skipped with the
 * reason when not installed. Compare only ratios within one run (shared VM, ±10–20 %).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Emulator } from "../emulator/index.js";
import type { KmsBackend } from "../src/kms/backend/backend.js";
import { openBackend } from "../src/kms/backend/graphene.js";
import type { ModuleSource } from "../src/kms/backend/module-loader.js";
import { Envelope, type SealTarget } from "../src/kms/envelope/blob.js";
import { measure, type Measurement, type Trial } from "./harness.js";

const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, json: { type: "string" } } });
const timing = values.quick ? { runSeconds: 0.05, runs: 3 } : { runSeconds: 0.25, runs: 5 };
const SOFTHSM = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].find((p) => existsSync(p));
const LABEL = "kms-bench";
const PIN = "1234";
const KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f";
const CONTEXT = { encryptionContext: { bucket: "photos", object: "2024/cat.jpg" } };

function trials(target: string, module: ModuleSource): { trials: Trial[]; close(): void } {
  const backend: KmsBackend = openBackend({ module, tokenLabel: LABEL, pin: PIN });
  const cold: KmsBackend = openBackend({ module, tokenLabel: LABEL, pin: PIN, cacheSize: 1 });
  const envelope = new Envelope(backend);
  const coldEnvelope = new Envelope(cold);
  const target1: SealTarget = { keyId: KEY_ID, version: 1, key: { id: `${KEY_ID}:1`, wrapped: backend.createVersionKey() } };
  const target2: SealTarget = { keyId: KEY_ID, version: 2, key: { id: `${KEY_ID}:2`, wrapped: backend.createVersionKey() } };
  const byVersion = [target1.key, target2.key];
  const kib = backend.random(1024);
  const aad = Buffer.alloc(60, 7);
  const iv = backend.random(12);
  const sealed = backend.encrypt(target1.key, iv, aad, kib);
  const blob = envelope.seal(target1, "data", kib, CONTEXT);
  const blobs = [blob, envelope.seal(target2, "data", kib, CONTEXT)];
  const checkpoint = backend.random(32);
  const row = (op: string, bytes: number, body: (n: number) => void): Trial => ({ target, op, bytes, batch: 1, opsPerIteration: 1, body });
  return {
    trials: [
      row("backend GCM encrypt", 1024, (n) => {
        for (let i = 0; i < n; i++) backend.encrypt(target1.key, iv, aad, kib);
      }),
      row("backend GCM decrypt", 1024, (n) => {
        for (let i = 0; i < n; i++) backend.decrypt(target1.key, iv, aad, sealed);
      }),
      row("random (32 B)", 32, (n) => {
        for (let i = 0; i < n; i++) backend.random(32);
      }),
      row("encrypt-data shape (seal)", 1024, (n) => {
        for (let i = 0; i < n; i++) envelope.seal(target1, "data", kib, CONTEXT);
      }),
      row("decrypt-data shape (open)", 1024, (n) => {
        for (let i = 0; i < n; i++) envelope.open(blob, "data", () => target1.key, CONTEXT);
      }),
      row("create-datakey shape (random 32 + seal)", 32, (n) => {
        for (let i = 0; i < n; i++) envelope.seal(target1, "datakey", backend.random(32), CONTEXT);
      }),
      row("decrypt, cold handle cache (unwrap each call)", 1024, (n) => {
        for (let i = 0; i < n; i++) coldEnvelope.open(blobs[i & 1]!, "data", (h) => byVersion[h.version - 1], CONTEXT);
      }),
      row("new version key (generate, wrap, destroy)", 32, (n) => {
        for (let i = 0; i < n; i++) backend.createVersionKey();
      }),
      row("audit MAC (HMAC-SHA256, 32 B)", 32, (n) => {
        for (let i = 0; i < n; i++) backend.mac(checkpoint);
      }),
    ],
    close() {
      cold.close();
      backend.close();
    },
  };
}

function softHsmToken(): { dir: string } | undefined {
  if (SOFTHSM === undefined) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-kms-bench-"));
  mkdirSync(join(dir, "tokens"));
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  execFileSync("softhsm2-util", ["--init-token", "--free", "--label", LABEL, "--so-pin", "12345678", "--pin", PIN], {
    env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: "pipe",
  });
  process.env.SOFTHSM2_CONF = conf;
  return { dir };
}

const targets: Array<{ name: string; module: () => ModuleSource; cleanup?: () => void }> = [
  { name: "emulator", module: () => new Emulator({ slots: [{ token: { label: LABEL, soPin: "12345678", userPin: PIN } }] }) },
];
const soft = softHsmToken();
if (soft !== undefined) targets.push({ name: "softhsm", module: () => SOFTHSM!, cleanup: () => rmSync(soft.dir, { recursive: true, force: true }) });
else process.stdout.write("softhsm: skipped (libsofthsm2.so not installed)\n");

const results: Measurement[] = [];
for (const target of targets) {
  const set = trials(target.name, target.module());
  try {
    for (const trial of set.trials) {
      await trial.body(values.quick ? 200 : 2000); // warm-up: let the JIT settle before calibrating
      results.push(await measure(trial, timing));
    }
  } finally {
    set.close();
    target.cleanup?.();
  }
}

const ops = [...new Set(results.map((r) => r.op))];
const rate = (target: string, op: string): number | undefined => results.find((r) => r.target === target && r.op === op)?.ops_per_s;
process.stdout.write(`\n${"operation".padEnd(48)} ${"emulator ops/s".padStart(15)} ${"softhsm ops/s".padStart(15)} ${"emu/soft".padStart(9)}\n`);
for (const op of ops) {
  const e = rate("emulator", op);
  const s = rate("softhsm", op);
  const ratio = e !== undefined && s !== undefined ? (e / s).toFixed(2) : "—";
  process.stdout.write(`${op.padEnd(48)} ${String(e ?? "—").padStart(15)} ${String(s ?? "—").padStart(15)} ${ratio.padStart(9)}\n`);
}
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(results, null, 2) + "\n");
