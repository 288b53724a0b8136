// The readable table printed by `hsmkit bench`.
import type { BenchReport, Row } from "./index.js";

const fmt = (n: number | null, digits = 3): string => {
  if (n === null || !Number.isFinite(n)) return "";
  if (n >= 1000) return Math.round(n).toLocaleString("en-US");
  return Number(n.toPrecision(digits)).toString();
};

function cells(row: Row, compare: boolean): string[] {
  const key = row.key_bits > 0 ? String(row.key_bits) : "";
  const head = [row.target, row.op, key, String(row.bytes), String(row.threads)];
  if (row.status !== "ok") return [...head, row.status.toUpperCase(), "", "", "", "", "", "", ...(compare ? [""] : []), row.reason ?? ""];
  const errors = row.errors === 0 ? "" : Object.entries(row.errors_by_code).map(([code, n]) => `${code}×${n}`).join(" ");
  return [
    ...head, fmt(row.ops_per_s), fmt(row.mb_per_s), fmt(row.latency_us.mean), fmt(row.latency_us.stddev), fmt(row.p50_us), fmt(row.latency_us.p95), fmt(row.p99_us),
    ...(compare ? [row.ratio === null ? "" : `${row.ratio.toFixed(2)}×`] : []), errors,
  ];
}

export function renderTable(report: BenchReport): string {
  const compare = report.rows.some((r) => r.ratio !== null);
  const baseline = report.rows.find((r) => r.ratio_vs !== null)?.ratio_vs;
  const header = ["target", "op", "key bits", "bytes", "threads", "ops/s", "MB/s", "mean µs", "sd µs", "p50 µs", "p95 µs", "p99 µs",
    ...(compare ? [`× ${baseline}`] : []), "errors / note"];
  const lines = report.rows.map((r) => cells(r, compare));
  const numeric = new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ...(compare ? [12] : [])]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (i === header.length - 1 ? 0 : l[i]!.length))));
  const render = (row: string[]): string =>
    row.map((c, i) => (i === row.length - 1 ? c : numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const m = report.machine;
  const c = report.config;
  const how = c.iterations !== null ? `${c.iterations} operations per thread` : `${c.duration_s} s per trial`;
  const out = [
    `hsmkit bench — ${m.cpu}, ${m.cores} cores, Node ${m.node}, OpenSSL ${m.openssl}${m.native_openssl ? ` (native core: ${m.native_openssl})` : ""}`,
    `${how}, warm-up ${c.warmup_s} s, ${c.threads} thread${c.threads === 1 ? "" : "s"}; latency per operation (hrtime); compare only ratios within one run`,
    ...report.targets.map((t) => `  ${t.name}: ${t.module ? `${t.module.description} ${t.module.library_version} (${t.module.manufacturer}), token "${t.token?.label}"` : t.kind}${t.note ? ` — ${t.note}` : ""}`),
    "",
    render(header),
    render(widths.map((w) => "-".repeat(w))),
    ...lines.map(render),
  ];
  return out.join("\n") + "\n";
}
