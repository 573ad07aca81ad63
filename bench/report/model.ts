// The shape of what a benchmark run produces, for the markdown table and the JSON.
export type Better = "higher" | "lower";

export interface Metric {
  key: string;
  label: string;
  unit: string;
  better: Better;
  digits: number;
}

/** One scenario: several variants (servers, or stores) each run several times. */
export interface ScenarioResult {
  name: string;
  title: string;
  metrics: Metric[];
  variants: string[];
  /** The variant divided by each of the others in the ratio columns; none for no ratios. */
  ratioOf: string | undefined;
  /** variant → one record of metric values per run, in run order. */
  runs: Record<string, Record<string, number>[]>;
  /** variant → per-run details (ramp steps, failures) kept in the JSON only. */
  details: Record<string, unknown[]>;
  notes: string[];
}

export function newScenario(
  name: string,
  title: string,
  metrics: Metric[],
  variants: string[],
  ratioOf: string | undefined,
): ScenarioResult {
  const runs: Record<string, Record<string, number>[]> = {};
  const details: Record<string, unknown[]> = {};
  for (const v of variants) {
    runs[v] = [];
    details[v] = [];
  }
  return { name, title, metrics, variants, ratioOf, runs, details, notes: [] };
}
