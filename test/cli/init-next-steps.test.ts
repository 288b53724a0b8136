/**
 * `hsmkit init` ends with the commands to run next. A user pastes them into a shell, so a data
 * directory whose path holds a space or a shell character must come out as one quoted word, and
 * the suggested command must then work as printed.
 */
import test from "ava";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hsmkit } from "./run-cli.js";

/** The words a POSIX shell makes of `line`, as it would pass them to a command. */
function shellWords(line: string): string[] {
  const out = execFileSync("sh", ["-c", `for word in ${line}; do printf '%s\\0' "$word"; done`], { encoding: "utf8" });
  return out.split("\0").slice(0, -1);
}

test("init's next steps quote a data directory with spaces and quotes, and the suggested command runs as printed", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-init-next-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, "my data's $HOME");
  const init = await hsmkit(["init", "--data", data]);
  t.is(init.code, 0, init.stderr);
  const next = /^Next: hsmkit (serve .*?)   or, without a server:   hsmkit (keys create .*)$/mu.exec(init.stdout);
  t.truthy(next, init.stdout);
  t.deepEqual(shellWords(next![1]!), ["serve", "--data", data]);
  const words = shellWords(next![2]!);
  t.deepEqual(words, ["keys", "create", "my-key", "--data", data]);
  const created = await hsmkit(words);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /my-key/u);
});
