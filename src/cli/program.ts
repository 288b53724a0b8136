/**
 * The hsmkit command tree: every top-level command, the module defining it, and what the root
 * adds to them all. main.ts parses the command line with it; test/cli/help.test.ts walks it.
 */
import { Command } from "commander";

/**
 * Each top-level command and the module defining it, loaded on demand: a command pays only for its
 * own imports (the server's, the benchmark's and the token tools' are large), while --help and an
 * unknown command still see them all.
 */
const COMMANDS: Record<string, () => Promise<Command[]>> = {
  status: async () => [(await import("./status.js")).statusCommand()],
  token: async () => [(await import("./token.js")).tokenCommand()],
  bench: async () => [(await import("./bench.js")).benchCommand()],
  serve: async () => [(await import("./serve.js")).serveCommand()],
  init: async () => [(await import("./init.js")).initCommand()],
  config: async () => [(await import("./config.js")).configCommand()],
  keys: async () => [(await import("./keys.js")).keysCommand()],
  encrypt: async () => [(await import("./crypto.js")).encryptCommand()],
  decrypt: async () => [(await import("./crypto.js")).decryptCommand()],
  datakey: async () => [(await import("./crypto.js")).datakeyCommand()],
  random: async () => [(await import("./crypto.js")).randomCommand()],
  grants: async () => [(await import("./grants.js")).grantsCommand()],
  audit: async () => [(await import("./audit.js")).auditCommand()],
  users: async () => [(await import("./users.js")).usersCommand()],
};

/** What follows a usage error, commander's or a CommandLineError. */
const USAGE_HINT = "(run with --help for usage)";

/**
 * A command line that cannot run as given, found by a command's own checks rather than by
 * commander's (options that exclude each other, a value no option parser sees, an input file that
 * is not there). Reported as commander reports its own: exit status 2 and the usage hint, so a
 * script can tell "called it wrong" from "it ran and failed" (1).
 */
export class CommandLineError extends Error {}

/** Reports a CommandLineError: one line, the hint, exit status 2. */
export function reportCommandLineError(error: CommandLineError): void {
  process.stderr.write(`hsmkit: ${error.message}\n${USAGE_HINT}\n`);
  process.exitCode = 2;
}

/**
 * What addCommand does not pass down: the hint after a usage error, and its exit status. Commander
 * exits 1 for an unknown option or command and a missing or invalid argument; hsmkit keeps 1 for a
 * command that ran and failed, and exits 2 for a command line it could not run (as `hsmkit bench`
 * does for bad flags). Help and --version still exit 0.
 */
function usageErrorsExit2(command: Command): void {
  command
    .showHelpAfterError(USAGE_HINT)
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
  for (const sub of command.commands) usageErrorsExit2(sub);
}

/**
 * The `hsmkit` program: with `named` a top-level command's name, that command alone (the others'
 * modules are not loaded); otherwise every command.
 */
export async function hsmkitProgram(named?: string): Promise<Command> {
  const program = new Command()
    .name("hsmkit")
    .description("An HSM emulator with a PKCS#11 surface and a key management service, over a native crypto core.")
    .version(process.env["npm_package_version"] ?? "0.1.0");
  const load = named !== undefined && Object.hasOwn(COMMANDS, named) ? [COMMANDS[named]!] : Object.values(COMMANDS);
  for (const commands of await Promise.all(load.map((loader) => loader()))) {
    for (const command of commands) program.addCommand(command);
  }
  usageErrorsExit2(program);
  return program;
}
