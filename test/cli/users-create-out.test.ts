/**
 * `hsmkit users create NAME --out FILE` writes the new user's SK to FILE only, so an --out that
 * cannot be written must be refused before the user exists: otherwise the command fails after the
 * user and its credential are in the store, with the SK in no place at all, and running it again
 * makes a second user of the same name.
 */
import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hsmkit } from "./run-cli.js";

test("users create with an --out that cannot be written exits 2 naming it, and creates no user", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hsmkit-users-out-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const d = ["--data", join(dir, "data")];
  const init = await hsmkit(["init", ...d]);
  t.is(init.code, 0, init.stderr);
  const aFile = join(dir, "file");
  writeFileSync(aFile, "");

  const cases: Array<[string, RegExp]> = [
    [join(dir, "missing", "app.json"), /the directory \S+missing does not exist/u],
    [join(aFile, "app.json"), /\S+file is not a directory/u],
    [dir, /it is a directory/u],
  ];
  for (const [out, expected] of cases) {
    const run = await hsmkit(["users", "create", "app", "--out", out, "--force", ...d]);
    t.is(run.code, 2, `${out}: ${run.stderr}`);
    t.is(run.stdout, "", out);
    t.true(run.stderr.startsWith(`hsmkit: --out ${out} cannot be written: `), run.stderr);
    t.regex(run.stderr, expected, out);
    t.regex(run.stderr, /\(run with --help for usage\)\n$/u, out);
  }

  const users = await hsmkit(["users", "list", "--json", ...d]);
  t.is(users.code, 0, users.stderr);
  const names = (JSON.parse(users.stdout) as { users: Array<{ name: string }> }).users.map((u) => u.name);
  t.deepEqual(names, ["admin"], "no user was created by the refused commands");
});
