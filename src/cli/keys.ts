/**
 * `hsmkit keys …`: customer master keys — create, list, describe, enable, disable, schedule and
 * cancel deletion, rotate, alias, tags. Each subcommand sends one Huawei KMS request (kms-client.ts:
 * to a server with --endpoint, else on the data directory) and prints the answer for people, or its
 * body as JSON with --json. No subcommand ever prints key material: the KMS never returns any.
 */
import { Command, InvalidArgumentError } from "commander";
import { action, CommandLineError, fields, integerIn, isoTime, print, table } from "./output.js";
import { addClientOptions, withClient, type ClientFlags, type KmsClient, type WireBody } from "./kms-client.js";

/** Huawei's key_state numbers, in words. */
export const KEY_STATES: Readonly<Record<string, string>> = {
  "1": "pending activation",
  "2": "enabled",
  "3": "disabled",
  "4": "pending deletion",
  "5": "pending import",
};

export function stateName(state: unknown): string {
  return KEY_STATES[String(state)] ?? `state ${String(state)}`;
}

function parseState(value: string): string {
  if (/^[1-5]$/u.test(value)) return value;
  const wanted = value.toLowerCase().replace(/[-_]/gu, " ");
  const found = Object.entries(KEY_STATES).find(([, name]) => name === wanted);
  if (found === undefined) throw new InvalidArgumentError(`one of ${Object.values(KEY_STATES).map((s) => s.replace(/ /gu, "-")).join(", ")} (or 1-5)`);
  return found[0];
}

type Details = Record<string, string>;

function keyLines(d: Details): string[] {
  return fields([
    ["Key ID", d["key_id"] ?? ""],
    ["Alias", d["key_alias"] ?? ""],
    ["State", `${stateName(d["key_state"])} (${d["key_state"] ?? "?"})`],
    ["Spec", `${d["key_spec"] ?? ""}, ${d["key_usage"] ?? ""}`],
    ["Description", d["key_description"] ?? ""],
    ["Created", isoTime(d["creation_date"])],
    ...(d["scheduled_deletion_date"] ? [["Deletion date", isoTime(d["scheduled_deletion_date"])] as const] : []),
    ["Default key", d["default_key_flag"] === "1" ? "yes (created by its service; cannot be disabled, deleted or rotated)" : "no"],
    ["Rotation", d["key_rotation_enabled"] === "true" ? "automatic rotation enabled" : "no automatic rotation"],
    ["Origin", d["origin"] ?? ""],
    ["Realm", d["realm"] ?? ""],
    ["Domain ID", d["domain_id"] ?? ""],
  ]);
}

// Subcommands -------------------------------------------------------------------------------

async function create(alias: string, flags: ClientFlags & { description?: string }): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/create-key" }, {
      body: { key_alias: alias, ...(flags.description !== undefined ? { key_description: flags.description } : {}) },
    });
    const info = body["key_info"] as Details;
    print(flags, body, [`Created key ${info["key_id"]} with alias "${alias}".`]);
  });
}

/** Every key (all pages) or one page of `limit`. */
async function listAll(client: KmsClient, state: string | undefined, limit: number | undefined): Promise<{ details: Details[]; total: number }> {
  const details: Details[] = [];
  let marker: string | undefined;
  let total = 0;
  for (;;) {
    const page = await client.call({ method: "POST", path: "/list-keys" }, {
      body: {
        limit: String(limit ?? 1000),
        ...(marker !== undefined ? { marker } : {}),
        ...(state !== undefined ? { key_state: state } : {}),
      },
    });
    details.push(...(page["key_details"] as Details[]));
    total = page["total"] as number;
    marker = page["next_marker"] as string;
    if (limit !== undefined || page["truncated"] !== "true" || !marker) return { details, total };
  }
}

