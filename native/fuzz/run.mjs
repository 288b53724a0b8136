// `npm run fuzz`: builds the libFuzzer targets with clang (CMake, HSMKIT_FUZZ=ON) into
// build-cmake/fuzz, writes a seed corpus, and runs each target for a bounded time.
//
//   npm run fuzz                                   every target, 60 s each
//   npm run fuzz -- --seconds 300 --only gcm_open_fuzzer
//   npm run fuzz -- --seconds 30 -- -jobs=2        arguments after a second -- go to libFuzzer
//
// Environment: HSMKIT_FUZZ_SECONDS (default 60), HSMKIT_FUZZ_CXX (clang++ to use),
// HSMKIT_VECTORS_DIR (Wycheproof JSON; default ../shared/vectors/wycheproof beside the checkout).
//
// Seeds are generated on every run, never committed: Wycheproof vectors when that directory
// exists (valid and invalid GCM, KW and KWP cases, including 257-byte GCM IVs), plus
// deterministic synthetic cases: valid sealed messages with every tag length 4..16 and
// round-trip inputs with IVs from 1 to 511 bytes and AAD up to 4000 bytes; audit batches and
// framings as JavaScript passes them to auditFrame/auditChain, with the forged offsets of a
// fixed out-of-bounds read among them. What libFuzzer finds beyond them is kept in
// build-cmake/fuzz/corpus/<target> and reused by the next run; crashes go to
// build-cmake/fuzz/artifacts/. Exit status: 0 when every target ran its time without a crash.
import { spawn, spawnSync } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, createWriteStream } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const buildDir = join(root, "build-cmake", "fuzz");
const TARGETS = ["gcm_open_fuzzer", "keywrap_unwrap_fuzzer", "audit_frame_fuzzer"];

// ---- arguments ------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const ours = split >= 0 ? argv.slice(0, split) : argv;
const libFuzzerArgs = split >= 0 ? argv.slice(split + 1) : [];
let seconds = Number(process.env.HSMKIT_FUZZ_SECONDS ?? 60);
let only = null;
for (let i = 0; i < ours.length; i++) {
  if (ours[i] === "--seconds") seconds = Number(ours[++i]);
  else if (ours[i] === "--only") only = ours[++i].split(",");
  else throw new Error(`run.mjs: unknown argument ${ours[i]} (libFuzzer arguments go after a second --)`);
}
if (!Number.isInteger(seconds) || seconds < 1) throw new Error("run.mjs: --seconds must be a positive integer");
const targets = only ?? TARGETS;
for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`run.mjs: unknown target ${t}`);

// ---- build ----------------------------------------------------------------------------------
function which(name) {
  return spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim() || null;
}

function findClang() {
  if (process.env.HSMKIT_FUZZ_CXX) return process.env.HSMKIT_FUZZ_CXX;
  for (const name of ["clang++", "clang++-19", "clang++-16", "clang++-15", "clang++-14"]) {
    const path = which(name);
    if (path) return path;
  }
  throw new Error(
    "run.mjs: no clang++ found. libFuzzer needs clang and its runtime: " +
      "apt-get install -y clang libclang-rt-14-dev libssl-dev (Debian 12)",
  );
}

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const result = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) throw new Error(`run.mjs: ${cmd} failed (${result.status ?? result.signal})`);
}

