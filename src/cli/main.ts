#!/usr/bin/env node
/**
 * The hsmkit command line. Each subcommand lives in its own module beside this file; program.ts
 * assembles them.
 */
import { hsmkitProgram } from "./program.js";

const program = await hsmkitProgram(process.argv[2]);
await program.parseAsync(process.argv);