async function list(flags: ClientFlags & { state?: string; limit?: number }): Promise<void> {
  await withClient(flags, async (client) => {
    const { details, total } = await listAll(client, flags.state, flags.limit);
    const lines = details.length === 0
      ? [`No keys${flags.state !== undefined ? ` in state ${stateName(flags.state)}` : ""} in project ${client.projectId}.`]
      : [
        ...table([
          ["Key ID", "Alias", "State", "Created", "Description"],
          ...details.map((d) => [d["key_id"] ?? "", d["key_alias"] ?? "", stateName(d["key_state"]), isoTime(d["creation_date"]), d["key_description"] ?? ""]),
        ]),
        "",
        details.length < total ? `${details.length} of ${total} keys (more with a larger --limit)` : `${total} key${total === 1 ? "" : "s"}`,
      ];
    print(flags, { key_details: details, total }, lines);
  });
}

async function describe(key: string, flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/describe-key" }, { body: { key_id: key } });
    print(flags, body, keyLines(body["key_info"] as Details));
  });
}

async function setState(path: "/enable-key" | "/disable-key", key: string, flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path }, { body: { key_id: key } });
    const info = body["key_info"] as Details;
    print(flags, body, [`Key ${info["key_id"]} is ${stateName(info["key_state"])}.`]);
  });
}

async function scheduleDeletion(key: string, flags: ClientFlags & { days: number }): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/schedule-key-deletion" }, { body: { key_id: key, pending_days: String(flags.days) } });
    print(flags, body, [
      `Key ${String(body["key_id"])} is ${stateName(body["key_state"])}: it and every ciphertext under it become unusable now, ` +
        `and it is destroyed on ${isoTime(body["scheduled_deletion_date"])}.`,
      `Until then \`hsmkit keys cancel-deletion ${key}\` keeps it (disabled).`,
    ]);
  });
}

async function cancelDeletion(key: string, flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/cancel-key-deletion" }, { body: { key_id: key } });
    print(flags, body, [`Deletion of key ${String(body["key_id"])} cancelled; it is ${stateName(body["key_state"])} (hsmkit keys enable ${key} to use it again).`]);
  });
}

async function alias(key: string, newAlias: string, flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/update-key-alias" }, { body: { key_id: key, key_alias: newAlias } });
    const info = body["key_info"] as Details;
    print(flags, body, [`Key ${info["key_id"]} is now "${info["key_alias"]}".`]);
  });
}

function rotationLines(body: WireBody): string[] {
  const enabled = body["key_rotation_enabled"] === true;
  return fields([
    ["Automatic rotation", enabled ? `every ${String(body["rotation_interval"])} days` : "off"],
    ["Last rotation", isoTime(body["last_rotation_time"]) || "never"],
    ["Rotations", String(body["number_of_rotations"] ?? 0)],
  ]);
}

interface RotateFlags extends ClientFlags {
  enable?: boolean;
  disable?: boolean;
  interval?: number;
  status?: boolean;
}

/** Rotates now (no flag), or changes automatic rotation and shows its status. */
async function rotate(key: string, flags: RotateFlags): Promise<void> {
  const chosen = [flags.enable, flags.disable, flags.status].filter(Boolean).length;
  if (chosen > 1 || (flags.interval !== undefined && (flags.disable || flags.status))) {
    throw new CommandLineError("give one of --enable [--interval DAYS], --interval DAYS, --disable, --status; or none to rotate now");
  }
  await withClient(flags, async (client) => {
    if (chosen === 0 && flags.interval === undefined) {
      const body = await client.call({ method: "POST", path: "/rotate-on-demand" }, { body: { key_id: key } });
      print(flags, body, [`Rotated key ${String(body["key_id"])}: version ${String(body["key_version"])} now encrypts; older versions still decrypt what they sealed.`]);
      return;
    }
    const interval = flags.interval !== undefined ? { rotation_interval: String(flags.interval) } : {};
    if (flags.enable) await client.call({ method: "POST", path: "/enable-key-rotation" }, { body: { key_id: key, ...interval } });
    else if (flags.disable) await client.call({ method: "POST", path: "/disable-key-rotation" }, { body: { key_id: key } });
    else if (flags.interval !== undefined) await client.call({ method: "POST", path: "/update-key-rotation-interval" }, { body: { key_id: key, ...interval } });
    const status = await client.call({ method: "POST", path: "/get-key-rotation-status" }, { body: { key_id: key } });
    print(flags, status, rotationLines(status));
  });
}