const cxx = findClang();
const generator = which("ninja") ? ["-G", "Ninja"] : [];
if (!existsSync(join(buildDir, "CMakeCache.txt"))) {
  run("cmake", ["-S", root, "-B", buildDir, ...generator, "-DHSMKIT_FUZZ=ON", `-DCMAKE_CXX_COMPILER=${cxx}`,
    "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]);
}
run("cmake", ["--build", buildDir, "--target", ...targets]);

// ---- seeds ----------------------------------------------------------------------------------
// Deterministic bytes: SHA-256 in counter mode over a label.
function bytes(label, n) {
  const out = Buffer.alloc(n);
  for (let i = 0, block = 0; i < n; block++) {
    const h = createHash("sha256").update(`${label}/${block}`).digest();
    i += h.copy(out, i);
  }
  return out;
}

const KEY_SELECT = { 16: 0, 24: 1, 32: 2 };

function gcmSeed({ flags, key, iv, aad, payload, tagLength }) {
  const header = Buffer.from([flags | KEY_SELECT[key.length], tagLength, iv.length & 0xff,
    (iv.length >> 8) | ((aad.length >> 8) << 4), aad.length & 0xff]);
  return Buffer.concat([header, key, iv, aad, payload]);
}

function kwSeed({ flags, padded, key, payload }) {
  return Buffer.concat([Buffer.from([flags | (padded ? 1 : 0) | (KEY_SELECT[key.length] << 1)]), key, payload]);
}

function writeSeeds(target, seeds) {
  const dir = join(buildDir, "seeds", target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const seed of seeds) {
    writeFileSync(join(dir, createHash("sha1").update(seed).digest("hex")), seed);
  }
  return dir;
}

const vectorsDir = process.env.HSMKIT_VECTORS_DIR ?? resolve(root, "..", "shared", "vectors", "wycheproof");
function wycheproof(file) {
  const path = join(vectorsDir, file);
  if (!existsSync(path)) return [];
  const json = JSON.parse(readFileSync(path, "utf8"));
  return json.testGroups.flatMap((group) => group.tests.map((test) => ({ group, test })));
}

function gcmSeeds() {
  const seeds = [];
  for (const { group, test } of wycheproof("aes_gcm_test.json")) {
    const key = Buffer.from(test.key, "hex");
    const iv = Buffer.from(test.iv, "hex");
    const aad = Buffer.from(test.aad, "hex");
    if (!(key.length in KEY_SELECT) || iv.length > 511 || aad.length > 4095) continue;
    const payload = Buffer.concat([Buffer.from(test.ct, "hex"), Buffer.from(test.tag, "hex")]);
    const flags = [0, 4, 16, 20][test.tcId % 4];
    seeds.push(gcmSeed({ flags, key, iv, aad, payload, tagLength: group.tagSize / 8 }));
  }
  // Valid sealed messages with every tag length: node:crypto's 16-byte tag, truncated (GCM's
  // short tags are prefixes of the full one).
  for (let tagLength = 4; tagLength <= 16; tagLength++) {
    for (const [i, keyLength] of [16, 24, 32].entries()) {
      const label = `gcm/${tagLength}/${keyLength}`;
      const key = bytes(`${label}/key`, keyLength);
      const iv = bytes(`${label}/iv`, [12, 1, 16, 60, 128][(tagLength + i) % 5]);
      const aad = bytes(`${label}/aad`, (tagLength * 7) % 40);
      const plaintext = bytes(`${label}/pt`, (tagLength * 13 + i * 5) % 100);
      const cipher = createCipheriv(`aes-${keyLength * 8}-gcm`, key, iv);
      cipher.setAAD(aad);
      const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag().subarray(0, tagLength)]);
      seeds.push(gcmSeed({ flags: (tagLength % 2) * 4, key, iv, aad, payload: sealed, tagLength }));
      // The same as a round trip (flag 8), where the payload is the plaintext.
      seeds.push(gcmSeed({ flags: 8, key, iv, aad, payload: plaintext, tagLength }));
    }
  }
  // Round trips with AAD past one header byte's reach, on both IV paths; and an empty message.
  for (const [i, aadLength] of [256, 257, 300, 1024, 2047, 4000].entries()) {
    const label = `gcm-aad/${aadLength}`;
    seeds.push(gcmSeed({ flags: 8, key: bytes(`${label}/key`, [16, 24, 32][i % 3]), iv: bytes(`${label}/iv`, i % 2 ? 12 : 200),
      aad: bytes(`${label}/aad`, aadLength), payload: bytes(`${label}/pt`, i * 7), tagLength: 12 + (i % 5) }));
  }
  // Round trips through the long-IV path (IVs over 128 bytes) and its boundary.
  for (const ivLength of [127, 128, 129, 200, 256, 257, 511]) {
    const label = `gcm-long/${ivLength}`;
    seeds.push(gcmSeed({ flags: 8 | 16, key: bytes(`${label}/key`, 32), iv: bytes(`${label}/iv`, ivLength),
      aad: bytes(`${label}/aad`, 20), payload: bytes(`${label}/pt`, 48), tagLength: 16 }));
  }
  return seeds;
}

