/**
 * `hsmkit users`: the principals of a data directory — the users that sign requests (with an AK/SK
 * credential of their own) and the roles they hold in projects. Huawei keeps users in IAM, outside
 * KMS; hsmkit's server has no user API, so these are administrative commands on the data
 * directory itself (stop the server first, as with any direct-mode command). A new user's
 * credential is written as a credentials file (0600) in the format of credentials.json, which
 * `--credentials FILE` and the SDKs take.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { sealCredentialSecret } from "../kms/store/secrets.js";
import { ROLES, type Role } from "../kms/types.js";
import { credentialSealer } from "../service/auth/credential-sealer.js";
import { newAccessKeyPair, newId, type Credentials } from "../service/identity.js";
import { KmsService } from "../service/service.js";
import { writeFileAtomic } from "../util/atomic-file.js";
import { requireInitializedDataDirectory } from "./data-dir.js";
import { commandConfig, isLockError, STDERR_LOG, warnAboutPinFile } from "./kms-client.js";
import { action, CommandLineError, fields, isoTime, print, table, UsageError } from "./output.js";

interface DataFlags {
  data?: string;
  config?: string;
  json?: boolean;
}

const BY = { source: "cli", principalId: "cli-admin" };

async function withService<T>(flags: DataFlags, body: (service: KmsService) => Promise<T>): Promise<T> {
  const config = commandConfig(flags);
  requireInitializedDataDirectory(config);
  warnAboutPinFile(config);
  let service: KmsService;
  try {
    service = await KmsService.open(config, { sweep: false, log: STDERR_LOG });
  } catch (error) {
    if (isLockError(error)) {
      throw new UsageError(`${(error as Error).message}.\n  Users are managed on the data directory itself: stop the server, run this, start it again.`);
    }
    throw error;
  }
  try {
    return await body(service);
  } finally {
    await service.close();
  }
}

/** A commander parser: what it throws must be InvalidArgumentError, or commander lets it out with a stack. */
function parseRoles(value: string): Role[] {
  const roles = value.split(",").map((r) => r.trim()).filter(Boolean);
  for (const role of roles) if (!(ROLES as readonly string[]).includes(role)) throw new InvalidArgumentError(`unknown role ${role}: choose from ${ROLES.join(", ")}`);
  return roles as Role[];
}

/**
 * Refuses (exit 2) an --out that cannot be written, before the user exists: the file is written
 * once the user and its credential are in the store, and the SK is in no other place, so a write
 * failing then leaves a user whose secret nobody has.
 */
function assertWritableOut(file: string): void {
  const directory = dirname(resolve(file));
  let problem: string | undefined;
  try {
    if (existsSync(file) && statSync(file).isDirectory()) problem = "it is a directory";
    else if (!statSync(directory).isDirectory()) problem = `${directory} is not a directory`;
    else accessSync(directory, constants.W_OK);
  } catch (error) {
    problem = (error as NodeJS.ErrnoException).code === "ENOENT" ? `the directory ${directory} does not exist` : (error as Error).message;
  }
  if (problem !== undefined) throw new CommandLineError(`--out ${file} cannot be written: ${problem}`);
}

