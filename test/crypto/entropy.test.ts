/**
 * The process-wide generator: entropy sources, SP 800-90B health tests, seeding and status.
 *
 * ava runs each test file in a worker thread of ONE process, and the generator is process-wide.
 * So the scenarios that break the generator on purpose (a stuck or biased replay source, a bad
 * HSMKIT_ENTROPY_SOURCES) run in a child Node process each, where an unseeded generator cannot
 * make another test file's key generation fail. Tests here that only change harmless settings
 * (reseed interval, prediction resistance) run serially and restore them in teardown.
 */
import test, { type ExecutionContext } from "ava";
import { spawnSync } from "node:child_process";

import {
  DEFAULT_RESEED_INTERVAL,
  ENTROPY_SOURCE_NAMES,
  configureRandom,
  randomBytes,
  randomFill,
  randomStatus,
  reseed,
  type RandomStatus,
} from "../../src/crypto/random.js";
import { addon } from "../../src/crypto/addon.js";

// ---- Health-test cutoffs, recomputed here independently ----

/** CRITBINOM(n, p, 1 - alpha): the smallest k with P(X > k) <= alpha, X ~ Binomial(n, p). */
function critbinom(n: number, p: number, log2Alpha: number): number {
  const logChoose = (k: number): number => {
    let sum = 0;
    for (let i = 1; i <= k; i++) sum += Math.log(n - k + i) - Math.log(i);
    return sum;
  };
  const logPmf = (k: number): number => logChoose(k) + k * Math.log(p) + (n - k) * Math.log1p(-p);
  const logAlpha = log2Alpha * Math.LN2;
  let logTail = -Infinity;
  let k = n;
  while (k > 0) {
    const term = logPmf(k);
    const high = Math.max(logTail, term);
    const next = high === -Infinity ? -Infinity : high + Math.log(Math.exp(logTail - high) + Math.exp(term - high));
    if (next > logAlpha) break;
    logTail = next;
    k--;
  }
  return k;
}

test("the reference CRITBINOM reproduces SP 800-90B's APT table (W = 512, alpha = 2^-20)", (t) => {
  const table: [number, number][] = [[0.5, 410], [1, 311], [2, 177], [4, 62], [8, 13]];
  for (const [h, cutoff] of table) t.is(1 + critbinom(512, 2 ** -h, -20), cutoff, `H = ${h}`);
});

test("each source's cutoffs are derived from its H with alpha = 2^-40", (t) => {
  const status = randomStatus();
  t.deepEqual(
    status.sources.filter((s) => s.name !== "replay").map((s) => s.name),
    [...ENTROPY_SOURCE_NAMES],
  );
  for (const source of status.sources) {
    t.true(source.minEntropy > 0 && source.minEntropy <= 8, source.name);
    t.true(source.seedCredit > 0 && source.seedCredit <= 8, source.name);
    t.is(source.rctCutoff, 1 + Math.ceil(40 / source.minEntropy - 1e-9), `${source.name} RCT`);
    t.is(source.aptCutoff, 1 + critbinom(512, 2 ** -source.minEntropy, -40), `${source.name} APT`);
    t.log(
      `${source.name}: available ${source.available}, in service ${source.inService}, H ${source.minEntropy}, ` +
        `credit ${source.seedCredit} bits/byte, RCT cutoff ${source.rctCutoff}, APT cutoff ${source.aptCutoff}`,
    );
  }
  t.is(status.sources.find((s) => s.name === "getrandom")?.hardware, false);
});

// ---- Output and counters (non-destructive, in this process) ----

test("randomBytes returns the requested lengths, across the 64 KiB request boundary", (t) => {
  for (const length of [0, 1, 15, 16, 17, 65_535, 65_536, 65_537, 200_000]) {
    const bytes = randomBytes(length);
    t.is(bytes.length, length);
    if (length >= 16) t.false(bytes.every((b) => b === 0), `length ${length} is not all zero`);
  }
  t.notDeepEqual(randomBytes(32), randomBytes(32));
});

