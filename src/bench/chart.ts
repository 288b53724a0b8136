/**
 * `--chart FILE.svg`: a self-contained SVG built from strings. Top: one panel per sized operation,
 * throughput (MB/s) against message size on log–log axes, one polyline series per target (each
 * series is a `<g class="series" data-target="…">`). Bottom: the latency distribution of each
 * target for every trial as box plots on a log axis (whiskers min–max, box p50–p99, tick at p95).
 */
import type { BenchReport, Row } from "./index.js";

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const esc = (s: string): string => s.replace(/&/gu, "&amp;").replace(/</gu, "&lt;").replace(/>/gu, "&gt;").replace(/"/gu, "&quot;");
const fmt = (n: number): string => (n >= 100 ? Math.round(n).toString() : Number(n.toPrecision(2)).toString());
const sizeLabel = (b: number): string => (b >= 1 << 20 ? `${b / (1 << 20)}M` : b >= 1024 ? `${b / 1024}k` : `${b}`);

function logScale(values: number[], from: number, to: number): { at: (v: number) => number; ticks: number[] } {
  const positive = values.filter((v) => v > 0);
  let lo = Math.log10(Math.min(...positive, 1e9));
  let hi = Math.log10(Math.max(...positive, 1e-9));
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
  lo = Math.floor(lo);
  hi = Math.max(lo + 1, Math.ceil(hi));
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) ticks.push(10 ** e);
  return { at: (v) => from + ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * (to - from), ticks };
}

export function renderChart(report: BenchReport): string {
  const targets = report.config.targets;
  const color = (t: string): string => COLORS[targets.indexOf(t) % COLORS.length]!;
  const ok = report.rows.filter((r) => r.status === "ok" && r.ops > 0);
  const sizedOps = [...new Set(ok.filter((r) => report.config.sizes.includes(r.bytes) && !["aes-kw", "aes-kwp", "find"].includes(r.mech)).map((r) => `${r.op}@${r.key_bits}`))];
  const width = 900;
  const panelH = 260;
  const parts: string[] = [];
  let y = 70;

  // Throughput panels.
  parts.push(`<g id="throughput">`);
  for (const key of sizedOps) {
    const rows = ok.filter((r) => `${r.op}@${r.key_bits}` === key);
    const x0 = 80, x1 = width - 180, top = y + 20, bottom = y + panelH - 40;
    const xs = logScale(rows.map((r) => r.bytes), x0, x1);
    const ys = logScale(rows.map((r) => r.mb_per_s), bottom, top);
    parts.push(`<text x="${x0}" y="${y + 10}" class="title">${esc(key.replace("@0", "").replace("@", ", key ") )}${key.endsWith("@0") ? "" : " bits"}: throughput (MB/s) against message size (bytes)</text>`);
    parts.push(`<line x1="${x0}" y1="${bottom}" x2="${x1}" y2="${bottom}" class="axis"/><line x1="${x0}" y1="${top}" x2="${x0}" y2="${bottom}" class="axis"/>`);
    for (const size of [...new Set(rows.map((r) => r.bytes))]) parts.push(`<text x="${xs.at(size).toFixed(1)}" y="${bottom + 16}" class="tick" text-anchor="middle">${sizeLabel(size)}</text>`);
    for (const t of ys.ticks) parts.push(`<line x1="${x0}" y1="${ys.at(t).toFixed(1)}" x2="${x1}" y2="${ys.at(t).toFixed(1)}" class="grid"/><text x="${x0 - 6}" y="${(ys.at(t) + 4).toFixed(1)}" class="tick" text-anchor="end">${fmt(t)}</text>`);
    targets.forEach((target, i) => {
      const series = rows.filter((r) => r.target === target).sort((a, b) => a.bytes - b.bytes);
      if (series.length === 0) return;
      const points = series.map((r) => `${xs.at(r.bytes).toFixed(1)},${ys.at(r.mb_per_s).toFixed(1)}`).join(" ");
      parts.push(`<g class="series" data-target="${esc(target)}" stroke="${color(target)}" fill="${color(target)}">`);
      parts.push(`<polyline points="${points}" fill="none" stroke-width="2"/>`);
      for (const r of series) parts.push(`<circle cx="${xs.at(r.bytes).toFixed(1)}" cy="${ys.at(r.mb_per_s).toFixed(1)}" r="3"><title>${esc(`${target} ${r.op} ${r.bytes} B: ${fmt(r.mb_per_s)} MB/s, ${fmt(r.ops_per_s)} ops/s`)}</title></circle>`);
      parts.push(`</g>`);
      parts.push(`<rect x="${x1 + 20}" y="${top + i * 18}" width="12" height="12" fill="${color(target)}"/><text x="${x1 + 38}" y="${top + i * 18 + 11}" class="tick">${esc(target)}</text>`);
    });
    y += panelH;
  }
  parts.push(`</g>`);

  // Latency distribution: one box per (trial, target).
  const boxes = ok;
  const rowH = 14;
  const x0 = 300, x1 = width - 40;
  const xs = logScale(boxes.flatMap((r) => [r.latency_us.min ?? 0, r.latency_us.max ?? 0]), x0, x1);
  const top = y + 30;
  parts.push(`<g id="latency"><text x="20" y="${y + 10}" class="title">Latency per operation (µs, log scale): whiskers min–max, box p50–p99, tick p95</text>`);
  for (const t of xs.ticks) parts.push(`<line x1="${xs.at(t).toFixed(1)}" y1="${top - 6}" x2="${xs.at(t).toFixed(1)}" y2="${top + boxes.length * rowH}" class="grid"/><text x="${xs.at(t).toFixed(1)}" y="${top - 10}" class="tick" text-anchor="middle">${fmt(t)}</text>`);
  boxes.forEach((r: Row, i) => {
    const cy = top + i * rowH + rowH / 2;
    const l = r.latency_us;
    const at = (v: number | null): string => xs.at(v ?? 0).toFixed(1);
    parts.push(`<g class="box" data-target="${esc(r.target)}" stroke="${color(r.target)}">` +
      `<text x="${x0 - 8}" y="${cy + 4}" class="tick" text-anchor="end" stroke="none">${esc(`${r.target} ${r.op} ${r.bytes} B`)}</text>` +
      `<line x1="${at(l.min)}" y1="${cy}" x2="${at(l.max)}" y2="${cy}"/>` +
      `<rect x="${at(l.p50)}" y="${cy - 4}" width="${Math.max(1, xs.at(l.p99 ?? 0) - xs.at(l.p50 ?? 0)).toFixed(1)}" height="8" fill="${color(r.target)}" fill-opacity="0.35"/>` +
      `<line x1="${at(l.p95)}" y1="${cy - 5}" x2="${at(l.p95)}" y2="${cy + 5}"/>` +
      `<title>${esc(`p50 ${l.p50} µs, p95 ${l.p95} µs, p99 ${l.p99} µs, min ${l.min}, max ${l.max}`)}</title></g>`);
  });
  parts.push(`</g>`);
  const height = top + boxes.length * rowH + 30;
  const m = report.machine;
  const subtitle = `${m.cpu}, ${m.cores} cores, Node ${m.node}, OpenSSL ${m.openssl}; ${report.config.threads} thread(s); ${report.created}`;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<style>.title{font-size:13px;font-weight:bold}.tick{font-size:10px}.axis{stroke:#333}.grid{stroke:#ddd}</style>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="24" class="title" font-size="16">hsmkit bench: ${esc(targets.join(" vs "))}</text>`,
    `<text x="20" y="42" class="tick">${esc(subtitle)}</text>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}
