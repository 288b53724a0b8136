/**
 * What the KMS commands share on the way out: tables and key/value blocks for people, JSON for
 * scripts, and one place where a failure becomes a one-line message on stderr and exit status 1.
 *
 * Messages name what went wrong and what to do next; a failure the user can act on never prints a
 * stack. Anything unexpected (a defect) still propagates with its stack.
 */
import { InvalidArgumentError } from "commander";
import { ConfigError } from "../config/config.js";
import { KmsError } from "../kms/errors.js";
import { StoreError } from "../kms/store/errors.js";
import { CredentialsFileError } from "../service/identity.js";
import { TokenFileError } from "../../emulator/store/errors.js";
import { ConnectError, isLockError, KmsCallError } from "./kms-client.js";
import { CommandLineError, reportCommandLineError } from "./program.js";

/**
 * A command that ran and failed, reported in one line with exit status 1 (as opposed to a defect
 * with a stack). Despite the name, not for a mistake in the command line: that is CommandLineError.
 */
export class UsageError extends Error {}

export { CommandLineError };

/** Rows of cells as aligned columns; the first row is the header. */
export function table(rows: readonly (readonly string[])[]): string[] {
  if (rows.length === 0) return [];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ").trimEnd());
}

/** `Label:  value` lines with the values aligned. */
export function fields(pairs: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...pairs.map(([label]) => label.length)) + 1;
  return pairs.map(([label, value]) => `${(label + ":").padEnd(width)}  ${value}`.trimEnd());
}

/** Prints `json` (pretty) with --json, else the lines for people. */
export function print(options: { json?: boolean | undefined }, json: unknown, lines: readonly string[]): void {
  process.stdout.write(options.json ? JSON.stringify(json, null, 2) + "\n" : lines.length === 0 ? "" : lines.join("\n") + "\n");
}

/** A time in ms since the epoch (a number, or a Huawei string of digits) as ISO 8601; "" when absent. */
export function isoTime(value: unknown): string {
  const ms = typeof value === "number" ? value : typeof value === "string" && /^\d+$/u.test(value) ? Number(value) : NaN;
  return Number.isFinite(ms) ? new Date(ms).toISOString() : "";
}

/** commander argument parsers. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/u.test(value) || Number(value) < min || Number(value) > max) throw new InvalidArgumentError(`an integer ${min}..${max}`);
    return Number(value);
  };
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `k=v` pairs (repeatable --context) as an object; the first `=` splits, so values may hold `=`. */
export function keyValues(pairs: readonly string[] | undefined, what: string): Record<string, string> | undefined {
  if (pairs === undefined || pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new CommandLineError(`${what} takes key=value, not "${pair}"`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** The message for a failed KMS call: `KMS.0207 The key does not exist. (request …)`, with a hint where one helps. */
export function callErrorMessage(error: KmsCallError): string {
  const lines = [`${error.code} ${error.message}${error.requestId ? ` (request ${error.requestId})` : ""}`];
  if (error.detail) lines.push(`  detail: ${error.detail}`);
  const hint = HINTS[error.code];
  if (hint) lines.push(`  ${hint}`);
  return lines.join("\n");
}

const HINTS: Record<string, string> = {
  "APIGW.0301": "The server refused the signature: use the credentials of that server's data directory (--credentials <data>/credentials.json) and check both clocks.",
  "APIGW.0101": "The server has no such API: is --endpoint an hsmkit server of this version?",
  "KMS.0203": "The request is over the server's body limit (its server.bodyLimitBytes, 131072 by default), or an audit export over " +
    "100 000 lines (narrow it with --since/--until). encrypt takes at most 4096 bytes: for more, use a data key (hsmkit datakey --help).",
  "KMS.0209": "Enable the key first: hsmkit keys enable <key>.",
  "KMS.0210": "The key is scheduled for deletion: hsmkit keys cancel-deletion <key> keeps it (it is then disabled).",
  "KMS.0306": "The identity in the credentials file lacks a role or grant for this.",
  "KMS.0313": "Turn automatic rotation on first: hsmkit keys rotate <key> --enable [--interval DAYS].",
  "KMS.2101": "encrypt-data takes 1-4096 bytes of text: for more, or for binary data, use a data key (hsmkit datakey --help).",
  "KMS.2201": "The blob does not decrypt here: wrong data directory or server, or a different --context/--aad than at encryption.",
};

/**
 * Wraps a command body: expected failures print `hsmkit: <message>` on stderr and set exit status
 * 1, a CommandLineError 2 with the usage hint; defects propagate.
 */
export function action<T extends unknown[]>(body: (...args: T) => void | Promise<void>): (...args: T) => Promise<void> {
  return async (...args: T) => {
    try {
      await body(...args);
    } catch (error) {
      if (error instanceof CommandLineError) {
        reportCommandLineError(error);
        return;
      }
      const message = expectedFailure(error);
      if (message === undefined) throw error;
      process.stderr.write(`hsmkit: ${message}\n`);
      process.exitCode = 1;
    }
  };
}

function expectedFailure(error: unknown): string | undefined {
  if (error instanceof KmsCallError) return callErrorMessage(error);
  if (error instanceof UsageError || error instanceof ConnectError || error instanceof ConfigError || error instanceof TokenFileError ||
    error instanceof CredentialsFileError) return error.message;
  if (isLockError(error)) return (error as Error).message;
  if (error instanceof StoreError) return `${error.message} (${error.code})`;
  // What reaches here unconverted is the KMS refusing to open (no such module or token label, PIN
  // refused, mechanisms missing): the detail is the configuration to fix; the generic message is not.
  if (error instanceof KmsError) return `${error.detail ?? error.message} (${error.code})`;
  const code = (error as NodeJS.ErrnoException)?.code;
  if (typeof code === "string" && /^E[A-Z]+$/u.test(code) && (error as NodeJS.ErrnoException).syscall !== undefined) {
    return (error as Error).message;
  }
  return undefined;
}
