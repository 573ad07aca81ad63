// Re-renders a results JSON as markdown with the current metric definitions, so a
// table can be regenerated (e.g. for docs/benchmarks.md) without re-running.
// Usage: node dist/bench/render.js bench/results/latest-full.json
import { readFileSync } from "node:fs";
import { renderScenario } from "./report/markdown.js";
import type { ScenarioResult } from "./report/model.js";
import { DURABLE_METRICS } from "./scenarios/durable.js";
import { THROUGHPUT_METRICS } from "./scenarios/throughput.js";

interface ResultsFile {
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
