// Renders scenario results as markdown: each cell is the median of the runs with
// the min–max spread, and the ratio columns divide the first variant's median
// by each peer's.
import { spread } from "../lib/stats.js";
import type { Metric, ScenarioResult } from "./model.js";

function fmt(value: number, digits: number): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cell(values: number[], metric: Metric): string {
  const s = spread(values);
  if (s.runs.length === 0) return "–";
  if (s.runs.length === 1) return fmt(s.median, metric.digits);
  return `${fmt(s.median, metric.digits)} (${fmt(s.min, metric.digits)}–${fmt(s.max, metric.digits)})`;
}

export function medianOf(result: ScenarioResult, variant: string, key: string): number {
  return spread((result.runs[variant] ?? []).map((r) => r[key] ?? Number.NaN)).median;
}

export function renderScenario(result: ScenarioResult): string {
  const peers =
    result.ratioOf === undefined ? [] : result.variants.filter((v) => v !== result.ratioOf);
  const head = ["Figure", ...result.variants, ...peers.map((p) => `${result.ratioOf ?? ""}/${p}`)];
  const lines = [
    `### ${result.title}`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
  ];
  for (const m of result.metrics) {
    const cells = result.variants.map((v) =>
      cell(
        (result.runs[v] ?? []).map((r) => r[m.key] ?? Number.NaN),
        m,
      ),
    );
    const ratios = peers.map((p) => {
      const ratio = medianOf(result, result.ratioOf ?? "", m.key) / medianOf(result, p, m.key);
      return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "–";
    });
    const label = `${m.label} (${m.unit}, ${m.better} is better)`;
    lines.push(`| ${[label, ...cells, ...ratios].join(" | ")} |`);
  }
  const counts = result.variants.map((v) => `${v}: ${(result.runs[v] ?? []).length}`).join(", ");
  lines.push("", `Runs per variant: ${counts}. Cells: median (min–max).`);
  for (const note of result.notes) lines.push("", `- ${note}`);
  return lines.join("\n");
}
