// --machine-speed (bench/lib/machine-speed.ts): the speed trace's samples and
// the median over one run's time span; and the real trace, started on this
// machine, gives samples.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  medianBetween,
  parseSpeedLines,
  startMachineSpeed,
} from "../../bench/lib/machine-speed.js";
import { eventually } from "../helpers/eventually.js";

test("bench machine speed - lines become samples; blank and foreign lines are skipped", () => {
  const text = '{"t":10.25,"ns":430}\n\n{"t":10.5,"ns":740}\n{"other":1}\n';
  assert.deepEqual(parseSpeedLines(text), [
    { t: 10.25, ns: 430 },
    { t: 10.5, ns: 740 },
  ]);
});

test("bench machine speed - the median counts only samples inside the span", () => {
  const samples = [
    { t: 1, ns: 900 },
    { t: 2, ns: 430 },
    { t: 3, ns: 450 },
    { t: 4, ns: 440 },
    { t: 5, ns: 700 },
    { t: 9, ns: 999 },
  ];
  assert.equal(medianBetween(samples, 2, 4), 440);
  assert.equal(medianBetween(samples, 2, 5), 445);
  assert.ok(Number.isNaN(medianBetween(samples, 6, 8)));
});

test("bench machine speed - the trace runs and reports a positive cost", async () => {
  const from = Date.now() / 1000;
  const speed = startMachineSpeed(0);
  try {
    await eventually(() => speed.median(from, Date.now() / 1000) > 0, { timeoutMs: 10_000 });
  } finally {
    speed.stop();
  }
});
