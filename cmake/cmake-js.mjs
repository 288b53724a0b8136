// Runs cmake-js offline. cmake-js takes Node's headers from npm's `nodedir` setting
// (npm_config_nodedir) and otherwise downloads a headers tarball, which fails on a machine
// without internet. When no nodedir is configured, this points it at the running node's own
// prefix if that ships its headers (nodesource's nodejs: /usr/include/node), then hands every
// argument to cmake-js unchanged.
//
//   node cmake/cmake-js.mjs compile --out build-cmake          (npm run build:cmake)
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const env = { ...process.env };

if (!env.npm_config_nodedir) {
  const prefix = resolve(dirname(process.execPath), "..");
  if (existsSync(join(prefix, "include", "node", "node_api.h"))) {
    env.npm_config_nodedir = prefix;
  } else {
    console.warn(
      `cmake-js.mjs: no npm nodedir and no headers in ${join(prefix, "include", "node")}; ` +
        "cmake-js will try to download them (set npm_config_nodedir to avoid that)",
    );
  }
}

const require = createRequire(join(root, "package.json"));
const cli = join(dirname(require.resolve("cmake-js/package.json")), "bin", "cmake-js");
const result = spawnSync(process.execPath, [cli, ...process.argv.slice(2)], { cwd: root, env, stdio: "inherit" });
if (result.error) throw result.error;
process.exit(result.status ?? 1);
