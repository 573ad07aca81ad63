// The scaling scenario's plot: one column per axis (room size, connections,
// nodes), CPU per delivered message above and memory below.
import { spread } from "../lib/stats.js";
import { parseScalingVariant, SCALING_RATE, type ScalingAxis } from "../scenarios/scaling.js";
import type { ScenarioResult } from "./model.js";
import { renderSvg, type Panel, type PlotPoint } from "./svg-plot.js";

function points(result: ScenarioResult, axis: ScalingAxis, key: string): PlotPoint[] {
  return result.variants
    .map((v) => ({ v, p: parseScalingVariant(v) }))
    .filter(({ p }) => p.axis === axis)
    .map(({ v, p }) => {
      const s = spread((result.runs[v] ?? []).map((r) => r[key] ?? Number.NaN));
      return { x: p.x, median: s.median, min: s.min, max: s.max };
    });
}

export function scalingSvg(result: ScenarioResult, caption: string): string {
  const cpu = "server CPU per delivered msg (µs)";
  const rate = `${SCALING_RATE.toLocaleString("en-US")} msg/s`;
  const panels: Panel[] = [
    {
      title: `One room, ${rate}`,
      xLabel: "members in the room (log)",
      yLabel: cpu,
      xLog: true,
      series: [{ name: "CPU", points: points(result, "room", "cpuPerMsg") }],
    },
    {
      title: `Rooms of 100, ${rate}`,
      xLabel: "connections",
      yLabel: cpu,
      xLog: false,
      series: [{ name: "CPU", points: points(result, "connections", "cpuPerMsg") }],
    },
    {
      title: `Room of 600 on N nodes, ${rate}`,
      xLabel: "nodes (NATS + PostgreSQL)",
      yLabel: "CPU per delivered msg (µs)",
      xLog: false,
      series: [
        { name: "all nodes", points: points(result, "nodes", "cpuPerMsg") },
        { name: "broker", points: points(result, "nodes", "brokerCpuPerMsg") },
      ],
    },
    {
      title: "One room: server RSS under load",
      xLabel: "members in the room (log)",
      yLabel: "RSS (MiB)",
      xLog: true,
      series: [{ name: "RSS", points: points(result, "room", "rssMiB") }],
    },
    {
      title: "Rooms of 100: RSS per connection",
      xLabel: "connections",
      yLabel: "RSS per connection (KB)",
      xLog: false,
      series: [
        { name: "idle", points: points(result, "connections", "kbPerConnIdle") },
        { name: "under load", points: points(result, "connections", "kbPerConnActive") },
      ],
    },
    {
      title: "N nodes: RSS of all nodes",
      xLabel: "nodes",
      yLabel: "RSS (MiB)",
      xLog: false,
      series: [{ name: "RSS", points: points(result, "nodes", "rssMiB") }],
    },
  ];
  return renderSvg(panels, 3, caption);
}