test("randomFill fills any ArrayBufferView in place and takes additional input", (t) => {
  const words = new Uint32Array(64);
  t.is(randomFill(words), words);
  t.true(words.some((w) => w !== 0));
  const backing = new Uint8Array(48);
  const view = new DataView(backing.buffer, 8, 32);
  randomFill(view, Buffer.from("additional input"));
  t.true(backing.subarray(0, 8).every((b) => b === 0), "bytes before the view untouched");
  t.true(backing.subarray(40).every((b) => b === 0), "bytes after the view untouched");
  t.true(backing.subarray(8, 40).some((b) => b !== 0));
});

test("the generator seeds itself on first use and reports where from", (t) => {
  randomBytes(1);
  const status = randomStatus();
  t.true(status.seeded);
  t.not(status.activeSource, null);
  t.true(status.instantiations >= 1);
  const active = status.sources.find((s) => s.name === status.activeSource);
  t.truthy(active);
  t.is(active?.hardware, status.hardware);
  t.true(active !== undefined && active.available && active.inService);
  t.true((active?.bytesDrawn ?? 0) >= 1024, "the start-up test read at least 1024 samples");
  t.log(`active source ${status.activeSource} (hardware ${status.hardware}), order ${status.sourceOrder.join(",")}`);
});

test("status counters move with generate and reseed calls", (t) => {
  const before = randomStatus();
  randomFill(Buffer.alloc(1000));
  randomBytes(70_000);
  const middle = randomStatus();
  t.true(middle.generateCalls >= before.generateCalls + 2);
  t.true(middle.bytesGenerated >= before.bytesGenerated + 71_000);
  reseed(Buffer.from("explicit reseed"));
  reseed();
  const after = randomStatus();
  t.true(after.reseeds + after.instantiations >= middle.reseeds + middle.instantiations + 2);
});

test("a 1 MB sample looks random (entropy per byte, mean, serial correlation; cf. SoftHSMv2 RNGTests::testEnt)", (t) => {
  const sample = randomBytes(1_000_000);
  const counts = new Float64Array(256);
  let sum = 0;
  let sumSquares = 0;
  let sumProducts = 0;
  for (let i = 0; i < sample.length; i++) {
    const x = sample[i] ?? 0;
    counts[x] = (counts[x] ?? 0) + 1;
    sum += x;
    sumSquares += x * x;
    sumProducts += x * (sample[(i + 1) % sample.length] ?? 0);
  }
  const n = sample.length;
  let entropy = 0;
  for (const count of counts) if (count > 0) entropy -= (count / n) * Math.log2(count / n);
  const mean = sum / n;
  // ent's serial correlation coefficient, with wrap-around.
  const correlation = (n * sumProducts - sum * sum) / (n * sumSquares - sum * sum);
  t.log(`entropy ${entropy.toFixed(6)} bits/byte, mean ${mean.toFixed(4)}, serial correlation ${correlation.toFixed(6)}`);
  t.true(entropy > 7.99, `entropy ${entropy}`);
  t.true(Math.abs(mean - 127.5) < 0.5, `mean ${mean}`); // sigma of the mean is ~0.074
  t.true(Math.abs(correlation) < 0.01, `serial correlation ${correlation}`); // sigma is ~0.001
});

// ---- Settings that are safe to change in a shared process: serial, restored afterwards ----

function restoreAfter(t: { teardown(fn: () => void): void }): RandomStatus {
  const saved = randomStatus();
  t.teardown(() => {
    configureRandom({
      predictionResistance: saved.predictionResistance,
      reseedInterval: saved.reseedInterval,
    });
  });
  return saved;
}

test.serial("the reseed interval bounds the generate requests between reseeds", (t) => {
  restoreAfter(t);
  const configured = configureRandom({ reseedInterval: 4 });
  t.is(configured.reseedInterval, 4);
  randomBytes(1); // seeded before counting
  const before = randomStatus();
  for (let i = 0; i < 20; i++) randomBytes(16);
  randomBytes(16 * 65_536); // 16 requests of 64 KiB
  const after = randomStatus();
  // 36 requests with a reseed at least every 5th (reseed_counter runs 1..5 between reseeds).
  t.true(after.reseeds - before.reseeds >= 7, `${after.reseeds - before.reseeds} reseeds`);
});