async function create(name: string, flags: DataFlags & { roles?: Role[]; project?: string; out?: string; force?: boolean }): Promise<void> {
  if (!/^[A-Za-z0-9._-]{1,64}$/u.test(name)) throw new CommandLineError("the name must be 1-64 letters, digits, . _ -");
  if (flags.out !== undefined && existsSync(flags.out) && flags.force !== true) throw new CommandLineError(`${flags.out} exists: choose another --out, or --force to replace it`);
  if (flags.out !== undefined) assertWritableOut(flags.out);
  await withService(flags, async (service) => {
    const projectId = flags.project ?? service.credentials.project_id;
    const project = await service.kms.store.projects.get(projectId);
    if (project === undefined) throw new UsageError(`no project ${projectId} in this data directory`);
    const userId = newId();
    const { ak, sk } = newAccessKeyPair();
    await service.kms.admin.createPrincipal({ principalId: userId, domainId: project.domainId, name }, BY);
    for (const role of flags.roles ?? []) await service.kms.admin.addRole(userId, projectId, role, BY);
    const secret = await sealCredentialSecret(credentialSealer(service.kms.backend), ak, userId, Buffer.from(sk, "utf8"));
    await service.kms.admin.createCredential({ accessKey: ak, principalId: userId, secret, description: `hsmkit users create ${name}` }, BY);
    const credentials: Credentials = { project_id: projectId, domain_id: project.domainId, ak, sk, user_id: userId };
    if (flags.out !== undefined) writeFileAtomic(flags.out, Buffer.from(JSON.stringify(credentials, null, 2) + "\n", "utf8"));
    const shown = flags.out !== undefined ? { ...credentials, sk: undefined, credentials_file: flags.out } : credentials;
    print(flags, shown, [
      ...fields([
        ["User", `${name} (${userId})`],
        ["Project", projectId],
        ["Roles", (flags.roles ?? []).join(", ") || "none (grants only)"],
        ["AK", ak],
        ...(flags.out !== undefined ? [["Credentials", `${flags.out} (mode 0600)`] as const] : [["SK", `${sk}  (shown once: keep it secret)`] as const]),
      ]),
    ]);
  });
}

async function list(flags: DataFlags & { project?: string }): Promise<void> {
  await withService(flags, async (service) => {
    const projectId = flags.project ?? service.credentials.project_id;
    const project = await service.kms.store.projects.get(projectId);
    if (project === undefined) throw new UsageError(`no project ${projectId} in this data directory`);
    const db = service.kms.store;
    const rows: string[][] = [["User ID", "Name", "State", "Roles", "Access keys", "Created"]];
    const json: unknown[] = [];
    for (const principal of await db.principals.list(project.domainId)) {
      const id = principal.principalId;
      const roles = (await db.principals.listRoles(id, projectId)).map((r) => r.role);
      const keys = (await db.principals.listCredentials(id)).map((c) => `${c.accessKey}${c.status === "active" ? "" : " (inactive)"}`);
      rows.push([id, principal.name, principal.disabled ? "disabled" : "enabled", roles.join(",") || "-", keys.join(" ") || "-", isoTime(principal.createdAt)]);
      json.push({ user_id: id, name: principal.name, disabled: principal.disabled, roles, access_keys: keys, created: principal.createdAt });
    }
    print(flags, { project_id: projectId, users: json }, table(rows));
  });
}

async function setDisabled(userId: string, disabled: boolean, flags: DataFlags): Promise<void> {
  await withService(flags, async (service) => {
    if (userId === service.credentials.user_id && disabled) throw new UsageError("that is the data directory's own user (credentials.json): it stays enabled");
    if ((await service.kms.store.principals.get(userId)) === undefined) throw new UsageError(`no user ${userId}`);
    await service.kms.admin.setPrincipalDisabled(userId, disabled, BY);
    print(flags, { user_id: userId, disabled }, [`User ${userId} ${disabled ? "disabled: every request of theirs is refused" : "enabled"}.`]);
  });
}

async function changeRoles(userId: string, roles: Role[], add: boolean, flags: DataFlags & { project?: string }): Promise<void> {
  await withService(flags, async (service) => {
    const projectId = flags.project ?? service.credentials.project_id;
    if ((await service.kms.store.principals.get(userId)) === undefined) throw new UsageError(`no user ${userId}`);
    for (const role of roles) {
      if (add) await service.kms.admin.addRole(userId, projectId, role, BY);
      else await service.kms.admin.removeRole(userId, projectId, role, BY);
    }
    const now = (await service.kms.store.principals.listRoles(userId, projectId)).map((r) => r.role);
    print(flags, { user_id: userId, project_id: projectId, roles: now }, [`User ${userId} in project ${projectId}: ${now.join(", ") || "no roles"}.`]);
  });
}

const DATA_HELP = "data directory (default ./.hsmkit; also $HSMKIT_DATA)";

