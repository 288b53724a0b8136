/**
 * Runs `hsmkit` as a user does: a child process of the built CLI, with none of the HSMKIT_*
 * settings of the machine running the tests (the tests give their own).
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without any HSMKIT_* setting of the machine running the tests, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith("HSMKIT_")) delete env[name];
  return { ...env, ...extra };
}

/** Starts the CLI with `args`; the caller reads and ends it. */
export function start(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ["--no-warnings", CLI, ...args], { env: cleanEnv(env) });
}

/** Runs the CLI to its end with `input` on stdin (none by default). */
export function hsmkit(args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = start(args, options.env);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}
