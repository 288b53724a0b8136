// loadConfig: defaults < file < environment < overrides, the HSMKIT_* names, validation errors that
// name the setting, paths made absolute, the frozen result, and maskConfig/configuredPin.
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError, configuredPin, DEFAULT_PORT, DEFAULTS, ENV_NAMES, loadConfig, maskConfig, type ConfigOverrides, type HsmkitConfig,
} from "../../src/config/config.js";

function dir(t: import("ava").ExecutionContext): string {
  const d = mkdtempSync(join(tmpdir(), "hsmkit-config-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function writeJson(d: string, name: string, value: unknown): string {
  const file = join(d, name);
  writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value));
  return file;
}

function at(config: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);
}

test("defaults: the documented port, 127.0.0.1, emulator token, ./.hsmkit resolved against cwd", (t) => {
  const config = loadConfig({ env: {}, cwd: "/srv/app" });
  t.is(DEFAULT_PORT, 8731);
  t.is(config.server.port, DEFAULT_PORT);
  t.is(config.server.host, "127.0.0.1");
  t.is(config.token.module, "emulator");
  t.is(config.data, "/srv/app/.hsmkit");
  t.false(config.auth.rejectReplays);
  t.is(config.token.pin, undefined);
  t.deepEqual({ ...config, data: DEFAULTS.data }, { ...DEFAULTS, data: DEFAULTS.data } as HsmkitConfig);
});

test("precedence: defaults < file < environment < overrides, setting by setting", (t) => {
  const d = dir(t);
  const file = writeJson(d, "hsmkit.json", {
    server: { port: 1111, host: "0.0.0.0", bodyLimitBytes: 4096 },
    token: { label: "from-file", sessions: 2 },
    log: { level: "warn" },
    kms: { limits: { tagsPerKey: 5 } },
  });
  const env = { HSMKIT_PORT: "2222", HSMKIT_TOKEN_LABEL: "from-env", HSMKIT_TOKEN_SESSIONS: "3" };
  const overrides: ConfigOverrides = { server: { port: 3333 }, token: { sessions: 7 } };
  const config = loadConfig({ file, env, overrides, cwd: d });
  t.is(config.server.port, 3333, "override beats env and file");
  t.is(config.token.sessions, 7, "override beats env and file");
  t.is(config.token.label, "from-env", "env beats file");
  t.is(config.server.host, "0.0.0.0", "file beats default");
  t.is(config.server.bodyLimitBytes, 4096, "file beats default");
  t.is(config.log.level, "warn", "file beats default");
  t.is(config.kms.limits.tagsPerKey, 5, "nested file setting");
  t.is(config.kms.limits.grantsPerKey, DEFAULTS.kms.limits.grantsPerKey, "siblings of a nested setting keep their defaults");
  t.is(config.server.requestTimeoutMs, DEFAULTS.server.requestTimeoutMs, "untouched: default");

  const withoutOverrides = loadConfig({ file, env, cwd: d });
  t.is(withoutOverrides.server.port, 2222, "env beats file");
  const fileOnly = loadConfig({ file, env: {}, cwd: d });
  t.is(fileOnly.server.port, 1111);
  t.is(fileOnly.token.label, "from-file");
});

test("HSMKIT_CONFIG names the file when no file is given; an explicit file wins", (t) => {
  const d = dir(t);
  const a = writeJson(d, "a.json", { server: { port: 4001 } });
  const b = writeJson(d, "b.json", { server: { port: 4002 } });
  t.is(loadConfig({ env: { HSMKIT_CONFIG: a } }).server.port, 4001);
  t.is(loadConfig({ file: b, env: { HSMKIT_CONFIG: a } }).server.port, 4002);
});

test("HSMKIT_HOST, HSMKIT_PORT, HSMKIT_DATA and HSMKIT_PIN (the short names)", (t) => {
  const config = loadConfig({ env: { HSMKIT_HOST: "::1", HSMKIT_PORT: "0", HSMKIT_DATA: "state/kms", HSMKIT_PIN: "s3cret" }, cwd: "/var/lib" });
  t.is(config.server.host, "::1");
  t.is(config.server.port, 0);
  t.is(config.data, "/var/lib/state/kms", "a relative HSMKIT_DATA is resolved against cwd");
  t.is(config.token.pin, "s3cret");
  t.is(loadConfig({ env: { HSMKIT_DATA: "/abs/dir" }, cwd: "/elsewhere" }).data, "/abs/dir");
  t.is(loadConfig({ env: { HSMKIT_PORT: " 8080 " } }).server.port, 8080, "surrounding blanks are ignored");
  t.is(loadConfig({ env: { HSMKIT_PORT: "" } }).server.port, DEFAULT_PORT, "an empty variable is no setting");
});