test.serial("prediction resistance reseeds before every call", (t) => {
  restoreAfter(t);
  const configured = configureRandom({ predictionResistance: true });
  t.true(configured.predictionResistance);
  randomBytes(1);
  const before = randomStatus();
  const calls = 25;
  for (let i = 0; i < calls; i++) {
    if (i % 2 === 0) randomBytes(32);
    else randomFill(Buffer.alloc(32), Buffer.from(`call ${i}`));
  }
  const after = randomStatus();
  t.true(after.reseeds - before.reseeds >= calls, `${after.reseeds - before.reseeds} reseeds for ${calls} calls`);
  t.true(after.generateCalls - before.generateCalls >= calls);
});

test.serial("prediction resistance reseeds before each 64 KiB request of a large call, not only before the call", (t) => {
  // SP 800-90A §9.3.1 steps 7-7.4: prediction resistance is requested per Generate call of the
  // DRBG, and a call here is split into requests of at most 2^19 bits (Table 3).
  restoreAfter(t);
  configureRandom({ predictionResistance: true });
  randomBytes(1);
  const before = randomStatus();
  randomBytes(4 * 65_536);
  randomFill(Buffer.alloc(2 * 65_536 + 1), Buffer.from("additional input"));
  const after = randomStatus();
  // At least: other test files share this process-wide generator and may reseed it meanwhile.
  t.true(after.reseeds - before.reseeds >= 4 + 3, `${after.reseeds - before.reseeds} reseeds for 7 requests`);
});

test.serial("the default configuration", (t) => {
  const status = randomStatus();
  t.is(status.reseedInterval, DEFAULT_RESEED_INTERVAL);
  t.false(status.predictionResistance);
  if (process.env["HSMKIT_ENTROPY_SOURCES"] === undefined) t.deepEqual(status.sourceOrder, [...ENTROPY_SOURCE_NAMES]);
  t.is(status.configurationError, null);
});

// ---- Argument validation ----

