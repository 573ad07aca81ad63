// The drain closes sockets spread over DRAIN_PERIOD, never all at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { spreadCloseTimes } from "../../src/gateway/drain-schedule.js";

test("drain schedule - one close per slot, sorted, the last by the end of the period", () => {
  const times = spreadCloseTimes(1000, 20_000);
  assert.equal(times.length, 1000);
  for (let i = 0; i < times.length; i++) {
    assert.ok(times[i]! >= i * 20 && times[i]! <= (i + 1) * 20, `close ${i} outside its slot`);
    if (i > 0) assert.ok(times[i]! >= times[i - 1]!);
  }
  assert.ok(times.at(-1)! <= 20_000);
});

test("drain schedule - uniform: each tenth of the period holds a tenth of the closes", () => {
  const times = spreadCloseTimes(10_000, 10_000);
  const buckets = new Array<number>(10).fill(0);
  for (const t of times) buckets[Math.min(9, Math.floor(t / 1000))]!++;
  for (const b of buckets) assert.ok(b >= 999 && b <= 1001, `bucket of ${b}`);
});

test("drain schedule - jittered, not a fixed grid", () => {
  const a = spreadCloseTimes(50, 5000);
  const b = spreadCloseTimes(50, 5000);
  assert.notDeepEqual(a, b);
  const grid = spreadCloseTimes(4, 4000, () => 0.5);
  assert.deepEqual(grid, [500, 1500, 2500, 3500]);
});

test("drain schedule - edge cases: nothing to close, a zero period", () => {
  assert.deepEqual(spreadCloseTimes(0, 1000), []);
  assert.deepEqual(spreadCloseTimes(3, 0), [0, 0, 0]);
  assert.deepEqual(spreadCloseTimes(1, 1000, () => 0.999_999_9).length, 1);
});
