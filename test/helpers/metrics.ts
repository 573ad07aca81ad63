// Scrapes a node's Prometheus endpoint and parses it with a real text-format
// parser, so tests read values by name and labels.
import parsePrometheusTextFormat, { type MetricFamily } from "parse-prometheus-text-format";

export class Scrape {
  readonly families: ReadonlyMap<string, MetricFamily>;
  readonly text: string;

  constructor(text: string) {
    this.text = text;
    this.families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  }

  static async from(url: string): Promise<Scrape> {
    const res = await fetch(url);
    if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
    return new Scrape(await res.text());
  }

  /** The value of a counter or gauge series with exactly these labels (0 when absent). */
  value(name: string, labels: Record<string, string> = {}): number {
    const sample = this.#sample(name, labels);
    return sample?.value === undefined ? 0 : Number(sample.value);
  }

  /** A histogram series' count and sum (zeros when absent). */
  histogram(name: string, labels: Record<string, string> = {}): { count: number; sum: number } {
    if (Object.keys(labels).length === 0) {
      const sample = this.#sample(name, labels);
      return { count: Number(sample?.count ?? 0), sum: Number(sample?.sum ?? 0) };
    }
    // parse-prometheus-text-format 1.1 drops the labels (and count and sum) of
    // labelled histograms, so those two lines are read from the text itself.
    if (!this.families.has(name)) throw new Error(`no metric ${name}`);
    const selector = Object.entries(labels)
      .map(([k, v]) => `${k}="${v}"`)
      .join(",");
    const line = (suffix: string) => {
      const prefix = `${name}_${suffix}{${selector}} `;
      const found = this.text.split("\n").find((l) => l.startsWith(prefix));
      return found === undefined ? 0 : Number(found.slice(prefix.length));
    };
    return { count: line("count"), sum: line("sum") };
  }

  /** Every label value any series of any family carries. */
  labelValues(): string[] {
    return [...this.families.values()].flatMap((f) =>
      f.metrics.flatMap((s) => Object.values(s.labels ?? {})),
    );
  }

  #sample(name: string, labels: Record<string, string>) {
    const family = this.families.get(name);
    if (family === undefined) throw new Error(`no metric ${name}`);
    const want = JSON.stringify(Object.entries(labels).sort());
    return family.metrics.find(
      (s) => JSON.stringify(Object.entries(s.labels ?? {}).sort()) === want,
    );
  }
}