test("every ENV_NAMES entry sets its path, with its type", (t) => {
  const d = dir(t);
  const strings: Record<string, string> = {
    data: "/tmp/hsmkit-env-data",
    "server.host": "10.1.2.3",
    "token.module": "/usr/lib/vendor/libpkcs11.so",
    "token.label": "env-label",
    "token.pin": "987654",
    "token.pinFile": join(d, "pin"),
    "log.level": "debug",
    "store.writer": "worker",
    "kms.tunables.realm": "eu-de",
  };
  for (const { name, path, type } of ENV_NAMES) {
    const current = at(DEFAULTS, path);
    let raw: string;
    let expected: unknown;
    if (type === "integer") {
      expected = (current as number) + 1;
      raw = String(expected);
    } else if (type === "boolean") {
      expected = !(current as boolean);
      raw = expected ? "true" : "false";
    } else {
      expected = strings[path];
      if (expected === undefined) {
        t.fail(`${name}: no sample value for ${path}`);
        continue;
      }
      raw = expected as string;
    }
    t.not(expected, current, `${name}: the sample differs from the default`);
    t.is(at(loadConfig({ env: { [name]: raw } }), path), expected, `${name} → ${path}`);
  }
  for (const [raw, value] of [["1", true], ["yes", true], ["TRUE", true], ["0", false], ["no", false], ["False", false]] as const) {
    t.is(loadConfig({ env: { HSMKIT_SERVER_KMS_THREAD: raw } }).server.kmsThread, value, `boolean ${raw}`);
  }
});

