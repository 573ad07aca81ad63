// What Roomcast's own /metrics says about pauses during a latency window:
// garbage collections by kind (prom-client's nodejs_gc_duration_seconds) and
// the longest event-loop delay (nodejs_eventloop_lag_max_seconds, which
// prom-client resets at every scrape, so a scrape before the window's settle
// and one after the window bound it). Peers have no such endpoint; for them
// the runner records nothing.
export interface Pauses {
  /** Major (mark-compact) collections and their total seconds. */
  majorGcs: number;
  majorGcSeconds: number;
  /** All collections and their total seconds. */
  gcs: number;
  gcSeconds: number;
  /** Collections that took longer than 100 ms (the histogram's bucket edge). */
  gcsOver100ms: number;
  /** The longest event-loop delay seen in the window (ms). */
  maxLagMs: number;
}

interface Totals {
  count: Map<string, number>;
  sum: Map<string, number>;
  under100ms: number;
  lagMaxSeconds: number;
}

/** One series' labels as a map: `le="0.1",kind="major"` → {le: "0.1", kind: "major"}. */
function labelsOf(text: string): Map<string, string> {
  return new Map([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

// Read from the text itself: the parser the tests use drops the labels of
// labelled histograms, and these are three series of one node's exposition.
function totalsOf(text: string): Totals {
  const totals: Totals = { count: new Map(), sum: new Map(), under100ms: 0, lagMaxSeconds: 0 };
  for (const line of text.split("\n")) {
    const m =
      /^(nodejs_gc_duration_seconds_(?:bucket|sum|count)|nodejs_eventloop_lag_max_seconds)(?:\{([^}]*)\})? (\S+)$/.exec(
        line,
      );
    if (m === null) continue;
    const [, name, labelText = "", raw] = m;
    const value = Number(raw);
    const labels = labelsOf(labelText);
    const kind = labels.get("kind") ?? "";
    if (name === "nodejs_eventloop_lag_max_seconds") totals.lagMaxSeconds = value;
    else if (name === "nodejs_gc_duration_seconds_count") totals.count.set(kind, value);
    else if (name === "nodejs_gc_duration_seconds_sum") totals.sum.set(kind, value);
    else if (labels.get("le") === "0.1") totals.under100ms += value;
  }
  return totals;
}

/** What paused the node between two scrapes of its /metrics. */
export function pausesBetween(before: string, after: string): Pauses {
  const a = totalsOf(before);
  const b = totalsOf(after);
  const delta = (m: "count" | "sum", kind?: string): number => {
    const kinds = kind === undefined ? [...b[m].keys()] : [kind];
    return kinds.reduce((n, k) => n + (b[m].get(k) ?? 0) - (a[m].get(k) ?? 0), 0);
  };
  const gcs = delta("count");
  return {
    majorGcs: delta("count", "major"),
    majorGcSeconds: Number(delta("sum", "major").toFixed(4)),
    gcs,
    gcSeconds: Number(delta("sum").toFixed(4)),
    gcsOver100ms: gcs - (b.under100ms - a.under100ms),
    maxLagMs: Number((b.lagMaxSeconds * 1000).toFixed(1)),
  };
}

const scrape = async (port: number): Promise<string> =>
  (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/** Starts watching; the returned function ends the window and says what paused the node. */
export async function watchPauses(port: number): Promise<() => Promise<Pauses>> {
  const before = await scrape(port);
  return async () => pausesBetween(before, await scrape(port));
}
