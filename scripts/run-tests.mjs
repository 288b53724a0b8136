#!/usr/bin/env node
// Runs the whole suite under c8 + ava with the TAP reporter, echoes it, and ends with the one
// line CI reads: "N passed, N failed, N skipped", counted from the TAP stream of this very run.
// Exit status is non-zero when anything failed or when ava itself failed.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const args = process.argv.slice(2);
const child = spawn(
  process.execPath,
  ["node_modules/c8/bin/c8.js", "node_modules/ava/entrypoints/cli.mjs", "--tap", ...args],
  { stdio: ["ignore", "pipe", "inherit"], env: process.env },
);

let passed = 0;
let failed = 0;
let skipped = 0;
let todo = 0;
const failures = [];
const lines = createInterface({ input: child.stdout });
lines.on("line", (line) => {
  process.stdout.write(line + "\n");
  const match = /^(not ok|ok) \d+ (?:- )?(.*)$/.exec(line);
  if (!match) return;
  const [, status, rest] = match;
  if (/# SKIP\b/i.test(rest)) skipped++;
  else if (/# TODO\b/i.test(rest)) todo++;
  else if (status === "ok") passed++;
  else {
    failed++;
    failures.push(rest);
  }
});

child.on("close", (code, signal) => {
  if (failures.length > 0) {
    process.stdout.write("\nFailed:\n" + failures.map((name) => "  - " + name).join("\n") + "\n");
  }
  if (todo > 0) process.stdout.write(`(${todo} todo)\n`);
  const runnerBroke = (code !== 0 || signal !== null) && failed === 0;
  if (runnerBroke) {
    // ava failed without a failing test line (an uncaught exception in a test file, a timeout,
    // a crash): count it as a failure so CI cannot read this run as green.
    failed++;
    process.stdout.write(`\nThe test runner exited with ${signal ?? "code " + code} outside any test.\n`);
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  process.exit(failed > 0 ? 1 : 0);
});
