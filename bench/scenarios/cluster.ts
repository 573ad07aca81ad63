// Cluster: two nodes sharing a broker, one room whose members are split evenly
// across them, publishers on both nodes, so every message reaches half of its
// members through the broker. Roomcast runs as a durable cluster (BROKER=nats or
// redis, STORE=postgres: each publish is appended to PostgreSQL before it is
// fanned out); Socket.IO runs two nodes with @socket.io/redis-adapter and no
// store. Each run gets its own broker process and (for Roomcast) its own fresh
// database. The ramp is the fanout scenario's: rates step up until delivery
// falls behind; then latency is measured at one common rate for all variants.
import { setTimeout as sleep } from "node:timers/promises";
import { Histogram } from "../lib/histogram.js";
import type { MemberSpec } from "../load/messages.js";
import type { LoadGenerator, Snapshot } from "../load/generator.js";
import { withBroker, type BrokerKind, type BrokerProcess } from "../lib/broker-process.js";
import { cpuSeconds, rssBytes } from "../lib/proc-stats.js";
import type { ServerProcess } from "../lib/server-process.js";
import { serverSpec, type ServerName } from "../lib/servers.js";
import { spread } from "../lib/stats.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric, ScenarioResult } from "../report/model.js";
import { withGenerator, withServer, type RunContext } from "./context.js";
import { POSTGRES_URL } from "./durable.js";
import { createFreshDatabase, type FreshDatabase } from "./fresh-database.js";

interface ClusterVariant {
  server: ServerName;
  broker: BrokerKind;
}

/**
 * roomcast+redis comes first because the table's ratio columns divide the first
 * variant by the others, and Redis is the broker Socket.IO's adapter also uses:
 * that is the like-for-like column. The NATS ratios are added as a note.
 */
export const CLUSTER_VARIANTS: Record<string, ClusterVariant> = {
  "roomcast+redis": { server: "roomcast", broker: "redis" },
  "roomcast+nats": { server: "roomcast", broker: "nats" },
  "socketio+redis": { server: "socketio", broker: "redis" },
};
export const CLUSTER_RATIO_OF = "roomcast+redis";

const NODES = 2;
const ROOM_SIZE = 500;
const PUBLISHERS = 10;
/** Delivered msg/s (both nodes together) that every variant sustains: latency at the same load. */
export const CLUSTER_COMMON_RATE = 20_000;

// The same saturation rules as the fanout scenario (bench/scenarios/throughput.ts).
const SATURATED = 0.9;
const GENERATOR_FULL = 0.95;
/** Both nodes and the broker share the server core: together this much of it is saturated. */
const SERVER_FULL = 0.85;
const MAX_NOISY_SHORTFALLS = 2;

export const CLUSTER_METRICS: Metric[] = [
  {
    key: "saturation",
    label: "delivered msg/s at saturation, both nodes",
    unit: "msg/s",
    better: "higher",
    digits: 0,
  },
  {
    key: "cpuPerMsg",
    label: "server CPU per delivered msg at saturation, both nodes",
    unit: "µs",
    better: "lower",
    digits: 2,
  },
  {
    key: "brokerCpuPerMsg",
    label: "broker CPU per delivered msg at saturation",
    unit: "µs",
    better: "lower",
    digits: 2,
  },
  {
    key: "p50Common",
    label: `p50 publish→deliver latency at ${CLUSTER_COMMON_RATE.toLocaleString("en-US")} msg/s (same load for all)`,
    unit: "ms",
    better: "lower",
    digits: 2,
  },
  {
    key: "p99Common",
    label: `p99 publish→deliver latency at ${CLUSTER_COMMON_RATE.toLocaleString("en-US")} msg/s (same load for all)`,
    unit: "ms",
    better: "lower",
    digits: 2,
  },
  {
    key: "cpuPerMsgCommon",
    label: `server CPU per delivered msg at ${CLUSTER_COMMON_RATE.toLocaleString("en-US")} msg/s, both nodes`,
    unit: "µs",
    better: "lower",
    digits: 2,
  },
  {
    key: "rssMiB",
    label: "server RSS after the run, both nodes",
    unit: "MiB",
    better: "lower",
    digits: 1,
  },
  {
    key: "genCpu",
    label: "generator CPU at saturation (1.0 = one core)",
    unit: "cores",
    better: "lower",
    digits: 2,
  },
];