function kwSeeds() {
  const seeds = [];
  for (const [file, padded] of [["aes_wrap_test.json", false], ["aes_kwp_test.json", true]]) {
    for (const { test } of wycheproof(file)) {
      const key = Buffer.from(test.key, "hex");
      if (!(key.length in KEY_SELECT)) continue;
      seeds.push(kwSeed({ flags: test.tcId % 2 ? 16 : 0, padded, key, payload: Buffer.from(test.ct, "hex") }));
      if (test.result === "valid") seeds.push(kwSeed({ flags: 8, padded, key, payload: Buffer.from(test.msg, "hex") }));
    }
  }
  // Synthetic wraps of every length up to 72 bytes with node:crypto, as unwrap inputs.
  for (let length = 1; length <= 72; length++) {
    for (const padded of [false, true]) {
      if (!padded && (length < 16 || length % 8 !== 0)) continue;
      const keyLength = [16, 24, 32][length % 3];
      const key = bytes(`kw/${padded}/${length}/key`, keyLength);
      const data = bytes(`kw/${padded}/${length}/data`, length);
      const cipher = createCipheriv(`id-aes${keyLength * 8}-wrap${padded ? "-pad" : ""}`, key,
        padded ? Buffer.from("a65959a6", "hex") : Buffer.alloc(8, 0xa6));
      const wrapped = Buffer.concat([cipher.update(data), cipher.final()]);
      seeds.push(kwSeed({ flags: 0, padded, key, payload: wrapped }));
    }
  }
  return seeds;
}

// The audit framing as JavaScript hands it to auditFrame (string ids, times, str-encoded strings
// and their offsets) and auditChain (u32 length || body framing), in audit_frame_fuzzer's layout.
function str(text) {
  const utf8 = Buffer.from(text, "utf8");
  const head = Buffer.alloc(4);
  head.writeUInt32BE(utf8.length);
  return Buffer.concat([head, utf8]);
}

function auditFrameSeed({ strs, offsets, records }) {
  const head = Buffer.from([0, offsets.length - 1, records.length]);
  const offs = Buffer.alloc(4 * offsets.length);
  offsets.forEach((offset, i) => offs.writeUInt32LE(offset >>> 0, 4 * i));
  const ids = Buffer.from(records.flatMap((r) => r.ids));
  const times = Buffer.alloc(8 * records.length);
  records.forEach((r, i) => times.writeDoubleLE(r.time, 8 * i));
  return Buffer.concat([head, offs, ids, times, strs]);
}

function auditChainSeed({ count, bodiesDelta = 0, hashesDelta = 0, framed }) {
  return Buffer.concat([Buffer.from([1, count, bodiesDelta & 0xff, hashesDelta & 0xff]), framed]);
}

function auditSeeds() {
  const seeds = [];
  const texts = ["success", "failure", "encryptData", "genRandom", "req-1", "req-2", "10.0.0.1", "project", "", "KMS.0306",
    "a longer detail string, with UTF-8: \u00e9\u4e2d", "key-0001"];
  const encoded = texts.map(str);
  const strs = Buffer.concat(encoded);
  const offsets = [0];
  for (const e of encoded) offsets.push(offsets.at(-1) + e.length);
  const n = texts.length;
  const records = [];
  for (let i = 0; i < 12; i++) {
    // Required ids 1..n; optional ones 0 (null) or a string; times at the edges of [0, 2^53).
    const pick = (k) => 1 + ((i * 7 + k * 3) % n);
    const ids = [pick(0), pick(1), pick(2), pick(3), ...[4, 5, 6, 7, 8].map((k) => ((i + k) % 3 === 0 ? 0 : pick(k)))];
    records.push({ ids, time: [0, 1, 1_700_000_000_000, 2 ** 53 - 1][i % 4] });
  }
  for (const count of [0, 1, 2, 5, 12]) seeds.push(auditFrameSeed({ strs, offsets, records: records.slice(0, count) }));
  seeds.push(auditFrameSeed({ strs: Buffer.alloc(0), offsets: [0], records: [] }));
  // Refusals: a time just past 2^53, a fraction, a required null, an id past the strings.
  seeds.push(auditFrameSeed({ strs, offsets, records: [{ ids: records[0].ids, time: 2 ** 53 }] }));
  seeds.push(auditFrameSeed({ strs, offsets, records: [{ ids: records[0].ids, time: 0.5 }] }));
  seeds.push(auditFrameSeed({ strs, offsets, records: [{ ids: [0, ...records[0].ids.slice(1)], time: 1 }] }));
  seeds.push(auditFrameSeed({ strs, offsets, records: [{ ids: [...records[0].ids.slice(0, 8), n + 1], time: 1 }] }));
  // Regression (commit a7806a5): an offset past the strings that a later one undercuts; the
  // first string's length prefix was read from past the end of an empty buffer.
  seeds.push(auditFrameSeed({ strs: Buffer.alloc(0), offsets: [0, 2 ** 30, 0], records: [{ ids: [1, 1, 1, 1, 0, 0, 0, 0, 0], time: 1 }] }));
  seeds.push(auditFrameSeed({ strs: Buffer.alloc(2), offsets: [0, 2 ** 30, 2], records: [{ ids: [1, 1, 1, 1, 0, 0, 0, 0, 0], time: 1 }] }));
  // Chain mode: framings of 1..5 bodies, the shortest allowed body, and outputs one byte short.
  const body = (length, fill) => {
    const framed = Buffer.alloc(4 + length, fill);
    framed.writeUInt32BE(length);
    return framed;
  };
  for (let count = 0; count <= 5; count++) {
    const framed = Buffer.concat(Array.from({ length: count }, (_, i) => body(9 + i * 13, i)));
    seeds.push(auditChainSeed({ count, framed }));
    if (count > 0) {
      seeds.push(auditChainSeed({ count, framed, bodiesDelta: -1 }));
      seeds.push(auditChainSeed({ count, framed, hashesDelta: -1 }));
      seeds.push(auditChainSeed({ count: count + 1, framed }));
    }
  }
  seeds.push(auditChainSeed({ count: 1, framed: body(8, 1) }));
  return seeds;
}

