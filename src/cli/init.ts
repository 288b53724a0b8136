/**
 * `hsmkit init`: prepares a data directory without serving it — the token (for the emulator: its
 * directory and generated PINs), the store, and the default identity in credentials.json (0600) —
 * by opening the KMS service once and closing it. Run again, it changes nothing and shows the same
 * identity. The secret key is printed only with --show-secret.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { KmsService } from "../service/service.js";
import { CREDENTIALS_FILE } from "../service/identity.js";
import { requireCreatableDataDirectory, shellWord } from "./data-dir.js";
import { commandConfig, configuredUrl, isLockError, STDERR_LOG, warnAboutPinFile } from "./kms-client.js";
import { action, fields, print, UsageError } from "./output.js";

interface InitFlags {
  data?: string;
  config?: string;
  showSecret?: boolean;
  json?: boolean;
}

async function init(flags: InitFlags): Promise<void> {
  const config = commandConfig(flags);
  requireCreatableDataDirectory(config);
  warnAboutPinFile(config);
  const existed = existsSync(join(config.data, CREDENTIALS_FILE));
  let service: KmsService;
  try {
    service = await KmsService.open(config, { sweep: false, log: STDERR_LOG });
  } catch (error) {
    if (isLockError(error)) {
      throw new UsageError(`${(error as Error).message}.\n  A server has it, so it is initialized already: ` +
        `its credentials are in ${join(config.data, CREDENTIALS_FILE)} (server at ${configuredUrl(config)} by default).`);
    }
    throw error;
  }
  const c = service.credentials;
  const file = service.credentialsFile;
  await service.close();
  const json = {
    data: config.data, credentialsFile: file, created: !existed,
    project_id: c.project_id, domain_id: c.domain_id, user_id: c.user_id, ak: c.ak, ...(flags.showSecret ? { sk: c.sk } : {}),
  };
  print(flags, json, [
    existed ? `The data directory ${config.data} was initialized already; nothing changed.` : `Initialized the data directory ${config.data}.`,
    "",
    ...fields([
      ["Credentials", `${file} (mode 0600)`],
      ["Project ID", c.project_id],
      ["Domain ID", c.domain_id],
      ["User ID", c.user_id],
      ["AK", c.ak],
      ["SK", flags.showSecret ? c.sk : "(not shown: --show-secret prints it; it is in the credentials file)"],
    ]),
    "",
    `Next: hsmkit serve --data ${shellWord(config.data)}   or, without a server:   hsmkit keys create my-key --data ${shellWord(config.data)}`,
  ]);
}

export function initCommand(): Command {
  return new Command("init")
    .description("create a data directory (token, store, default identity and its AK/SK credentials) without serving it")
    .option("--data <dir>", "data directory (default ./.hsmkit; also $HSMKIT_DATA)")
    .option("--config <file>", "JSON config file (also $HSMKIT_CONFIG)")
    .option("--show-secret", "also print the secret key (SK)")
    .option("--json", "print JSON")
    .addHelpText("after", `
Examples:
  hsmkit init
  hsmkit init --data /var/lib/hsmkit --json`)
    .action(action((flags: InitFlags) => init(flags)));
}