test("arguments are validated in TypeScript before reaching native code", (t) => {
  t.throws(() => randomBytes(-1), { instanceOf: RangeError, code: "ERR_OUT_OF_RANGE" });
  t.throws(() => randomBytes(1.5), { instanceOf: TypeError, code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => randomBytes("8" as unknown as number), { instanceOf: TypeError, code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => randomFill("x" as unknown as Uint8Array), { instanceOf: TypeError, code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => randomFill(Buffer.alloc(1), "x" as unknown as Uint8Array), { code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => reseed([1, 2] as unknown as Uint8Array), { code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => configureRandom(null as unknown as object), { instanceOf: TypeError, code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => configureRandom({ sources: [] }), { instanceOf: TypeError, code: "ERR_INVALID_ARG_VALUE" });
  t.throws(() => configureRandom({ sources: ["rdseed", "rdseed"] }), { code: "ERR_INVALID_ARG_VALUE" });
  t.throws(() => configureRandom({ sources: ["urandom" as "rdseed"] }), { code: "ERR_INVALID_ARG_VALUE" });
  t.throws(() => configureRandom({ sources: "rdseed" as unknown as [] }), { code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => configureRandom({ predictionResistance: 1 as unknown as boolean }), { code: "ERR_INVALID_ARG_TYPE" });
  t.throws(() => configureRandom({ reseedInterval: 0 }), { instanceOf: RangeError, code: "ERR_OUT_OF_RANGE" });
  t.throws(() => configureRandom({ reseedInterval: 2 ** 48 + 1 }), { code: "ERR_OUT_OF_RANGE" });
});

test("the native functions check their own arguments too", (t) => {
  t.throws(() => addon.randomFill("x" as unknown as Uint8Array, null), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => addon.randomConfigure(["bogus"], false, 10), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => addon.randomConfigure([], false, 10), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => addon.randomConfigure(["getrandom"], false, 0), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => addon.randomConfigure(["getrandom"], false, 1.5), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => addon.randomUseReplaySourceForTesting(new Uint8Array(0), []), { code: "ERR_NATIVE_INVALID_ARGUMENT" });
  t.throws(() => addon.randomUseReplaySourceForTesting(new Uint8Array(1), ["replay"]), {
    code: "ERR_NATIVE_INVALID_ARGUMENT",
  });
  // None of these changed anything.
  t.is(randomStatus().configurationError, null);
  t.false(randomStatus().sourceOrder.includes("replay"));
});

// ---- Destructive scenarios, each in its own process ----

type Json = Record<string, unknown>;

/**
 * Runs `body` (an ES module snippet with `random`, `testing`, `attempt` and `out` in scope) in a
 * fresh Node process and returns `out`, parsed from its stdout.
 */
function inChildProcess(body: string, env: Record<string, string | undefined> = {}): Json {
  const randomUrl = new URL("../../src/crypto/random.js", import.meta.url).href;
  const testingUrl = new URL("../../src/crypto/testing.js", import.meta.url).href;
  const script = [
    `import * as random from ${JSON.stringify(randomUrl)};`,
    `import * as testing from ${JSON.stringify(testingUrl)};`,
    "const attempt = (fn) => { try { fn(); return null; } catch (e) { return { code: e.code, message: e.message }; } };",
    "const out = {};",
    body,
    "process.stdout.write(JSON.stringify(out));",
  ].join("\n");
  const childEnv: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...env })) if (value !== undefined) childEnv[key] = value;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    env: childEnv,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(`child process failed (status ${result.status}, signal ${result.signal}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as Json;
}

interface SourceJson {
  name: string;
  available: boolean;
  inService: boolean;
  failure: string | null;
  healthFailures: number;
  bytesDrawn: number;
}
interface StatusJson {
  activeSource: string | null;
  seeded: boolean;
  healthFailures: number;
  sourceOrder: string[];
  configurationError: string | null;
  hardware: boolean;
  sources: SourceJson[];
}

const BREAK_AND_RECOVER = `
  const buffer = Buffer.alloc(32, 0xaa);
  out.fillError = attempt(() => random.randomFill(buffer));
  out.zeroed = buffer.every((b) => b === 0);
  out.bytesError = attempt(() => random.randomBytes(16));
  out.reseedError = attempt(() => random.reseed());
  out.failed = random.randomStatus();
  random.configureRandom({ sources: ["rdseed", "rdrand", "hwrng", "getrandom"] });
  out.recovered = random.randomBytes(64).toString("hex");
  out.afterRecovery = random.randomStatus();
`;

function checkBrokenThenRecovered(t: ExecutionContext, out: Json, reason: RegExp): void {
  for (const key of ["fillError", "bytesError", "reseedError"]) {
    t.like(out[key] as Json, { code: "ERR_NATIVE_ENTROPY" }, key);
  }
  t.true(out["zeroed"], "a refused randomFill leaves the buffer zeroed");
  const failed = out["failed"] as StatusJson;
  t.false(failed.seeded);
  t.is(failed.activeSource, null);
  t.is(failed.healthFailures, 1);
  const replay = failed.sources.find((s) => s.name === "replay");
  t.truthy(replay);
  t.false(replay?.inService);
  t.is(replay?.healthFailures, 1);
  t.regex(replay?.failure ?? "", reason);
  t.log(`replay source failure: ${replay?.failure}`);
  t.regex((out["fillError"] as Json)["message"] as string, reason);

  const recovered = out["afterRecovery"] as StatusJson;
  t.true(recovered.seeded);
  t.true(ENTROPY_SOURCE_NAMES.includes(recovered.activeSource as "rdseed"));
  t.is(recovered.healthFailures, 1, "the failure stays on record");
  t.false(recovered.sources.find((s) => s.name === "replay")?.inService, "and the replay source stays out of service");
  t.is((out["recovered"] as string).length, 128);
  t.not(out["recovered"], "0".repeat(128));
}

test("a stuck source fails the repetition count test; the DRBG refuses output until reconfigured", (t) => {
  const out = inChildProcess(`
    random.randomBytes(16); // seeded from a real source first: the replay must also drop that seed
    testing.insecureUseReplayEntropySourceForTesting(new Uint8Array([0x00]));
    out.installed = random.randomStatus();
    ${BREAK_AND_RECOVER}
  `);
  const installed = out["installed"] as StatusJson;
  t.false(installed.seeded, "installing a source drops the current seed");
  t.deepEqual(installed.sourceOrder, ["replay"]);
  checkBrokenThenRecovered(t, out, /repetition count test/);
});

test("a biased source (one value every 3rd byte) passes the RCT but fails the adaptive proportion test", (t) => {
  const out = inChildProcess(`
    const pattern = new Uint8Array(768);
    for (let i = 0; i < pattern.length; i++) {
      const filler = (i * 7 + 1) % 256;
      pattern[i] = i % 3 === 0 ? 0xa5 : filler === 0xa5 ? 0x5a : filler;
    }
    testing.insecureUseReplayEntropySourceForTesting(pattern);
    ${BREAK_AND_RECOVER}
  `);
  checkBrokenThenRecovered(t, out, /adaptive proportion test/);
  const replay = (out["failed"] as StatusJson).sources.find((s) => s.name === "replay");
  t.notRegex(replay?.failure ?? "", /repetition/);
});

test("a failing source is taken out of service and the draw moves on to the next source", (t) => {
  const out = inChildProcess(`
    testing.insecureUseReplayEntropySourceForTesting(new Uint8Array([0xff]), { then: ["getrandom"] });
    out.bytes = random.randomBytes(32).toString("hex");
    out.status = random.randomStatus();
  `);
  const status = out["status"] as StatusJson;
  t.true(status.seeded);
  t.is(status.activeSource, "getrandom");
  t.false(status.hardware, "getrandom is not a hardware source");
  t.deepEqual(status.sourceOrder, ["replay", "getrandom"]);
  t.is(status.healthFailures, 1);
  const replay = status.sources.find((s) => s.name === "replay");
  t.false(replay?.inService);
  t.regex(replay?.failure ?? "", /repetition count test/);
  t.true((status.sources.find((s) => s.name === "getrandom")?.bytesDrawn ?? 0) >= 1024 + 32);
});

test("HSMKIT_ENTROPY_SOURCES sets the source order at first use", (t) => {
  const out = inChildProcess(
    `
    out.status = random.randomStatus();
    out.bytes = random.randomBytes(32).toString("hex");
    out.after = random.randomStatus();
  `,
    { HSMKIT_ENTROPY_SOURCES: " rdrand , getrandom" },
  );
  const status = out["status"] as StatusJson;
  t.deepEqual(status.sourceOrder, ["rdrand", "getrandom"]);
  t.is(status.configurationError, null);
  const after = out["after"] as StatusJson;
  t.true(after.seeded);
  const rdrandAvailable = after.sources.find((s) => s.name === "rdrand")?.available;
  t.is(after.activeSource, rdrandAvailable ? "rdrand" : "getrandom");
  t.is(after.sources.find((s) => s.name === "rdseed")?.bytesDrawn, 0, "rdseed is not in the order");
});

test("an invalid HSMKIT_ENTROPY_SOURCES is reported and refuses output until configureRandom", (t) => {
  const out = inChildProcess(
    `
    out.status = random.randomStatus();
    out.error = attempt(() => random.randomBytes(8));
    random.configureRandom({ sources: ["getrandom"] });
    out.after = random.randomStatus();
    out.bytes = random.randomBytes(8).toString("hex");
  `,
    { HSMKIT_ENTROPY_SOURCES: "rdrand,bogus" },
  );
  const status = out["status"] as StatusJson;
  t.regex(status.configurationError ?? "", /HSMKIT_ENTROPY_SOURCES.*bogus/);
  t.is(status.activeSource, null);
  t.like(out["error"] as Json, { code: "ERR_NATIVE_ENTROPY" });
  t.regex(((out["error"] as Json)["message"] as string) ?? "", /bogus/);
  const after = out["after"] as StatusJson;
  t.is(after.configurationError, null);
  t.deepEqual(after.sourceOrder, ["getrandom"]);
  t.is((out["bytes"] as string).length, 16);
});
