import assert from "node:assert/strict";
import { it } from "node:test";
import { pausesBetween } from "../../bench/lib/node-pauses.js";

const exposition = (major: [number, number, number], minor: [number, number], lag: number) =>
  [
    "# HELP nodejs_gc_duration_seconds Garbage collection duration by kind.",
    "# TYPE nodejs_gc_duration_seconds histogram",
    `nodejs_gc_duration_seconds_bucket{le="0.01",kind="major"} 0`,
    `nodejs_gc_duration_seconds_bucket{le="0.1",kind="major"} ${major[2]}`,
    `nodejs_gc_duration_seconds_bucket{le="+Inf",kind="major"} ${major[0]}`,
    `nodejs_gc_duration_seconds_sum{kind="major"} ${major[1]}`,
    `nodejs_gc_duration_seconds_count{kind="major"} ${major[0]}`,
    `nodejs_gc_duration_seconds_bucket{le="0.1",kind="minor"} ${minor[0]}`,
    `nodejs_gc_duration_seconds_sum{kind="minor"} ${minor[1]}`,
    `nodejs_gc_duration_seconds_count{kind="minor"} ${minor[0]}`,
    "# TYPE nodejs_eventloop_lag_max_seconds gauge",
    `nodejs_eventloop_lag_max_seconds ${lag}`,
    `nodejs_eventloop_lag_min_seconds 0.001`,
    "",
  ].join("\n");

void it("bench - pauses between two scrapes: GC counts and seconds by kind, slow collections, the window's longest lag", () => {
  const before = exposition([2, 0.05, 2], [100, 0.2], 0.9);
  const after = exposition([5, 0.65, 3], [160, 0.32], 0.4321);
  assert.deepEqual(pausesBetween(before, after), {
    majorGcs: 3,
    majorGcSeconds: 0.6,
    gcs: 63,
    gcSeconds: 0.72,
    gcsOver100ms: 2,
    // prom-client resets the maximum at every scrape: the later value is the window's.
    maxLagMs: 432.1,
  });
});
