/**
 * `hsmkit config`: the effective configuration (defaults ← config file ← HSMKIT_* environment ←
 * flags, as `hsmkit serve` with the same flags would run), secrets masked, and where each value
 * came from: default, file, env (naming the variable) or flag.
 */
import { Command } from "commander";
import { configFromEnv, configFromFile, ENV_NAMES, maskConfig, type ConfigOverrides } from "../config/config.js";
import { warnAboutPinFile } from "./kms-client.js";
import { action, integerIn, print, table } from "./output.js";
import { serveConfig, serveOverrides, type ServeFlags } from "./serve.js";

interface ConfigFlags extends ServeFlags {
  json?: boolean;
}

type Tree = Record<string, unknown>;

function isTree(value: unknown): value is Tree {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Leaf paths ("server.port") and their values. */
function leaves(tree: Tree, prefix = ""): Array<[string, unknown]> {
  return Object.entries(tree).flatMap(([key, value]) => {
    const path = prefix === "" ? key : `${prefix}.${key}`;
    return isTree(value) ? leaves(value, path) : [[path, value] as [string, unknown]];
  });
}

function has(tree: ConfigOverrides, path: string): boolean {
  let node: unknown = tree;
  for (const part of path.split(".")) {
    if (!isTree(node) || !(part in node) || node[part] === undefined) return false;
    node = node[part];
  }
  return true;
}

/** The environment variable that set `path` (the last in ENV_NAMES order wins, as configFromEnv applies them). */
function envName(path: string, env: NodeJS.ProcessEnv): string | undefined {
  return ENV_NAMES.filter((e) => e.path === path && env[e.name] !== undefined && env[e.name] !== "").map((e) => e.name).pop();
}

function show(flags: ConfigFlags): void {
  const config = serveConfig(flags);
  warnAboutPinFile(config);
  const env = process.env;
  const file = flags.config ?? (env["HSMKIT_CONFIG"] || undefined);
  const fromFile = file !== undefined ? configFromFile(file) : {};
  const fromEnv = configFromEnv(env);
  const fromFlags = serveOverrides(flags);
  const sources: Record<string, string> = {};
  for (const [path] of leaves(maskConfig(config) as unknown as Tree)) {
    sources[path] = has(fromFlags, path) ? "flag" : has(fromEnv, path) ? `env ${envName(path, env) ?? ""}`.trim() : has(fromFile, path) ? `file ${file}` : "default";
  }
  const masked = maskConfig(config);
  print(flags, { config: masked, sources, ...(file !== undefined ? { file } : {}) }, [
    ...table([
      ["Setting", "Value", "Source"],
      ...leaves(masked as unknown as Tree).map(([path, value]) => [path, typeof value === "string" ? value : JSON.stringify(value), sources[path] ?? ""]),
    ]),
  ]);
}

export function configCommand(): Command {
  return new Command("config")
    .description("print the effective configuration (secrets masked) and where each value comes from")
    .option("--config <file>", "JSON config file (also $HSMKIT_CONFIG)")
    .option("--data <dir>", "as `hsmkit serve --data`")
    .option("--host <host>", "as `hsmkit serve --host`")
    .option("--port <n>", "as `hsmkit serve --port`", integerIn(0, 65535))
    .option("--json", "print {config, sources} as JSON")
    .addHelpText("after", `
Values come from the defaults, then the config file, then HSMKIT_* environment variables
(HSMKIT_SERVER_PORT → server.port, also HSMKIT_HOST, HSMKIT_PORT, HSMKIT_DATA), then flags.

Examples:
  hsmkit config
  hsmkit config --config hsmkit.json --json
  hsmkit config --data /var/lib/hsmkit --port 9000`)
    .action(action((flags: ConfigFlags) => show(flags)));
}
