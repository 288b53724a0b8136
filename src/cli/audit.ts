/**
 * `hsmkit audit list | verify | export`: the tamper-evident audit log (every request that touched
 * a key, allowed or not) for the auditor role.
 *
 * - list: records matching the filters, oldest first, as a table (or the records as JSON).
 * - verify: checks the hash chain and the HSM-MACed checkpoints; exits 1 naming the first record
 *   that cannot be trusted when the log was edited, cut or extended.
 * - export: the project's records as JSON lines (src/kms/audit/export.ts) to stdout or a file.
 */
import { writeFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { addClientOptions, KmsCallError, withClient, type ClientFlags, type KmsClient } from "./kms-client.js";
import { action, fields, integerIn, isoTime, print, table, UsageError } from "./output.js";

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO 8601 time, or a time ago: 30m, 24h, 7d. */
function parseTime(value: string): number {
  const ago = /^(\d{1,9})([smhd])$/u.exec(value);
  if (ago) return Date.now() - Number(ago[1]) * UNITS[ago[2]!]!;
  const ms = /^\d{4}-\d{2}-\d{2}/u.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) throw new InvalidArgumentError("an ISO 8601 time (2025-01-31, 2025-01-31T12:00:00Z) or a time ago (30m, 24h, 7d)");
  return ms;
}

interface FilterFlags extends ClientFlags {
  key?: string;
  action?: string;
  outcome?: string;
  since?: number;
  until?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/iu;

/**
 * Records carry key ids, so an alias is looked up first; a key that no longer resolves (deleted,
 * say) is searched for as given.
 */
async function keyIdOf(client: KmsClient, key: string): Promise<string> {
  if (UUID.test(key)) return key;
  try {
    const body = await client.call({ method: "POST", path: "/describe-key" }, { body: { key_id: key } });
    return String((body["key_info"] as Record<string, unknown>)["key_id"]);
  } catch (error) {
    if (error instanceof KmsCallError) return key;
    throw error;
  }
}

async function filterBody(client: KmsClient, flags: FilterFlags): Promise<Record<string, unknown>> {
  return {
    ...(flags.key !== undefined ? { key_id: await keyIdOf(client, flags.key) } : {}),
    ...(flags.action !== undefined ? { action: flags.action } : {}),
    ...(flags.outcome !== undefined ? { outcome: flags.outcome } : {}),
    ...(flags.since !== undefined ? { from: String(flags.since) } : {}),
    ...(flags.until !== undefined ? { to: String(flags.until) } : {}),
  };
}

function addFilterOptions(command: Command): Command {
  return command
    .option("--key <key>", "records of this key (id, or an alias that still resolves)")
    .option("--action <action>", "records of this action, e.g. encryptData, createKey, disableKey")
    .addOption(new Option("--outcome <outcome>", "records with this outcome").choices(["success", "failure", "denied"]))
    .option("--since <time>", "records at or after: ISO 8601 (2025-01-31T12:00:00Z) or a time ago (30m, 24h, 7d)", parseTime)
    .option("--until <time>", "records before: ISO 8601 or a time ago", parseTime);
}

type AuditRecord = Record<string, unknown>;

async function list(flags: FilterFlags & { limit: number }): Promise<void> {
  await withClient(flags, async (client) => {
    const filters = await filterBody(client, flags);
    const records: AuditRecord[] = [];
    let marker = "";
    let more = false;
    while (records.length < flags.limit) {
      const page = await client.call({ method: "POST", path: "/audit/query" }, {
        body: { ...filters, limit: String(Math.min(1000, flags.limit - records.length)), ...(marker !== "" ? { marker } : {}) },
      });
      records.push(...(page["records"] as AuditRecord[]));
      marker = String(page["next_marker"] ?? "");
      more = page["truncated"] === "true" && marker !== "";
      if (!more) break;
    }
    const text = (value: unknown): string => (value === null || value === undefined ? "" : String(value));
    const lines = records.length === 0
      ? ["No audit records match."]
      : [
        ...table([
          ["Seq", "Time", "Action", "Outcome", "Code", "Key", "Principal", "Source", "Request"],
          ...records.map((r) => [
            text(r["seq"]), isoTime(r["time"]), text(r["action"]), text(r["outcome"]), text(r["error_code"]), text(r["key_id"]),
            text(r["principal_id"]), text(r["source"]), text(r["request_id"]),
          ]),
        ]),
        "",
        `${records.length} record${records.length === 1 ? "" : "s"}${more ? ` (more follow: raise --limit, or narrow with --since/--until)` : ""}`,
      ];
    print(flags, { records, truncated: more }, lines);
  });
}

async function verify(flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const v = await client.call({ method: "POST", path: "/audit/verify" }, { body: {} });
    if (v["ok"] === true) {
      const unanchored = Number(v["unanchored"] ?? 0);
      const recovery = (v["recovery_checkpoints"] as number[] | undefined) ?? [];
      print(flags, v, [
        `The audit log is intact: ${counted(v["records"], "record")}, ${counted(v["checkpoints"], "MACed checkpoint")}.`,
        ...fields([
          ["Head", `record ${String(v["head_seq"])}, chain value ${String(v["head_hash"])}`],
          ["Last checkpoint", `after record ${String(v["last_checkpoint_seq"])}${unanchored > 0 ? ` (${unanchored} records after it are chained but not yet MACed)` : ""}`],
          ...(recovery.length > 0 ? [["Recoveries", `checkpoints after crashes at records ${recovery.join(", ")}`] as const] : []),
        ]),
      ]);
      return;
    }
    const first = v["first_bad_seq"];
    print(flags, v, []);
    process.stderr.write(`hsmkit: the audit log does NOT verify: ${first === null || first === undefined ? "" : `record ${String(first)} is the first that cannot be trusted; `}` +
      `${String(v["problem"])}: ${String(v["message"])} (${String(v["records"])} records intact before it)\n`);
    process.exitCode = 1;
  });
}

