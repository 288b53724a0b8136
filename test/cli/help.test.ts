// Every hsmkit command's --help, walked in-process over the real command tree (no server, no data
// directory): each command that runs something shows an Examples section, and each example is a
// command line for that very command that commander accepts as written.
import test from "ava";
import type { Command } from "commander";
import { hsmkitProgram } from "../../src/cli/program.js";

interface Node {
  path: string[];
  command: Command;
}

function walk(command: Command, path: string[] = []): Node[] {
  return [{ path, command }, ...command.commands.flatMap((sub) => walk(sub, [...path, sub.name()]))];
}

/** What `hsmkit <path> --help` prints, with the text commands add after it. */
function helpOf(command: Command): string {
  let out = "";
  command.configureOutput({ writeOut: (text) => (out += text), writeErr: (text) => (out += text) });
  command.outputHelp();
  return out;
}

/** The indented lines under an `Examples:` heading, up to the next blank line; undefined without one. */
function examplesOf(help: string): string[] | undefined {
  const lines = help.split("\n");
  const at = lines.indexOf("Examples:");
  if (at < 0) return undefined;
  const block: string[] = [];
  for (const line of lines.slice(at + 1)) {
    if (line.trim() === "") break;
    block.push(line);
  }
  return block;
}

/**
 * The words a POSIX shell would pass to hsmkit for one example line: quotes removed, a `$(…)`
 * kept as the one word its quotes make it, and nothing from an unquoted `#`, `<`, `>` or `|` on
 * (a comment or a redirection is the shell's, not hsmkit's).
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unbalanced ${c} in: ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (/\s/u.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if ((c === "#" && word === undefined) || c === "<" || c === ">" || c === "|") {
      break;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/**
 * A fresh program whose commands throw instead of exiting, print nothing, and whose actions only
 * record which command the line reached.
 */
async function dryRunProgram(): Promise<{ program: Command; reached: () => string | undefined }> {
  const program = await hsmkitProgram();
  let reached: string | undefined;
  for (const { path, command } of walk(program)) {
    command.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (command.commands.length === 0 && path.length > 0) command.action(() => void (reached = path.join(" ")));
  }
  return { program, reached: () => reached };
}

test("every command but the root and pure groups has an Examples section, and every example is its own command line that parses", async (t) => {
  const nodes = walk(await hsmkitProgram()).filter((node) => node.path.length > 0);
  t.true(nodes.length >= 40, `only ${nodes.length} commands found`);
  const problems: string[] = [];
  for (const { path, command } of nodes) {
    const name = `hsmkit ${path.join(" ")}`;
    const help = helpOf(command);
    if (/^Example:$/mu.test(help)) problems.push(`${name}: the heading is "Examples:", not "Example:"`);
    const examples = examplesOf(help);
    const group = command.commands.length > 0;
    if (examples === undefined) {
      if (!group) problems.push(`${name}: no Examples section`);
      continue;
    }
    if (examples.length === 0) problems.push(`${name}: an empty Examples section`);
    for (const line of examples) {
      const example = line.trim();
      if (!line.startsWith(`  ${name} `) && line !== `  ${name}`) {
        problems.push(`${name}: "${example}" is not a line of ${name}`);
        continue;
      }
      const { program, reached } = await dryRunProgram();
      try {
        await program.parseAsync(shellWords(example).slice(1), { from: "user" });
      } catch (error) {
        problems.push(`${name}: "${example}" does not parse: ${(error as Error).message}`);
        continue;
      }
      if (group ? !reached()?.startsWith(path.join(" ")) : reached() !== path.join(" ")) problems.push(`${name}: "${example}" reached ${reached()}`);
    }
  }
  t.deepEqual(problems, []);
});

test("the walk's checks can fail: a line of another command, and one that does not parse, are caught", async (t) => {
  t.deepEqual(shellWords(`hsmkit decrypt --blob "$(hsmkit encrypt --key a)" --out x   # comment`), ["hsmkit", "decrypt", "--blob", "$(hsmkit encrypt --key a)", "--out", "x"]);
  t.deepEqual(shellWords("hsmkit audit export --since 7d > week.jsonl"), ["hsmkit", "audit", "export", "--since", "7d"]);
  const { program } = await dryRunProgram();
  await t.throwsAsync(program.parseAsync(["grants", "create", "--key", "photos", "--grantee", "x", "--operations", "encrypt-data"], { from: "user" }));
  const { program: again } = await dryRunProgram();
  await t.throwsAsync(again.parseAsync(["keys", "rotate", "billing", "rotate", "now"], { from: "user" }));
});