test("invalid settings throw ConfigError naming the setting (or variable, or file)", (t) => {
  const d = dir(t);
  const cases: Array<[string, () => unknown, RegExp]> = [
    ["port out of range", () => loadConfig({ env: {}, overrides: { server: { port: 70000 } } }), /server\.port/u],
    ["negative port", () => loadConfig({ env: {}, overrides: { server: { port: -1 } } }), /server\.port/u],
    ["port as a string in a file", () => loadConfig({ env: {}, file: writeJson(d, "p.json", { server: { port: "80" } }) }), /server\.port/u],
    ["body limit too small", () => loadConfig({ env: {}, overrides: { server: { bodyLimitBytes: 10 } } }), /server\.bodyLimitBytes/u],
    ["token TTL under 60 s", () => loadConfig({ env: {}, overrides: { auth: { tokenTtlSeconds: 59 } } }), /auth\.tokenTtlSeconds/u],
    ["clock skew 0", () => loadConfig({ env: {}, overrides: { auth: { clockSkewSeconds: 0 } } }), /auth\.clockSkewSeconds/u],
    ["rejectReplays not boolean", () => loadConfig({ env: {}, overrides: { auth: { rejectReplays: "yes" as unknown as boolean } } }), /auth\.rejectReplays/u],
    ["label over 32 characters", () => loadConfig({ env: {}, overrides: { token: { label: "x".repeat(33) } } }), /token\.label/u],
    ["empty module", () => loadConfig({ env: {}, overrides: { token: { module: "" } } }), /token\.module/u],
    ["empty PIN", () => loadConfig({ env: {}, overrides: { token: { pin: "" } } }), /token\.pin/u],
    ["sessions 0", () => loadConfig({ env: {}, overrides: { token: { sessions: 0 } } }), /token\.sessions/u],
    ["KMS thread heap under 64 MB", () => loadConfig({ env: {}, overrides: { server: { kmsThreadHeapMb: 63 } } }), /server\.kmsThreadHeapMb/u],
    ["KMS thread heap not an integer", () => loadConfig({ env: { HSMKIT_SERVER_KMS_THREAD_HEAP_MB: "512MB" } }), /HSMKIT_SERVER_KMS_THREAD_HEAP_MB/u],
    ["KMS thread heap over 64 GiB", () => loadConfig({ env: { HSMKIT_SERVER_KMS_THREAD_HEAP_MB: "65537" } }), /server\.kmsThreadHeapMb/u],
    ["log level", () => loadConfig({ env: {}, overrides: { log: { level: "loud" } } }), /log\.level/u],
    ["kms limit", () => loadConfig({ env: {}, overrides: { kms: { limits: { tagsPerKey: -1 } } } }), /kms\.limits\.tagsPerKey/u],
    ["kms realm", () => loadConfig({ env: {}, overrides: { kms: { tunables: { realm: "" } } } }), /kms\.tunables\.realm/u],
    ["unknown setting", () => loadConfig({ env: {}, overrides: { server: { bogus: 1 } as never } }), /server\.bogus/u],
    ["unknown top-level setting in a file", () => loadConfig({ env: {}, file: writeJson(d, "u.json", { serverr: {} }) }), /serverr/u],
    ["object expected", () => loadConfig({ env: {}, file: writeJson(d, "o.json", { server: 8080 }) }), /server must be an object/u],
    ["integer variable", () => loadConfig({ env: { HSMKIT_PORT: "80a" } }), /HSMKIT_PORT/u],
    ["float variable", () => loadConfig({ env: { HSMKIT_SERVER_BODY_LIMIT_BYTES: "1.5" } }), /HSMKIT_SERVER_BODY_LIMIT_BYTES/u],
    ["boolean variable", () => loadConfig({ env: { HSMKIT_AUTH_REJECT_REPLAYS: "maybe" } }), /HSMKIT_AUTH_REJECT_REPLAYS/u],
    ["variable out of range", () => loadConfig({ env: { HSMKIT_PORT: "65536" } }), /server\.port/u],
    ["file not JSON", () => loadConfig({ env: {}, file: writeJson(d, "bad.json", "{ port: 1 ") }), /bad\.json.*not valid JSON/u],
    ["file not an object", () => loadConfig({ env: {}, file: writeJson(d, "arr.json", "[1]") }), /arr\.json must hold a JSON object/u],
    ["file missing", () => loadConfig({ env: {}, file: join(d, "absent.json") }), /cannot read the config file .*absent\.json/u],
  ];
  for (const [name, load, pattern] of cases) {
    const error = t.throws(load, { instanceOf: ConfigError }, name);
    t.regex(error?.message ?? "", pattern, name);
  }
});

test("Object.prototype's names (toString, constructor, __proto__) are unknown settings, in a file or overrides, and pollute nothing", (t) => {
  const d = dir(t);
  // Written as text: an object literal's __proto__ would set a prototype, not a key that JSON.stringify emits.
  const files: Array<[string, RegExp]> = [
    ['{"toString": 1}', /unknown setting toString/u],
    ['{"server": {"constructor": {"name": "x"}}}', /unknown setting server\.constructor/u],
    ['{"kms": {"limits": {"hasOwnProperty": 3}}}', /unknown setting kms\.limits\.hasOwnProperty/u],
    ['{"__proto__": {"toString": 5}}', /unknown setting __proto__/u],
    ['{"token": {"__proto__": {"polluted": true}}}', /unknown setting token\.__proto__/u],
  ];
  files.forEach(([text, pattern], i) => {
    const error = t.throws(() => loadConfig({ env: {}, file: writeJson(d, `proto-${i}.json`, text) }), { instanceOf: ConfigError }, text);
    t.regex(error?.message ?? "", pattern, text);
  });
  const overrides = JSON.parse('{"log": {"__proto__": {"level": "silent"}}, "valueOf": 0}') as ConfigOverrides;
  t.throws(() => loadConfig({ env: {}, overrides }), { instanceOf: ConfigError, message: /unknown setting/u });
  t.is(({} as Record<string, unknown>)["polluted"], undefined);
  t.is(Object.getPrototypeOf(loadConfig({ env: {} })), Object.prototype);
});

