// The benchmark's scaling plot: variant names round-trip, and the SVG shows
// one dot per measured point (none for a point that was not measured).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { scalingSvg } from "../../bench/report/scaling-plot.js";
import { newScenario } from "../../bench/report/model.js";
import {
  parseScalingVariant,
  SCALING_METRICS,
  scalingPoints,
  scalingVariant,
} from "../../bench/scenarios/scaling.js";

describe("bench scaling", () => {
  test("bench scaling - variant names round-trip for every point", () => {
    for (const full of [false, true]) {
      for (const p of scalingPoints(full))
        assert.deepEqual(parseScalingVariant(scalingVariant(p)), p);
    }
    assert.throws(() => parseScalingVariant("rooms=3"));
  });

  test("bench scaling - the plot has a dot per measured point and per series", () => {
    const variants = scalingPoints(false).map(scalingVariant);
    const result = newScenario("scaling", "t", SCALING_METRICS, variants, undefined);
    for (const v of variants) {
      const conns = v.startsWith("connections=");
      const nodes = v.startsWith("nodes=");
      result.runs[v]?.push({
        cpuPerMsg: 3,
        rssMiB: 100,
        ...(conns ? { kbPerConnIdle: 7, kbPerConnActive: 8 } : {}),
        ...(nodes ? { brokerCpuPerMsg: 0.2 } : {}),
      });
    }
    // One point left unmeasured (a failed run): no dot for it.
    result.runs["room=10"] = [];
    const svg = scalingSvg(result, "caption & more");
    assert.ok(svg.startsWith("<svg "));
    assert.ok(svg.includes("caption &amp; more"));
    const rooms = 3;
    const connections = 2;
    const nodes = 2;
    // CPU and RSS per room point (one missing), CPU + two memory series per
    // connection point, CPU + broker + RSS per node count.
    const dots = (rooms - 1) * 2 + connections * 3 + nodes * 3;
    assert.equal(svg.match(/<circle /g)?.length, dots);
  });
});
