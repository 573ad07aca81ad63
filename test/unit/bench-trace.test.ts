// The --trace timeline (bench/lib/trace.ts): 100 ms buckets from each
// generator thread, summed per window, with the server's lines beside them.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LatencyTimeline, readTrace, SLOW_MS } from "../../bench/lib/trace.js";

test("bench trace - a timeline counts deliveries per 100 ms, the latest and the slow ones", () => {
  const t = new LatencyTimeline();
  t.record(10_000_000_000, 2); // 10.0 s
  t.record(10_050_000_000, SLOW_MS + 5); // 10.05 s
  t.record(10_100_000_000, SLOW_MS); // 10.1 s: not over the line
  assert.deepEqual(t.drain().sort(), ["10.0 2 20.0 1", "10.1 1 15.0 0"]);
  assert.deepEqual(t.drain(), [], "drained");
});

test("bench trace - each window gets the buckets and the server lines inside it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bench-trace-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(
    join(dir, "windows.log"),
    "100.000 103.000 roomcast half\n104.000 107.000 roomcast common\n",
  );
  // Two generator threads: their buckets at the same time add up.
  writeFileSync(join(dir, "generator-1-1.log"), "100.5 10 3.0 0\n101.2 10 80.0 4\n105.0 7 2.0 0\n");
  writeFileSync(join(dir, "generator-1-2.log"), "101.2 5 40.0 5\n99.0 50 500.0 50\n");
  writeFileSync(
    join(dir, "server-7.log"),
    "101.150 lag 95.0\n101.160 gc major 12.0\n106.000 lag 21.0\n",
  );
  const [half, common] = readTrace(dir);
  assert.ok(half !== undefined && common !== undefined);
  assert.equal(half.window, "half");
  assert.equal(half.deliveries, 25, "the bucket at 99.0 s is before the window");
  assert.equal(half.slow, 9);
  assert.deepEqual(half.slowBuckets, [{ at: 101.2, count: 15, maxMs: 80, slow: 9 }]);
  assert.deepEqual(half.serverEvents, ["101.150 lag 95.0", "101.160 gc major 12.0"]);
  assert.equal(common.deliveries, 7);
  assert.equal(common.slow, 0);
  assert.deepEqual(common.serverEvents, ["106.000 lag 21.0"]);
});