async function exportLog(flags: FilterFlags & { out?: string }): Promise<void> {
  await withClient(flags, async (client) => {
    const text = await client.callText({ method: "POST", path: "/audit/export" }, { body: await filterBody(client, flags) });
    if (flags.out === undefined) {
      process.stdout.write(text);
      return;
    }
    try {
      writeFileSync(flags.out, text);
    } catch (error) {
      throw new UsageError(`cannot write ${flags.out}: ${(error as Error).message}`);
    }
    const records = text.split("\n").filter((line) => line.startsWith('{"type":"record"')).length;
    process.stderr.write(`Exported ${records} audit records to ${flags.out}.\n`);
  });
}

/** "1 record", "2 records". */
function counted(n: unknown, noun: string): string {
  return `${String(n)} ${noun}${n === 1 ? "" : "s"}`;
}

export function auditCommand(): Command {
  const audit = new Command("audit").description("read, verify and export the tamper-evident audit log (auditor role)")
    .addHelpText("after", `
Examples:
  hsmkit audit list --key billing --since 24h
  hsmkit audit verify
  hsmkit audit export --out audit.jsonl`);

  addFilterOptions(audit.command("list"))
    .description("list audit records, oldest first: time, action, outcome, error code, key, principal, source, request id")
    .option("--limit <n>", "at most this many records", integerIn(1, 1_000_000), 100)
    .addHelpText("after", `
Examples:
  hsmkit audit list --action encryptData --outcome failure
  hsmkit audit list --since 2025-01-31T00:00:00Z --limit 1000 --json
  hsmkit audit list --key billing --since 24h --endpoint http://127.0.0.1:8731`)
    .action(action((flags: FilterFlags & { limit: number }) => list(flags)));

  audit.command("verify")
    .description("verify the hash chain and the HSM-MACed checkpoints; exit 1 and name the first bad record if the log was tampered with")
    .addHelpText("after", `
Exit status: 0 the log verifies; 1 it does not (stderr names the first record that cannot be trusted), or the check could not run.

Examples:
  hsmkit audit verify
  hsmkit audit verify --json
  hsmkit audit verify --endpoint http://127.0.0.1:8731 --credentials auditor-credentials.json`)
    .action(action((flags: ClientFlags) => verify(flags)));

  addFilterOptions(audit.command("export"))
    .description("export the project's audit records as JSON lines: a header, then one record per line")
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", `
Examples:
  hsmkit audit export --out audit.jsonl
  hsmkit audit export --since 7d --key billing > week.jsonl`)
    .action(action((flags: FilterFlags & { out?: string }) => exportLog(flags)));

  return addClientOptions(audit);
}