export function clusterTitle(): string {
  return `Cluster: ${NODES} nodes sharing a broker, one room of ${ROOM_SIZE} members split ${ROOM_SIZE / 2}/${ROOM_SIZE / 2}, ${PUBLISHERS} publishers (${PUBLISHERS / 2} per node); Roomcast with STORE=postgres, Socket.IO with @socket.io/redis-adapter`;
}

/** The variants that can run with these servers. */
export function clusterVariants(servers: readonly ServerName[]): string[] {
  return Object.entries(CLUSTER_VARIANTS)
    .filter(([, v]) => servers.includes(v.server))
    .map(([name]) => name);
}

/** One half of the cluster: a node and the generator holding its members. */
export interface Half {
  server: ServerProcess;
  gen: LoadGenerator;
}

export interface ClusterWindow {
  deliveredPerSec: number;
  serverCpuUtil: number;
  brokerCpuUtil: number;
  generatorCpuUtil: number;
  serverCpuUsPerDelivered: number;
  brokerCpuUsPerDelivered: number;
  skipped: number;
  errors: number;
  closed: number;
  latency: Histogram;
}

async function snapshots(halves: Half[], reset: boolean): Promise<Snapshot[]> {
  return Promise.all(halves.map((h) => h.gen.snapshot(reset)));
}

function sumCounter(snaps: Snapshot[], key: keyof Snapshot["counters"]): number {
  return snaps.reduce((sum, s) => sum + s.counters[key], 0);
}

/** measureWindow (window.ts) over both halves: deliveries and CPU of both nodes added up. */
export async function measureCluster(
  halves: Half[],
  broker: BrokerProcess,
  ms: number,
): Promise<ClusterWindow> {
  const nodesCpu = (): number => halves.reduce((sum, h) => sum + cpuSeconds(h.server.pid), 0);
  const a = await snapshots(halves, true);
  const cpuA = nodesCpu();
  const brokerA = cpuSeconds(broker.pid);
  const tA = performance.now();
  await sleep(ms);
  const b = await snapshots(halves, false);
  const cpuB = nodesCpu();
  const brokerB = cpuSeconds(broker.pid);
  const seconds = (performance.now() - tA) / 1000;
  const delivered = sumCounter(b, "delivered") - sumCounter(a, "delivered");
  const cpu = cpuB - cpuA;
  const brokerCpu = brokerB - brokerA;
  const latency = new Histogram();
  for (const s of b) latency.add(s.latency);
  // Both generators live in this process: its CPU clock already counts both.
  const genA = a[0]?.cpuSeconds ?? 0;
  const genB = b[0]?.cpuSeconds ?? 0;
  return {
    deliveredPerSec: delivered / seconds,
    serverCpuUtil: cpu / seconds,
    brokerCpuUtil: brokerCpu / seconds,
    generatorCpuUtil: (genB - genA) / seconds,
    serverCpuUsPerDelivered: delivered > 0 ? (cpu * 1e6) / delivered : Number.NaN,
    brokerCpuUsPerDelivered: delivered > 0 ? (brokerCpu * 1e6) / delivered : Number.NaN,
    skipped: sumCounter(b, "skipped") - sumCounter(a, "skipped"),
    errors: sumCounter(b, "errors") - sumCounter(a, "errors"),
    closed: sumCounter(b, "closed") - sumCounter(a, "closed"),
    latency,
  };
}

/** waitQuiet (window.ts) over both halves. */
async function waitQuietCluster(halves: Half[], maxMs: number): Promise<boolean> {
  const deadline = performance.now() + maxMs;
  let last = sumCounter(await snapshots(halves, false), "delivered");
  while (performance.now() < deadline) {
    await sleep(250);
    const now = sumCounter(await snapshots(halves, false), "delivered");
    if (now === last) return true;
    last = now;
  }
  return false;
}

/** Offered delivered msg/s → publishes/s for each half (each holds half the publishers). */
async function setClusterRate(halves: Half[], delivered: number): Promise<void> {
  const perHalf = delivered / ROOM_SIZE / halves.length;
  await Promise.all(halves.map((h) => h.gen.setRate(perHalf)));
}

