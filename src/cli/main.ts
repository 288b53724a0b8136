#!/usr/bin/env node
/**
 * The hsmkit command line. Each subcommand lives in its own module beside this file.
 */
import { Command } from "commander";
import { statusCommand } from "./status.js";
import { tokenCommand } from "./token.js";
import { benchCommand } from "./bench.js";

const program = new Command()
  .name("hsmkit")
  .description("An HSM emulator with a PKCS#11 surface and a key management service, over a native crypto core.")
  .version(process.env["npm_package_version"] ?? "0.1.0")
  .showHelpAfterError("(run with --help for usage)");

program.addCommand(statusCommand());
program.addCommand(tokenCommand());
program.addCommand(benchCommand());

await program.parseAsync(process.argv);