test("a config file that is not JSON is reported by position, never by quoting it: it may hold the PIN", (t) => {
  const d = dir(t);
  // V8 quotes the text around an unexpected token; these are the usual slips around a PIN.
  const files: Array<[string, string]> = [
    ["unquoted", '{"token": {"pin": s3cretPIN-4711}}'],
    ["single quotes", "{\"token\": {\"pin\": 's3cretPIN-4711'}}"],
    ["missing comma", '{"token": {"label": "kms"\n  "pin": "s3cretPIN-4711"}}'],
    ["unterminated", '{"token": {"pin": "s3cretPIN-4711'],
  ];
  for (const [name, text] of files) {
    const error = t.throws(() => loadConfig({ env: {}, file: writeJson(d, `${name}.json`, text) }), { instanceOf: ConfigError }, name);
    t.regex(error?.message ?? "", /not valid JSON/u, name);
    t.false((error?.message ?? "").includes("s3cret"), `${name}: ${error?.message}`);
  }
  const located = t.throws(() => loadConfig({ env: {}, file: writeJson(d, "comma.json", '{"server": {"port": 1}\n "log": {}}') }), { instanceOf: ConfigError });
  t.regex(located?.message ?? "", /line 2, column 2/u);
});

test("relative data, token.pinFile and token.module paths are resolved against cwd; a bare library name is left to the loader", (t) => {
  const config = loadConfig({ env: {}, cwd: "/opt/kms", overrides: { data: "d", token: { pinFile: "secrets/pin", module: "./lib/libsofthsm2.so" } } });
  t.is(config.data, "/opt/kms/d");
  t.is(config.token.pinFile, "/opt/kms/secrets/pin");
  t.is(config.token.module, "/opt/kms/lib/libsofthsm2.so");
  t.is(loadConfig({ env: {}, cwd: "/opt/kms", overrides: { token: { module: "libsofthsm2.so" } } }).token.module, "libsofthsm2.so");
  t.is(loadConfig({ env: {}, cwd: "/opt/kms" }).token.module, "emulator");
});

test("the result is frozen all the way down", (t) => {
  const config = loadConfig({ env: {} });
  for (const node of [config, config.server, config.auth, config.token, config.log, config.kms, config.kms.limits, config.kms.tunables]) t.true(Object.isFrozen(node));
  t.throws(() => {
    (config.server as { port: number }).port = 1;
  }, { instanceOf: TypeError });
  t.throws(() => {
    (config.kms.limits as { tagsPerKey: number }).tagsPerKey = 1;
  }, { instanceOf: TypeError });
  t.is(config.server.port, DEFAULT_PORT);
  // Loading again is not affected by what a previous result was (DEFAULTS is not shared).
  const other = loadConfig({ env: {}, overrides: { server: { port: 1234 } } });
  t.is(other.server.port, 1234);
  t.is(loadConfig({ env: {} }).server.port, DEFAULT_PORT);
});

test("maskConfig hides the PIN (and only the PIN); the configuration itself keeps it", (t) => {
  const config = loadConfig({ env: { HSMKIT_TOKEN_PIN: "pin-Secret-4711" } });
  const masked = maskConfig(config);
  t.is(masked.token.pin, "***");
  t.false(JSON.stringify(masked).includes("pin-Secret-4711"));
  t.is(config.token.pin, "pin-Secret-4711");
  t.deepEqual({ ...masked, token: { ...masked.token, pin: "pin-Secret-4711" } }, config as HsmkitConfig);
  t.is(maskConfig(loadConfig({ env: {} })).token.pin, undefined, "no PIN: nothing to mask, no placeholder invented");
});

test("configuredPin: pin, else pinFile's content without the trailing newline; an empty or missing file is a ConfigError", (t) => {
  const d = dir(t);
  const pinFile = join(d, "pin");
  writeFileSync(pinFile, "from-file-1234\n");
  t.is(configuredPin(loadConfig({ env: {}, overrides: { token: { pinFile } } })), "from-file-1234");
  t.is(configuredPin(loadConfig({ env: {}, overrides: { token: { pinFile, pin: "direct" } } })), "direct", "pin wins over pinFile");
  t.is(configuredPin(loadConfig({ env: {} })), undefined);
  writeFileSync(pinFile, "\n");
  t.throws(() => configuredPin(loadConfig({ env: {}, overrides: { token: { pinFile } } })), { instanceOf: ConfigError, message: /empty/u });
  t.throws(() => configuredPin(loadConfig({ env: {}, overrides: { token: { pinFile: join(d, "none") } } })), { instanceOf: ConfigError, message: /token\.pinFile/u });
});
