// The Grafana dashboard and the PromQL in docs/operations.md use only metrics
// that src/observability/metrics.ts declares.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Metrics } from "../../src/observability/metrics.js";

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), "utf8");

async function declared(): Promise<Set<string>> {
  const names = (await new Metrics().registry.getMetricsAsJSON()).map((m) => m.name);
  return new Set(names);
}

/** Metric names in PromQL text, with the histogram series suffixes taken off. */
function referenced(text: string): string[] {
  const names = [...text.matchAll(/\b((?:roomcast|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1]!);
  return [...new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, "")))];
}

test("dashboard - every metric it queries is declared", async () => {
  const have = await declared();
  const dashboard = read("deploy/grafana/roomcast-dashboard.json");
  JSON.parse(dashboard);
  const used = referenced(dashboard);
  assert.ok(used.length > 10);
  for (const name of used) assert.ok(have.has(name), name);
});

test("dashboard - the metric table (observability.md) and the PromQL (operations.md) name declared metrics", async () => {
  const have = await declared();
  // The sections that name metrics; elsewhere `roomcast_*` may be a table or a key prefix.
  const doc = [
    read("docs/observability.md"),
    ...read("docs/operations.md")
      .split(/^## /m)
      .filter((section) => /^(Metrics and tracing|SLOs and alerts)\b/.test(section)),
  ].join("\n");
  assert.ok(doc.length > 0, "the Metrics and SLO sections exist");
  for (const name of referenced(doc)) {
    if (name.endsWith("_")) continue; // "process_*" in prose
    assert.ok(have.has(name), name);
  }
});