// Tags --------------------------------------------------------------------------------------

function parseTags(pairs: readonly string[]): Array<{ key: string; value: string }> {
  return pairs.map((pair) => {
    const at = pair.indexOf("=");
    if (at <= 0) throw new CommandLineError(`tags are key=value, not "${pair}"`);
    return { key: pair.slice(0, at), value: pair.slice(at + 1) };
  });
}

function tagLines(key: string, body: WireBody): string[] {
  const tags = (body["tags"] as Array<{ key: string; value: string }> | undefined) ?? [];
  if (tags.length === 0) return [`Key ${key} has no tags.`];
  return table([["Tag", "Value"], ...tags.map((t) => [t.key, t.value])]);
}

async function listTags(client: KmsClient, key: string): Promise<WireBody> {
  return client.call({ method: "GET", path: "/:key_id/tags" }, { params: { key_id: key } });
}

async function tagAdd(key: string, pairs: string[], flags: ClientFlags): Promise<void> {
  const tags = parseTags(pairs);
  await withClient(flags, async (client) => {
    await client.call({ method: "POST", path: "/:key_id/tags/action" }, { params: { key_id: key }, body: { action: "create", tags } });
    const body = await listTags(client, key);
    print(flags, body, tagLines(key, body));
  });
}

async function tagRemove(key: string, names: string[], flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    await client.call({ method: "POST", path: "/:key_id/tags/action" }, {
      params: { key_id: key }, body: { action: "delete", tags: names.map((name) => ({ key: name })) },
    });
    const body = await listTags(client, key);
    print(flags, body, tagLines(key, body));
  });
}

async function tagList(key: string, flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await listTags(client, key);
    print(flags, body, tagLines(key, body));
  });
}

// The command ---------------------------------------------------------------------------------

const KEY_ARG = "key id (UUID) or alias";

