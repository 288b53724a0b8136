// token.pinFile as an operator writes it: with an editor's or echo's line endings, by mistake a
// directory or an empty file, and with the permissions a Kubernetes secret volume gives by default.
// The PIN (here "4711-secret") must never appear in a message.
import test from "ava";
import type { ExecutionContext } from "ava";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, configuredPin, loadConfig, pinFileWarning } from "../../src/config/config.js";

const PIN = "4711-secret";

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-pin-file-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A configuration whose token.pinFile is `content` written to a file of `mode`. */
function withPinFile(t: ExecutionContext, content: string, mode = 0o600): { file: string; config: ReturnType<typeof loadConfig> } {
  const file = join(tempDir(t), "pin");
  writeFileSync(file, content);
  chmodSync(file, mode);
  return { file, config: loadConfig({ env: { HSMKIT_TOKEN_PIN_FILE: file } }) };
}

for (const [what, content] of [
  ["a bare PIN", PIN],
  ["a LF line", `${PIN}\n`],
  ["a CRLF line (Windows editors)", `${PIN}\r\n`],
  ["a line then a blank one", `${PIN}\n\n`],
  ["a CRLF line then a blank one", `${PIN}\r\n\r\n`],
  ["a byte order mark (PowerShell's UTF-8)", `\uFEFF${PIN}\r\n`],
] as const) {
  test(`the PIN is the file's first line: ${what}`, (t) => {
    t.is(configuredPin(withPinFile(t, content).config), PIN);
  });
}

test("an empty file, one whose first line is empty, and a directory are refused, naming the file and what to do", (t) => {
  for (const [content, problem] of [["", "is empty"], ["\r\n", "is empty"], [`\r\n${PIN}\n`, "has nothing on its first line"]] as const) {
    const { file, config } = withPinFile(t, content);
    const error = t.throws(() => configuredPin(config), { instanceOf: ConfigError });
    t.is(error!.message, `token.pinFile ${file} ${problem}: write the PIN there`);
    t.false(error!.message.includes(PIN));
  }
  const dir = join(tempDir(t), "secrets");
  mkdirSync(dir);
  const error = t.throws(() => configuredPin(loadConfig({ env: { HSMKIT_TOKEN_PIN_FILE: dir } })), { instanceOf: ConfigError });
  t.is(error!.message, `token.pinFile ${dir} is a directory: name the file that holds the PIN`);
});

test("a missing file says which setting names it", (t) => {
  const file = join(tempDir(t), "nope");
  const error = t.throws(() => configuredPin(loadConfig({ env: { HSMKIT_TOKEN_PIN_FILE: file } })), { instanceOf: ConfigError });
  t.regex(error!.message, /ENOENT.*HSMKIT_TOKEN_PIN_FILE/u);
});

if (process.platform !== "win32") {
  test("a PIN file other users may read is warned about with its mode and the chmod that fixes it; 0600 and 0400 are not", (t) => {
    for (const [mode, who] of [[0o644, "every user of this machine"], [0o640, "its group"], [0o620, "other users"]] as const) {
      const { file, config } = withPinFile(t, `${PIN}\n`, mode);
      const warning = pinFileWarning(config);
      t.is(warning, `token.pinFile ${file} is open to ${who} (mode 0${mode.toString(8)}), and its PIN unlocks every key in the token: ` +
        `chmod 600 ${file} (on Kubernetes, defaultMode: 0400 on the secret's volume)`);
      t.is(configuredPin(config), PIN, "a warning, not a refusal");
    }
    for (const mode of [0o600, 0o400]) t.is(pinFileWarning(withPinFile(t, `${PIN}\n`, mode).config), undefined, mode.toString(8));
  });

  test("no warning when token.pin overrides the file, or when there is no file to read", (t) => {
    const { file } = withPinFile(t, `${PIN}\n`, 0o644);
    t.is(pinFileWarning(loadConfig({ env: { HSMKIT_TOKEN_PIN_FILE: file, HSMKIT_TOKEN_PIN: "other-pin" } })), undefined);
    t.is(pinFileWarning(loadConfig({ env: { HSMKIT_TOKEN_PIN_FILE: join(tempDir(t), "nope") } })), undefined);
    t.is(pinFileWarning(loadConfig({ env: {} })), undefined);
  });
}

test("a layer that names the PIN one way replaces how a lower layer named it (file < env < overrides)", (t) => {
  const dir = tempDir(t);
  const pinFile = join(dir, "pin");
  writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });
  const configFile = join(dir, "hsmkit.json");
  writeFileSync(configFile, JSON.stringify({ token: { pin: "from-the-file" } }));
  // The environment's PIN file beats the config file's PIN, as the environment beats the file.
  t.is(configuredPin(loadConfig({ file: configFile, env: { HSMKIT_TOKEN_PIN_FILE: pinFile } })), PIN);
  t.is(configuredPin(loadConfig({ file: configFile, env: {} })), "from-the-file");
  // And the other way round; overrides beat both.
  writeFileSync(configFile, JSON.stringify({ token: { pinFile } }));
  t.is(configuredPin(loadConfig({ file: configFile, env: { HSMKIT_TOKEN_PIN: "from-env" } })), "from-env");
  t.is(configuredPin(loadConfig({ file: configFile, env: { HSMKIT_TOKEN_PIN: "from-env" }, overrides: { token: { pinFile } } })), PIN);
  // Within one layer the PIN itself still wins over its file.
  t.is(configuredPin(loadConfig({ env: { HSMKIT_TOKEN_PIN: "both", HSMKIT_TOKEN_PIN_FILE: pinFile } })), "both");
});
