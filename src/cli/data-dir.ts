/**
 * Which commands may create a data directory: `hsmkit init` and `hsmkit serve` only. Every other
 * command that opens one directly (keys, encrypt, users, audit, … without --endpoint) works on a KMS
 * that exists: opening a KMS creates whatever is missing, so a mistyped --data would otherwise
 * become a new, empty KMS with an identity of its own, and the command would answer from it.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { HsmkitConfig } from "../config/config.js";
import { DATABASE_FILE } from "../kms/store/sqlite.js";
import { ConnectError } from "./kms-client.js";

/** `path` as one shell word, for the commands the messages suggest. */
export function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/u.test(path) ? path : `'${path.replace(/'/gu, `'\\''`)}'`;
}

/**
 * The store KmsService.open keeps at `<data>/kms`: present once a data directory has been
 * initialized (the credentials file alone is not the KMS, and a token directory may be shared).
 */
function storeFile(data: string): string {
  return join(data, "kms", DATABASE_FILE);
}

/** Refuses (ConnectError) a data directory that is missing or that `hsmkit init` has not initialized. */
export function requireInitializedDataDirectory(config: Readonly<HsmkitConfig>): void {
  if (existsSync(storeFile(config.data))) return;
  const next = `run \`hsmkit init --data ${shellWord(config.data)}\` to create one there, ` +
    "or send the command to a running server with --endpoint URL (or HSMKIT_ENDPOINT)";
  if (!existsSync(config.data)) {
    throw new ConnectError(`no data directory at ${config.data} (from --data, HSMKIT_DATA or the config file's "data", else ./.hsmkit): ${next}`);
  }
  if (!statSync(config.data).isDirectory()) throw new ConnectError(`the data directory ${config.data} is not a directory: check --data`);
  throw new ConnectError(`${config.data} is not an initialized hsmkit data directory (it has no kms/${DATABASE_FILE}): ${next}`);
}

/**
 * Refuses (ConnectError) a data directory that `hsmkit init` or `hsmkit serve` could not
 * create: its parent is missing (the directory is made, not a tree), or something else is there.
 */
export function requireCreatableDataDirectory(config: Readonly<HsmkitConfig>): void {
  if (existsSync(config.data)) {
    if (!statSync(config.data).isDirectory()) throw new ConnectError(`the data directory ${config.data} is not a directory: choose another --data`);
    return;
  }
  const parent = dirname(config.data);
  if (!existsSync(parent)) {
    throw new ConnectError(`cannot create the data directory ${config.data}: ${parent} does not exist. ` +
      `Create it first (mkdir -p ${shellWord(parent)}), or choose another --data`);
  }
}