export function keysCommand(): Command {
  const keys = new Command("keys").description("manage customer master keys: create, list, describe, enable, disable, delete, rotate, alias, tags")
    .addHelpText("after", `
Every subcommand works on the data directory directly, or on a running server with --endpoint.

Examples:
  hsmkit keys create billing --description "invoices"
  hsmkit keys list --state enabled
  hsmkit keys describe billing --endpoint http://127.0.0.1:8731`);

  keys.command("create")
    .description("create a key (AES-256, generated in the HSM) with an alias unique in the project")
    .argument("<alias>", "alias: letters, digits and : / _ - (1-255; not ending in /default)")
    .option("--description <text>", "description (0-255 characters)")
    .addHelpText("after", `
Examples:
  hsmkit keys create app/data --description "application data"
  hsmkit keys create billing --endpoint http://127.0.0.1:8731 --json`)
    .action(action((alias: string, flags: ClientFlags & { description?: string }) => create(alias, flags)));

  keys.command("list")
    .description("list the project's keys: id, alias, state, creation time, description")
    .option("--state <state>", "only keys in this state: enabled, disabled, pending-deletion, pending-activation, pending-import (or 1-5)", parseState)
    .option("--limit <n>", "at most this many keys (1-1000; default: all)", integerIn(1, 1000))
    .addHelpText("after", `
Examples:
  hsmkit keys list
  hsmkit keys list --state pending-deletion --json
  hsmkit keys list --limit 20 --endpoint http://127.0.0.1:8731`)
    .action(action((flags: ClientFlags & { state?: string; limit?: number }) => list(flags)));

  keys.command("describe")
    .description("show a key's details: id, alias, state, spec, description, dates, rotation, origin")
    .argument("<key>", KEY_ARG)
    .addHelpText("after", `
Examples:
  hsmkit keys describe billing
  hsmkit keys describe 0d2b5c9e-7f41-4a3b-9c6d-2e8f1a7b3c54 --json
  hsmkit keys describe billing --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, flags: ClientFlags) => describe(key, flags)));

  keys.command("enable")
    .description("enable a disabled key")
    .argument("<key>", KEY_ARG)
    .addHelpText("after", `
Examples:
  hsmkit keys enable billing
  hsmkit keys enable billing --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, flags: ClientFlags) => setState("/enable-key", key, flags)));

  keys.command("disable")
    .description("disable a key: it neither encrypts nor decrypts until enabled again")
    .argument("<key>", KEY_ARG)
    .addHelpText("after", `
Examples:
  hsmkit keys disable billing
  hsmkit keys disable billing --endpoint http://127.0.0.1:8731 --json`)
    .action(action((key: string, flags: ClientFlags) => setState("/disable-key", key, flags)));

  keys.command("schedule-deletion")
    .description("schedule a key's destruction; every ciphertext under it becomes undecryptable for good when it happens")
    .argument("<key>", KEY_ARG)
    .requiredOption("--days <n>", "days until destruction (7-1096)", integerIn(7, 1096))
    .addHelpText("after", `
Examples:
  hsmkit keys schedule-deletion old-key --days 30
  hsmkit keys schedule-deletion old-key --days 7 --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, flags: ClientFlags & { days: number }) => scheduleDeletion(key, flags)));

  keys.command("cancel-deletion")
    .description("cancel a scheduled deletion (the key returns to disabled: enable it to use it again)")
    .argument("<key>", KEY_ARG)
    .addHelpText("after", `
Examples:
  hsmkit keys cancel-deletion old-key
  hsmkit keys cancel-deletion old-key --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, flags: ClientFlags) => cancelDeletion(key, flags)));

  keys.command("rotate")
    .description("rotate a key now (a new version encrypts; older ones still decrypt), or manage automatic rotation")
    .argument("<key>", KEY_ARG)
    .option("--enable", "turn automatic rotation on (with --interval, or the key's interval: 365 days for a new key)")
    .option("--disable", "turn automatic rotation off")
    .option("--interval <days>", "automatic rotation interval (30-365 days)", integerIn(30, 365))
    .option("--status", "show the rotation status only")
    .addHelpText("after", `
Examples:
  hsmkit keys rotate billing                          # rotate now
  hsmkit keys rotate billing --enable --interval 90   # rotate every 90 days
  hsmkit keys rotate billing --status --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, flags: RotateFlags) => rotate(key, flags)));

  keys.command("alias")
    .description("change a key's alias (not a default key's)")
    .argument("<key>", KEY_ARG)
    .argument("<new-alias>", "the new alias (letters, digits and : / _ -; not ending in /default)")
    .addHelpText("after", `
Examples:
  hsmkit keys alias billing billing/2025
  hsmkit keys alias 0d2b5c9e-7f41-4a3b-9c6d-2e8f1a7b3c54 invoices --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, newAlias: string, flags: ClientFlags) => alias(key, newAlias, flags)));

  const tag = keys.command("tag").description("add, remove or list a key's tags (at most 10 per key; key ≤ 36, value ≤ 43 characters)")
    .addHelpText("after", `
Examples:
  hsmkit keys tag add billing team=finance env=prod
  hsmkit keys tag remove billing env
  hsmkit keys tag list billing`);
  tag.command("add")
    .description("add tags (an existing tag key gets the new value)")
    .argument("<key>", KEY_ARG)
    .argument("<tag=value...>", "tags to add")
    .addHelpText("after", `
Examples:
  hsmkit keys tag add billing team=finance env=prod
  hsmkit keys tag add billing owner=alice --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, pairs: string[], flags: ClientFlags) => tagAdd(key, pairs, flags)));
  tag.command("remove")
    .description("remove tags by their key")
    .argument("<key>", KEY_ARG)
    .argument("<tag...>", "tag keys to remove")
    .addHelpText("after", `
Examples:
  hsmkit keys tag remove billing env
  hsmkit keys tag remove billing env owner --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, names: string[], flags: ClientFlags) => tagRemove(key, names, flags)));
  tag.command("list")
    .description("list a key's tags")
    .argument("<key>", KEY_ARG)
    .addHelpText("after", `
Examples:
  hsmkit keys tag list billing
  hsmkit keys tag list billing --json`)
    .action(action((key: string, flags: ClientFlags) => tagList(key, flags)));

  return addClientOptions(keys);
}