export function usersCommand(): Command {
  const users = new Command("users")
    .description("users of a data directory: create one with an AK/SK credential and roles, list, enable, disable, change roles")
    .addHelpText("after", `
Users sign requests with their own AK/SK; roles (${ROLES.join(", ")}) say what they may do in a
project, and grants (hsmkit grants create KEY --grantee USER_ID …) let them use one key. These commands
work on the data directory itself: stop the server while you run them.

Examples:
  hsmkit users create app --roles crypto_user --out app-credentials.json
  hsmkit users list
  hsmkit users add-roles 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 key_admin`);
  const common = (c: Command): Command => c.option("--data <dir>", DATA_HELP).option("--config <file>", "JSON config file").option("--json", "print JSON");

  common(users.command("create"))
    .description("create a user with an AK/SK credential (and roles in a project)")
    .argument("<name>", "a name for the user (letters, digits, . _ -)")
    .option("--roles <list>", `comma-separated: ${ROLES.join(", ")} (default: none — the user acts through grants)`, parseRoles)
    .option("--project <id>", "the project of the roles (default: the data directory's project)")
    .option("--out <file>", "write the credentials to this file (0600) instead of printing the SK")
    .option("--force", "replace --out if it exists")
    .addHelpText("after", `
Examples:
  hsmkit users create app --roles crypto_user --out app-credentials.json
  hsmkit users create auditor --roles auditor --out auditor-credentials.json --data /var/lib/hsmkit
  hsmkit users create batch          # no roles (grants only); prints the SK once`)
    .action(action((name: string, flags: DataFlags & { roles?: Role[]; project?: string; out?: string; force?: boolean }) => create(name, flags)));
  common(users.command("list"))
    .description("list the users of a project's account: their roles in the project (default: the data directory's) and access keys")
    .option("--project <id>", "the project")
    .addHelpText("after", `
Examples:
  hsmkit users list
  hsmkit users list --data /var/lib/hsmkit --json`)
    .action(action((flags: DataFlags & { project?: string }) => list(flags)));
  common(users.command("disable")).description("refuse every request of a user").argument("<user-id>", "the user (hsmkit users list)")
    .addHelpText("after", `
Examples:
  hsmkit users disable 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48
  hsmkit users disable 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 --data /var/lib/hsmkit`)
    .action(action((id: string, flags: DataFlags) => setDisabled(id, true, flags)));
  common(users.command("enable")).description("accept a disabled user's requests again").argument("<user-id>", "the user (hsmkit users list)")
    .addHelpText("after", `
Examples:
  hsmkit users enable 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48
  hsmkit users enable 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 --json`)
    .action(action((id: string, flags: DataFlags) => setDisabled(id, false, flags)));
  common(users.command("add-roles")).description("give a user roles in a project").argument("<user-id>", "the user (hsmkit users list)")
    .argument("<roles>", `comma-separated: ${ROLES.join(", ")}`, parseRoles)
    .option("--project <id>", "the project (default: the data directory's)")
    .addHelpText("after", `
Examples:
  hsmkit users add-roles 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 crypto_user
  hsmkit users add-roles 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 key_admin,auditor --project ead1eafe455a69247341acb058c63286`)
    .action(action((id: string, roles: Role[], flags: DataFlags & { project?: string }) => changeRoles(id, roles, true, flags)));
  common(users.command("remove-roles")).description("take roles away from a user").argument("<user-id>", "the user (hsmkit users list)")
    .argument("<roles>", `comma-separated: ${ROLES.join(", ")}`, parseRoles)
    .option("--project <id>", "the project (default: the data directory's)")
    .addHelpText("after", `
Examples:
  hsmkit users remove-roles 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 key_admin
  hsmkit users remove-roles 5f0c8e2a9d4b4c71a3e6f1b27d9c0e48 key_admin,auditor --json`)
    .action(action((id: string, roles: Role[], flags: DataFlags & { project?: string }) => changeRoles(id, roles, false, flags)));
  return users;
}
