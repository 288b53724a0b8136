/**
 * Where the public test vectors live: `../shared/vectors` beside the repository (read at run
 * time, never copied in), or HSMKIT_VECTORS. A missing directory fails the suite loudly.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "binding.gyp"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root (no binding.gyp above " + import.meta.url + ")");
    dir = parent;
  }
  return dir;
}

export function vectorsDir(): string {
  const dir = process.env["HSMKIT_VECTORS"] ?? resolve(repositoryRoot(), "..", "shared", "vectors");
  if (!existsSync(dir)) {
    throw new Error(`test vectors not found at ${dir}: check out ../shared beside the repository or set HSMKIT_VECTORS`);
  }
  return dir;
}

export function vectorPath(...parts: string[]): string {
  const path = join(vectorsDir(), ...parts);
  if (!existsSync(path)) throw new Error(`test vector file missing: ${path}`);
  return path;
}
