/**
 * `npm run bench:pkcs11`: the emulator against SoftHSMv2, both driven by the same pkcs11js calls
 * in one process: C_EncryptInit + C_Encrypt AES-256-GCM at 1 KiB, C_WrapKey of an AES-256 key
 * with CKM_AES_KEY_WRAP_PAD, C_GenerateRandom of 32 bytes — the issue's three targets, as ratios.
 *
 *   node dist/bench/pkcs11.js [--quick] [--json FILE]
 *
 * SoftHSMv2 gets a fresh token in a temporary directory (softhsm2-util), is initialized with
 * CKF_OS_LOCKING_OK, and is skipped with the reason when not installed.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { Emulator } from "../emulator/index.js";
import { pkcs11, type Handle, type PKCS11 } from "../emulator/pkcs11.js";
import { measure, type Measurement, type Trial } from "./harness.js";

const P = pkcs11;
const { values } = parseArgs({ options: { quick: { type: "boolean", default: false }, json: { type: "string" } } });
const timing = values.quick ? { runSeconds: 0.05, runs: 3 } : { runSeconds: 0.25, runs: 5 };
const SOFTHSM = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].find((p) => existsSync(p));

function session(p11: PKCS11): Handle {
  const slot = p11.C_GetSlotList(true)[0]!;
  const handle = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
  p11.C_Login(handle, P.CKU_USER, "1234");
  return handle;
}

function trials(target: string, p11: PKCS11, s: Handle): Trial[] {
  const aes = (extra: Array<{ type: number; value: boolean }>): Handle =>
    p11.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_VALUE_LEN, value: 32 },
      { type: P.CKA_TOKEN, value: false }, { type: P.CKA_SENSITIVE, value: true }, ...extra,
    ]);
  const key = aes([{ type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_EXTRACTABLE, value: true }]);
  const kek = aes([{ type: P.CKA_WRAP, value: true }, { type: P.CKA_EXTRACTABLE, value: false }]);
  const plaintext = randomBytes(1024);
  const out = Buffer.alloc(2048);
  const iv = Buffer.alloc(12);
  const random = Buffer.alloc(32);
  return [
    {
      target, op: "gcm-encrypt-init+encrypt", bytes: 1024, batch: 1, opsPerIteration: 1,
      body: (n) => {
        for (let i = 0; i < n; i++) {
          iv.writeUInt32BE(i >>> 0, 8);
          p11.C_EncryptInit(s, { mechanism: P.CKM_AES_GCM, parameter: { type: P.CK_PARAMS_AES_GCM, iv, ivBits: 96, tagBits: 128 } as never }, key);
          p11.C_Encrypt(s, plaintext, out);
        }
      },
    },
    {
      target, op: "kwp-wrap-aes256", bytes: 32, batch: 1, opsPerIteration: 1,
      body: (n) => { for (let i = 0; i < n; i++) p11.C_WrapKey(s, { mechanism: P.CKM_AES_KEY_WRAP_PAD }, kek, key, out); },
    },
    {
      target, op: "generate-random", bytes: 32, batch: 1, opsPerIteration: 1,
      body: (n) => { for (let i = 0; i < n; i++) p11.C_GenerateRandom(s, random); },
    },
  ];
}

const results: Measurement[] = [];
const emulator = new Emulator({ slots: [{ token: { label: "bench", soPin: "12345678", userPin: "1234" } }] });
emulator.C_Initialize();
for (const trial of trials("emulator", emulator, session(emulator))) results.push(await measure(trial, timing));

let skipped: string | undefined;
if (SOFTHSM === undefined) {
  skipped = "SoftHSMv2 not installed (apt-get install softhsm2)";
} else {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-bench-softhsm-"));
  mkdirSync(join(dir, "tokens"));
  writeFileSync(join(dir, "softhsm2.conf"), `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env["SOFTHSM2_CONF"] = join(dir, "softhsm2.conf");
  execFileSync("softhsm2-util", ["--init-token", "--free", "--label", "bench", "--pin", "1234", "--so-pin", "12345678"], { stdio: "ignore" });
  const softhsm = new P.PKCS11();
  softhsm.load(SOFTHSM);
  softhsm.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  for (const trial of trials("softhsm2", softhsm, session(softhsm))) results.push(await measure(trial, timing));
  softhsm.C_Finalize();
  rmSync(dir, { recursive: true, force: true });
}

const rows = results.map((r) => {
  const peer = results.find((x) => x.target === "softhsm2" && x.op === r.op);
  return { ...r, ratio_vs_softhsm2: r.target === "emulator" && peer ? Math.round((r.ops_per_s / peer.ops_per_s) * 100) / 100 : undefined };
});
process.stdout.write(`hsmkit bench:pkcs11 — median of ${timing.runs} runs of ~${timing.runSeconds}s${skipped ? `; SoftHSMv2 skipped: ${skipped}` : ""}\n\n`);
process.stdout.write("| op | target | ops/s | MB/s | × SoftHSMv2 |\n|---|---|---:|---:|---:|\n");
for (const r of rows) {
  process.stdout.write(`| ${r.op} | ${r.target} | ${r.ops_per_s.toLocaleString("en-US")} | ${r.mb_per_s} | ${r.ratio_vs_softhsm2 ?? ""} |\n`);
}
if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(rows.map(({ runs: _r, ...row }) => row), null, 2) + "\n");