function step(w: ClusterWindow, offered: number): Record<string, number> {
  return {
    offeredDelivered: Math.round(offered),
    delivered: Math.round(w.deliveredPerSec),
    serverCpu: Number(w.serverCpuUtil.toFixed(2)),
    brokerCpu: Number(w.brokerCpuUtil.toFixed(2)),
    generatorCpu: Number(w.generatorCpuUtil.toFixed(2)),
    cpuUsPerMsg: Number(w.serverCpuUsPerDelivered.toFixed(2)),
    skipped: w.skipped,
    errors: w.errors,
    closed: w.closed,
  };
}

/** Nests withServer/withGenerator for every node, so each is stopped on every path. */
export async function withHalves<T>(
  ctx: RunContext,
  server: ServerName,
  env: Record<string, string>,
  members: MemberSpec[][],
  body: (halves: Half[]) => Promise<T>,
  done: Half[] = [],
): Promise<T> {
  const mine = members[done.length];
  if (mine === undefined) return body(done);
  const spec = serverSpec(server);
  return withServer(ctx, spec, env, (node) =>
    withGenerator(
      {
        url: node.url,
        kind: spec.kind,
        members: mine,
        // The generator's threads are shared between the halves, so the total stays ctx.workers.
        workers: Math.max(1, Math.floor(ctx.workers / members.length)),
        sourceAddresses: nextSourceAddresses(1),
        contentBytes: ctx.contentBytes,
      },
      (gen) => withHalves(ctx, server, env, members, body, [...done, { server: node, gen }]),
    ),
  );
}

async function measure(
  ctx: RunContext,
  halves: Half[],
  broker: BrokerProcess,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  // Bounded: at most 14 × 2 s (--full) or 8 × 0.85 s of ramp, then one latency window.
  const stepMs = ctx.full ? 1500 : 600;
  const settleMs = ctx.full ? 500 : 250;
  const growth = ctx.full ? 1.3 : 1.5;
  const maxSteps = ctx.full ? 14 : 8;
  const latencyMs = ctx.full ? 3000 : 1000;
  // First step, in delivered msg/s: below every variant's saturation, so the ramp climbs to it.
  const startDelivered = 40_000;

  // Connect one half after the other: a node subscribes to the room on its first member.
  for (const h of halves) {
    const c = await h.gen.connect();
    if (c.failed > 0) throw new Error(`${c.failed} connections failed: ${c.firstError}`);
  }
  const steps: Record<string, number>[] = [];
  let best: ClusterWindow | undefined;
  let offered = startDelivered;
  let noisyShortfalls = 0;
  let saturated = false;
  for (let i = 0; i < maxSteps; i++, offered *= growth) {
    await setClusterRate(halves, offered);
    await sleep(settleMs);
    const w = await measureCluster(halves, broker, stepMs);
    steps.push(step(w, offered));
    if (best === undefined || w.deliveredPerSec > best.deliveredPerSec) best = w;
    if (w.closed > 0 || halves.some((h) => !h.server.alive) || !broker.alive) break;
    if (w.deliveredPerSec < SATURATED * offered) {
      // As in the fanout scenario: a shortfall with no core full means another
      // process took the CPU, so try higher a few times before calling it.
      const serverSide = w.serverCpuUtil + w.brokerCpuUtil;
      const busy = serverSide >= SERVER_FULL || w.generatorCpuUtil >= GENERATOR_FULL;
      if (busy || ++noisyShortfalls > MAX_NOISY_SHORTFALLS) {
        saturated = true;
        break;
      }
    }
  }
  await setClusterRate(halves, 0);
  const drained = await waitQuietCluster(halves, 15_000);
  await setClusterRate(halves, CLUSTER_COMMON_RATE);
  await sleep(settleMs);
  const common = await measureCluster(halves, broker, latencyMs);
  await setClusterRate(halves, 0);
  const values: Record<string, number> = {
    saturation: best?.deliveredPerSec ?? Number.NaN,
    cpuPerMsg: best?.serverCpuUsPerDelivered ?? Number.NaN,
    brokerCpuPerMsg: best?.brokerCpuUsPerDelivered ?? Number.NaN,
    p50Common: common.latency.quantile(0.5) / 1000,
    p99Common: common.latency.quantile(0.99) / 1000,
    cpuPerMsgCommon: common.serverCpuUsPerDelivered,
    rssMiB: halves.reduce((sum, h) => sum + rssBytes(h.server.pid), 0) / 1024 / 1024,
    genCpu: best?.generatorCpuUtil ?? Number.NaN,
    // Not a table row: 0 when the ramp ran out of steps before delivery fell behind.
    saturated: saturated ? 1 : 0,
  };
  const detail = {
    broker: broker.kind,
    steps,
    drained,
    common: step(common, CLUSTER_COMMON_RATE),
    latencySamples: common.latency.total,
  };
  return { values, detail };
}

