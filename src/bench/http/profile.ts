/**
 * Where a server's CPU time went: a V8 CPU profile (`node --cpu-prof`) summarized by layer. Each
 * sample's time goes to the function on top of the stack; a function without a script (a V8
 * builtin or native binding such as JSON.parse or a socket write) is charged to the nearest caller
 * that has one, so time lands on the layer that asked for it. The layer comes from the script path:
 * the package under node_modules, or hsmkit's own folder (dist/src/server, dist/src/kms/store, …).
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Wall time the profile covers, ms. */
  totalMs: number;
  /** Time by layer, ms, largest first (idle included). */
  layers: Array<{ layer: string; ms: number; share: number }>;
  /** Functions with the most self time (builtins charged to callers, as the layers), ms. */
  functions: Array<{ fn: string; layer: string; ms: number; share: number }>;
}

/** hsmkit's layers by folder, most specific first. */
const OWN: ReadonlyArray<[RegExp, string]> = [
  [/\/dist\/src\/server\//u, "hsmkit HTTP layer (src/server)"],
  [/\/dist\/src\/service\/auth\//u, "hsmkit auth (src/service/auth)"],
  [/\/dist\/src\/service\//u, "hsmkit service (src/service)"],
  [/\/dist\/src\/kms\/store\//u, "KMS store + audit (src/kms/store)"],
  [/\/dist\/src\/kms\/backend\//u, "KMS backend (src/kms/backend)"],
  [/\/dist\/src\/kms\//u, "KMS (src/kms)"],
  [/\/dist\/src\/crypto\//u, "native core wrapper (src/crypto)"],
  [/\/dist\/emulator\//u, "emulator token (emulator/)"],
  [/\/dist\/bench\//u, "bench harness"],
];

/** The layer of a script URL, or undefined for a frame without a script. */
export function layerOf(url: string, functionName: string): string | undefined {
  if (url === "") {
    if (functionName === "(idle)") return "idle";
    if (functionName === "(garbage collector)") return "garbage collection";
    if (functionName === "(program)") return "V8/native outside JS (program)";
    if (functionName === "(root)") return "V8/native outside JS (program)";
    return undefined;
  }
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//u.exec(url);
  if (pkg !== null) return `npm ${pkg[1]}`;
  for (const [pattern, name] of OWN) if (pattern.test(url)) return name;
  if (/^node:(internal\/)?(http|_http|net|stream|internal\/streams|internal\/http|internal\/stream_base)/u.test(url)) return "Node http/net/streams";
  if (url.startsWith("node:")) return `Node ${url.slice(5).split("/").slice(0, 2).join("/")}`;
  return url;
}

/**
 * Summarizes a .cpuprofile. `windows` ([from, to] in µs of the monotonic clock, which V8's profile
 * timestamps and process.hrtime share on Linux) keeps only the samples taken inside them.
 */
export function summarizeProfile(file: string, top = 20, windows?: ReadonlyArray<readonly [number, number]>): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const layerCache = new Map<number, string>();
  const charged = new Map<number, { layer: string; fn: string }>();
  const resolve = (id: number): { layer: string; fn: string } => {
    const hit = charged.get(id);
    if (hit !== undefined) return hit;
    let current: number | undefined = id;
    let result: { layer: string; fn: string } | undefined;
    while (current !== undefined) {
      const node = byId.get(current)!;
      const layer = layerCache.get(current) ?? layerOf(node.callFrame.url, node.callFrame.functionName);
      if (layer !== undefined) {
        layerCache.set(current, layer);
        const f = node.callFrame;
        const own = byId.get(id)!.callFrame;
        const name = (fn: { functionName: string; url: string; lineNumber: number }): string =>
          `${fn.functionName || "(anonymous)"}${fn.url ? ` ${fn.url.replace(/^.*\/(node_modules|dist)\//u, "$1/")}:${fn.lineNumber + 1}` : ""}`;
        result = { layer, fn: current === id ? name(f) : `${own.functionName || "(native)"} ← ${name(f)}` };
        break;
      }
      current = parent.get(current);
    }
    result ??= { layer: "unattributed", fn: byId.get(id)!.callFrame.functionName };
    charged.set(id, result);
    return result;
  };
  const layers = new Map<string, number>();
  const functions = new Map<string, { layer: string; us: number }>();
  let total = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    at += us;
    if (us <= 0) continue;
    if (windows !== undefined && !windows.some(([from, to]) => at >= from && at <= to)) continue;
    total += us;
    const { layer, fn } = resolve(profile.samples[i]!);
    layers.set(layer, (layers.get(layer) ?? 0) + us);
    const f = functions.get(fn);
    if (f === undefined) functions.set(fn, { layer, us });
    else f.us += us;
  }
  const share = (us: number): number => Math.round((us / Math.max(1, total)) * 1000) / 10;
  return {
    totalMs: Math.round(total / 1000),
    layers: [...layers].sort((a, b) => b[1] - a[1]).map(([layer, us]) => ({ layer, ms: Math.round(us / 1000), share: share(us) })),
    functions: [...functions].sort((a, b) => b[1].us - a[1].us).slice(0, top).map(([fn, v]) => ({ fn, layer: v.layer, ms: Math.round(v.us / 1000), share: share(v.us) })),
  };
}

/** The summary as text lines. */
export function renderProfile(name: string, summary: ProfileSummary): string {
  const lines = [`${name}: ${summary.totalMs} ms profiled`, "  by layer:"];
  for (const l of summary.layers) if (l.share >= 0.5) lines.push(`    ${l.share.toFixed(1).padStart(5)} %  ${l.layer}`);
  lines.push("  top functions (self time; builtins charged to their caller):");
  for (const f of summary.functions) lines.push(`    ${f.share.toFixed(1).padStart(5)} %  ${f.fn}  [${f.layer}]`);
  return lines.join("\n") + "\n";
}