const seedDirs = {};
if (targets.includes("gcm_open_fuzzer")) seedDirs.gcm_open_fuzzer = writeSeeds("gcm_open_fuzzer", gcmSeeds());
if (targets.includes("keywrap_unwrap_fuzzer")) seedDirs.keywrap_unwrap_fuzzer = writeSeeds("keywrap_unwrap_fuzzer", kwSeeds());
if (targets.includes("audit_frame_fuzzer")) seedDirs.audit_frame_fuzzer = writeSeeds("audit_frame_fuzzer", auditSeeds());

// ---- run ------------------------------------------------------------------------------------
async function fuzz(target) {
  const corpus = join(buildDir, "corpus", target);
  const artifacts = join(buildDir, "artifacts");
  mkdirSync(corpus, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const args = [`-max_total_time=${seconds}`, "-max_len=4096", "-timeout=10", "-print_final_stats=1",
    `-artifact_prefix=${artifacts}/${target}-`, ...libFuzzerArgs, corpus, seedDirs[target]];
  const logPath = join(buildDir, `${target}.log`);
  console.log(`\n== ${target}: ${seconds} s (log: ${logPath})`);
  console.log(`$ ${join(buildDir, target)} ${args.join(" ")}`);
  const log = createWriteStream(logPath);
  const child = spawn(join(buildDir, target), args, { cwd: buildDir, stdio: ["ignore", "pipe", "pipe"] });
  let last = "";
  const stats = {};
  const pending = { stdout: "", stderr: "" };
  const lines = (stream) => (chunk) => {
    log.write(chunk);
    const parts = (pending[stream] + chunk.toString()).split("\n");
    pending[stream] = parts.pop();
    for (const line of parts) {
      if (/^#\d+\s/.test(line)) last = line;
      const stat = /^stat::(\w+):\s+(\d+)/.exec(line);
      if (stat) stats[stat[1]] = Number(stat[2]);
      if (/ERROR|invariant broken|SUMMARY|Test unit written|^\s+a failed|^\s{5}\S/.test(line)) console.log(`  ${line}`);
      if (/INITED|DONE/.test(line)) console.log(`  ${line}`);
    }
  };
  child.stdout.on("data", lines("stdout"));
  child.stderr.on("data", lines("stderr"));
  const code = await new Promise((done) => child.on("close", (status, signal) => done(status ?? signal)));
  log.end();
  const cov = /cov: (\d+)/.exec(last)?.[1];
  const ft = /ft: (\d+)/.exec(last)?.[1];
  const corp = /corp: (\S+)/.exec(last)?.[1];
  return { target, ok: code === 0, code, execs: stats.number_of_executed_units, execsPerSecond: stats.average_exec_per_sec,
    coverage: cov, features: ft, corpus: corp, peakRssMb: stats.peak_rss_mb };
}

const results = [];
for (const target of targets) results.push(await fuzz(target));
console.log("\ntarget                  result   execs       exec/s  cov   ft    corpus       rss MB");
for (const r of results) {
  console.log(`${r.target.padEnd(24)}${(r.ok ? "ok" : `FAIL(${r.code})`).padEnd(9)}${String(r.execs ?? "-").padEnd(12)}` +
    `${String(r.execsPerSecond ?? "-").padEnd(8)}${String(r.coverage ?? "-").padEnd(6)}${String(r.features ?? "-").padEnd(6)}` +
    `${String(r.corpus ?? "-").padEnd(13)}${r.peakRssMb ?? "-"}`);
}
process.exit(results.every((r) => r.ok) ? 0 : 1);