export async function runCluster(
  ctx: RunContext,
  variantName: string,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const variant = CLUSTER_VARIANTS[variantName];
  if (variant === undefined) throw new Error(`unknown cluster variant ${variantName}`);
  // A fresh room name per run: nothing of an earlier run's history is in the way.
  const room = `cluster-${Date.now().toString(36)}`;
  // Members alternate between the nodes, and so do publishers: each node holds
  // half of the room and half of its publishers, so every message crosses the broker.
  const members: MemberSpec[][] = Array.from({ length: NODES }, () => []);
  for (let m = 0; m < ROOM_SIZE; m++) {
    members[m % NODES]?.push({ room, publisher: m < PUBLISHERS });
  }
  return withBroker(variant.broker, async (broker) => {
    const env: Record<string, string> = {};
    let database: FreshDatabase | undefined;
    if (variant.server === "roomcast") {
      database = await createFreshDatabase(POSTGRES_URL);
      env["BROKER"] = variant.broker;
      env[variant.broker === "nats" ? "NATS_URL" : "REDIS_URL"] = broker.url;
      env["STORE"] = "postgres";
      env["POSTGRES_URL"] = database.url;
    } else {
      // bench/peers/socketio-server.ts switches on the Redis adapter when REDIS_URL is set.
      env["REDIS_URL"] = broker.url;
    }
    try {
      return await withHalves(ctx, variant.server, env, members, (halves) =>
        measure(ctx, halves, broker),
      );
    } finally {
      await database?.drop();
    }
  });
}

/** The ratios the table's columns do not show: Roomcast over NATS against Socket.IO. */
export function clusterNotes(result: ScenarioResult): string[] {
  const median = (variant: string, key: string): number =>
    spread((result.runs[variant] ?? []).map((r) => r[key] ?? Number.NaN)).median;
  const notes: string[] = [];
  const a = "roomcast+nats";
  const b = "socketio+redis";
  if (result.variants.includes(a) && result.variants.includes(b)) {
    const parts = CLUSTER_METRICS.filter((m) => m.key !== "genCpu").map((m) => {
      const ratio = median(a, m.key) / median(b, m.key);
      return `${m.key} ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : "–"}`;
    });
    notes.push(`${a}/${b}: ${parts.join(", ")}.`);
  }
  notes.push(
    `Both nodes and the broker run on the server core (taskset); PostgreSQL is the machine's shared server at ${new URL(POSTGRES_URL).host} (a fresh database per run, unpinned, its CPU not counted). Roomcast appends every publish to PostgreSQL before fanning it out; Socket.IO stores nothing.`,
  );
  for (const variant of result.variants) {
    const runs = result.runs[variant] ?? [];
    const unsaturated = runs.filter((r) => r["saturated"] === 0).length;
    if (unsaturated > 0) {
      notes.push(
        `${variant}: in ${unsaturated} of ${runs.length} runs the ramp ended (last step, a closed socket or a dead process) before delivery fell behind, so that delivered rate is a lower bound.`,
      );
    }
    const bound = runs.filter((r) => (r["genCpu"] ?? 0) >= GENERATOR_FULL).length;
    if (bound > 0) {
      notes.push(
        `${variant}: in ${bound} of ${runs.length} runs the generator's core was ≥ ${GENERATOR_FULL * 100} % busy at saturation, so that delivered rate is a lower bound.`,
      );
    }
  }
  return notes;
}
