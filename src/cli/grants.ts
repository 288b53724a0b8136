/**
 * `hsmkit grants create | list | revoke | retire`: grants let a principal (a user, or every user of
 * an account) perform listed operations on one key, until revoked (by a key administrator) or
 * retired (by its issuer, its retiring principal, or a grantee holding retire-grant).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import { GRANT_OPERATIONS } from "../kms/types.js";
import { addClientOptions, withClient, type ClientFlags, type KmsClient } from "./kms-client.js";
import { action, CommandLineError, integerIn, isoTime, print, table } from "./output.js";

function parseOperations(value: string): string[] {
  const operations = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  const unknown = operations.filter((op) => !(GRANT_OPERATIONS as readonly string[]).includes(op));
  if (operations.length === 0 || unknown.length > 0) {
    throw new InvalidArgumentError(`comma-separated operations among ${GRANT_OPERATIONS.join(", ")}${unknown.length > 0 ? ` (not ${unknown.join(", ")})` : ""}`);
  }
  return operations;
}

interface CreateFlags extends ClientFlags {
  grantee: string;
  type?: "user" | "domain";
  operations: string[];
  name?: string;
  retiring?: string;
}

async function create(key: string, flags: CreateFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path: "/create-grant" }, {
      body: {
        key_id: key,
        grantee_principal: flags.grantee,
        ...(flags.type !== undefined ? { grantee_principal_type: flags.type } : {}),
        operations: flags.operations,
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.retiring !== undefined ? { retiring_principal: flags.retiring } : {}),
      },
    });
    print(flags, body, [
      `Created grant ${String(body["grant_id"])}: ${flags.type ?? "user"} ${flags.grantee} may ${flags.operations.join(", ")} with key ${key}.`,
    ]);
  });
}

type Grant = Record<string, unknown>;

async function allGrants(client: KmsClient, key: string | undefined, limit: number | undefined): Promise<{ grants: Grant[]; total: number }> {
  const grants: Grant[] = [];
  let marker: string | undefined;
  for (;;) {
    const body = await client.call({ method: "POST", path: key === undefined ? "/list-retirable-grants" : "/list-grants" }, {
      body: { ...(key !== undefined ? { key_id: key } : {}), limit: String(limit ?? 1000), ...(marker !== undefined ? { marker } : {}) },
    });
    grants.push(...(body["grants"] as Grant[]));
    marker = body["next_marker"] as string;
    if (limit !== undefined || body["truncated"] !== "true" || !marker) return { grants, total: body["total"] as number };
  }
}

async function list(key: string | undefined, flags: ClientFlags & { retirable?: boolean; limit?: number }): Promise<void> {
  await withClient(flags, async (client) => {
    const { grants, total } = await allGrants(client, flags.retirable ? undefined : key, flags.limit);
    const lines = grants.length === 0
      ? [flags.retirable ? "No grants name you as their retiring principal." : `Key ${key} has no grants.`]
      : [
        ...table([
          ["Grant ID", ...(flags.retirable ? ["Key ID"] : []), "Grantee", "Type", "Operations", "Name", "Created"],
          ...grants.map((g) => [
            String(g["grant_id"]), ...(flags.retirable ? [String(g["key_id"])] : []), String(g["grantee_principal"]), String(g["grantee_principal_type"]),
            (g["operations"] as string[]).join(","), String(g["name"] ?? ""), isoTime(g["creation_date"]),
          ]),
        ]),
        "",
        grants.length < total ? `${grants.length} of ${total} grants` : `${total} grant${total === 1 ? "" : "s"}`,
      ];
    print(flags, { grants, total }, lines);
  });
}

async function end(path: "/revoke-grant" | "/retire-grant", key: string, grantId: string, flags: ClientFlags): Promise<void> {
  await withClient(flags, async (client) => {
    const body = await client.call({ method: "POST", path }, { body: { key_id: key, grant_id: grantId } });
    print(flags, body, [`${path === "/revoke-grant" ? "Revoked" : "Retired"} grant ${grantId} on key ${key}.`]);
  });
}

export function grantsCommand(): Command {
  const grants = new Command("grants").description("let other principals use a key: create, list, revoke, retire grants")
    .addHelpText("after", `
Grantees are user ids (hsmkit users list) or, with --type domain, account ids; grant ids are
printed by \`hsmkit grants create\` and \`hsmkit grants list\`.

Examples:
  hsmkit grants create billing --grantee 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 --operations encrypt-data,decrypt-data
  hsmkit grants list billing
  hsmkit grants revoke billing 7a3c9e1f5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a`);

  grants.command("create")
    .description("grant a principal operations on a key (not on a default key; never create-grant alone)")
    .argument("<key>", "key id or alias")
    .requiredOption("--grantee <id>", "the user id (or, with --type domain, the account id) granted")
    .addOption(new Option("--type <type>", "what --grantee names (default user)").choices(["user", "domain"]))
    .requiredOption("--operations <list>", `comma-separated: ${GRANT_OPERATIONS.join(", ")}`, parseOperations)
    .option("--name <name>", "a name for the grant (letters, digits, : / _ -)")
    .option("--retiring <id>", "a principal who may retire the grant besides its issuer")
    .addHelpText("after", `
Examples:
  hsmkit grants create billing --grantee 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 --operations encrypt-data,decrypt-data
  hsmkit grants create billing --grantee 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 --operations create-datakey,decrypt-datakey,retire-grant --name batch-job
  hsmkit grants create billing --type domain --grantee c35520e41de8c906d5f86fdb5f54fa4f --operations describe-key --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, flags: CreateFlags) => create(key, flags)));

  grants.command("list")
    .description("list a key's grants, or with --retirable the project's grants that name you as their retiring principal")
    .argument("[key]", "key id or alias")
    .option("--retirable", "the project's grants whose retiring principal is you (no key)")
    .option("--limit <n>", "at most this many (1-1000; default: all)", integerIn(1, 1000))
    .addHelpText("after", `
Examples:
  hsmkit grants list billing
  hsmkit grants list billing --json --endpoint http://127.0.0.1:8731
  hsmkit grants list --retirable --credentials app-credentials.json`)
    .action(action(async (key: string | undefined, flags: ClientFlags & { retirable?: boolean; limit?: number }) => {
      if ((key === undefined) === !flags.retirable) throw new CommandLineError("give a key, or --retirable (not both)");
      await list(key, flags);
    }));

  grants.command("revoke")
    .description("revoke a grant (key administrators)")
    .argument("<key>", "key id or alias")
    .argument("<grant-id>", "the grant (64 hex digits)")
    .addHelpText("after", `
Examples:
  hsmkit grants revoke billing 7a3c9e1f5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a
  hsmkit grants revoke billing 7a3c9e1f5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, grantId: string, flags: ClientFlags) => end("/revoke-grant", key, grantId, flags)));

  grants.command("retire")
    .description("retire a grant (its issuer, its retiring principal, or its grantee holding retire-grant)")
    .argument("<key>", "key id or alias")
    .argument("<grant-id>", "the grant (64 hex digits)")
    .addHelpText("after", `
Examples:
  hsmkit grants retire billing 7a3c9e1f5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a
  hsmkit grants retire billing 7a3c9e1f5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a --credentials app-credentials.json   # as a grantee holding retire-grant
  hsmkit grants retire billing 7a3c9e1f5b2d4c6e8a0f1b3d5c7e9a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a --endpoint http://127.0.0.1:8731`)
    .action(action((key: string, grantId: string, flags: ClientFlags) => end("/retire-grant", key, grantId, flags)));

  return addClientOptions(grants);
}
