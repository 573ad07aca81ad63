// Re-renders a results JSON as markdown with the current metric definitions, so a
// table can be regenerated (e.g. for docs/benchmarks.md) without re-running.
// Usage: node dist/bench/render.js bench/results/latest-full.json [scaling.svg]
// (the second argument also writes the scaling scenario's plot there).
import { readFileSync, writeFileSync } from "node:fs";
import { renderScenario } from "./report/markdown.js";
import { scalingSvg } from "./report/scaling-plot.js";
import type { ScenarioResult } from "./report/model.js";
import { DURABLE_METRICS } from "./scenarios/durable.js";
import { THROUGHPUT_METRICS } from "./scenarios/throughput.js";

interface ResultsFile {
  startedAt: string;
  machine: { gitCommit: string };
  options: { full: boolean };
  scenarios: ScenarioResult[];
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write("usage: node dist/bench/render.js <results.json>\n");
  process.exit(2);
}
const results = JSON.parse(readFileSync(file, "utf8")) as ResultsFile;
for (const scenario of results.scenarios) {
  if (scenario.name === "fanout" || scenario.name === "many-rooms")
    scenario.metrics = THROUGHPUT_METRICS;
  if (scenario.name === "durable") scenario.metrics = DURABLE_METRICS;
  process.stdout.write(`${renderScenario(scenario)}\n\n`);
}
const svgOut = process.argv[3];
const scaling = results.scenarios.find((s) => s.name === "scaling");
if (svgOut !== undefined && scaling !== undefined) {
  const kind = results.options.full ? "full" : "short";
  const caption = `Roomcast at git ${results.machine.gitCommit}, ${kind} run of ${results.startedAt.slice(0, 16)} UTC; dots: median, bars: min–max of the runs`;
  writeFileSync(svgOut, scalingSvg(scaling, caption));
}
