// How Roomcast's cost grows with the work, for sizing a deployment: server CPU
// per delivered message and RSS at one fixed delivered rate, as one room grows
// (10 → 10,000 members), as connections grow (1k → 19.9k in rooms of 100, idle
// and then active), and as nodes are added (1, 2, 3 nodes on a NATS broker
// with PostgreSQL, one room split evenly over them). A fixed rate below every
// point's saturation keeps each point short and the figures comparable: the
// ramp of the fanout scenario would take minutes per point.
import { setTimeout as sleep } from "node:timers/promises";
import { withBroker } from "../lib/broker-process.js";
import type { MemberSpec } from "../load/messages.js";
import { rssBytes } from "../lib/proc-stats.js";
import type { ServerProcess } from "../lib/server-process.js";
import { serverSpec } from "../lib/servers.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric } from "../report/model.js";
import { measureCluster, withHalves, type Half } from "./cluster.js";
import { withGenerator, withServer, type RunContext } from "./context.js";
import { POSTGRES_URL } from "./durable.js";
import { createFreshDatabase } from "./fresh-database.js";
import { measureWindow } from "./window.js";

/** Delivered msg/s at every point: under Roomcast's saturation in each shape. */
export const SCALING_RATE = 20_000;
/** Connections per loopback source address, well under the ~28k ephemeral ports. */
const PER_ADDRESS = 5_000;
const CONNECTION_ROOM_SIZE = 100;
const NODES_ROOM_SIZE = 600;
const NODES_PUBLISHERS = 12;

export type ScalingAxis = "room" | "connections" | "nodes";

export interface ScalingPoint {
  axis: ScalingAxis;
  x: number;
}

/** The points measured: the full sizes, or a smaller short set. */
export function scalingPoints(full: boolean): ScalingPoint[] {
  const rooms = full ? [10, 100, 1_000, 10_000] : [10, 100, 1_000];
  const connections = full ? [1_000, 5_000, 10_000, 19_900] : [1_000, 5_000];
  const nodes = full ? [1, 2, 3] : [1, 2];
  return [
    ...rooms.map((x) => ({ axis: "room" as const, x })),
    ...connections.map((x) => ({ axis: "connections" as const, x })),
    ...nodes.map((x) => ({ axis: "nodes" as const, x })),
  ];
}

export function scalingVariant(p: ScalingPoint): string {
  return `${p.axis}=${p.x}`;
}

export function parseScalingVariant(variant: string): ScalingPoint {
  const [axis, x] = variant.split("=");
  if (axis !== "room" && axis !== "connections" && axis !== "nodes")
    throw new Error(`unknown scaling variant ${variant}`);
  return { axis, x: Number(x) };
}

export function scalingTitle(): string {
  return `Scaling (Roomcast only): cost at ${SCALING_RATE.toLocaleString("en-US")} delivered msg/s as the room, the connections and the nodes grow`;
}

export const SCALING_METRICS: Metric[] = [
  {
    key: "cpuPerMsg",
    label: `server CPU per delivered msg at ${SCALING_RATE.toLocaleString("en-US")} msg/s, all nodes`,
    unit: "µs",
    better: "lower",
    digits: 2,
  },
  {
    key: "rssMiB",
    label: "server RSS under load, all nodes",
    unit: "MiB",
    better: "lower",
    digits: 1,
  },
  {
    key: "kbPerConnIdle",
    label: "RSS per connection, joined and idle",
    unit: "KB",
    better: "lower",
    digits: 2,
  },
  {
    key: "kbPerConnActive",
    label: "RSS per connection, under load",
    unit: "KB",
    better: "lower",
    digits: 2,
  },
  { key: "delivered", label: "delivered msg/s held", unit: "msg/s", better: "higher", digits: 0 },
  { key: "p99", label: "p99 publish→deliver latency", unit: "ms", better: "lower", digits: 2 },
  {
    key: "brokerCpuPerMsg",
    label: "broker CPU per delivered msg",
    unit: "µs",
    better: "lower",
    digits: 2,
  },
];

function roomMembers(rooms: number, roomSize: number, publishersPerRoom: number): MemberSpec[] {
  const out: MemberSpec[] = [];
  for (let r = 0; r < rooms; r++) {
    for (let m = 0; m < roomSize; m++) {
      out.push({ room: `scale-${r}`, publisher: m < publishersPerRoom });
    }
  }
  return out;
}

/** RSS once it stops moving (as in the idle scenario). */
async function settledRss(server: ServerProcess, maxMs: number): Promise<number> {
  const deadline = performance.now() + maxMs;
  let last = rssBytes(server.pid);
  await sleep(500);
  while (performance.now() < deadline) {
    const now = rssBytes(server.pid);
    if (Math.abs(now - last) < last * 0.005) return now;
    last = now;
    await sleep(500);
  }
  return rssBytes(server.pid);
}

/** One node: connect, RSS idle, then the fixed rate for one window. */
async function singleNode(
  ctx: RunContext,
  members: MemberSpec[],
  roomSize: number,
  perConnection: boolean,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const spec = serverSpec("roomcast");
  const settleMs = ctx.full ? 3000 : 1500;
  const windowMs = ctx.full ? 3000 : 1500;
  return withServer(ctx, spec, {}, async (server) => {
    const base = await settledRss(server, settleMs);
    return withGenerator(
      {
        url: server.url,
        kind: spec.kind,
        members,
        workers: ctx.workers,
        sourceAddresses: nextSourceAddresses(Math.max(2, Math.ceil(members.length / PER_ADDRESS))),
        contentBytes: ctx.contentBytes,
      },
      async (gen) => {
        const c = await gen.connect();
        if (c.failed > 0)
          throw new Error(`${c.failed} of ${members.length} connections failed: ${c.firstError}`);
        const idle = await settledRss(server, settleMs);
        await gen.setRate(SCALING_RATE / roomSize);
        await sleep(ctx.full ? 1000 : 500);
        const w = await measureWindow(gen, server, windowMs);
        await gen.setRate(0);
        const active = rssBytes(server.pid);
        const n = members.length;
        const values: Record<string, number> = {
          cpuPerMsg: w.serverCpuUsPerDelivered,
          rssMiB: active / 1024 / 1024,
          delivered: w.deliveredPerSec,
          p99: w.end.latency.quantile(0.99) / 1000,
        };
        // Per connection only where there are many: with one room of 10 the
        // history and buffers of the load, not the connections, are the RSS.
        if (perConnection) {
          values["kbPerConnIdle"] = (idle - base) / n / 1000;
          values["kbPerConnActive"] = (active - base) / n / 1000;
        }
        const detail = {
          connections: n,
          baseRssBytes: base,
          idleRssBytes: idle,
          activeRssBytes: active,
          serverCpu: w.serverCpuUtil,
          generatorCpu: w.generatorCpuUtil,
          skipped: w.skipped,
          errors: w.errors,
          closed: w.closed,
        };
        return { values, detail };
      },
    );
  });
}

/** N nodes on a private NATS and a fresh PostgreSQL database, one room split evenly. */
async function nodes(
  ctx: RunContext,
  count: number,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const room = `scale-nodes-${Date.now().toString(36)}`;
  const members: MemberSpec[][] = Array.from({ length: count }, () => []);
  for (let m = 0; m < NODES_ROOM_SIZE; m++) {
    members[m % count]?.push({ room, publisher: m < NODES_PUBLISHERS });
  }
  const windowMs = ctx.full ? 3000 : 1500;
  return withBroker("nats", async (broker) => {
    const database = await createFreshDatabase(POSTGRES_URL);
    const env = {
      BROKER: "nats",
      NATS_URL: broker.url,
      STORE: "postgres",
      POSTGRES_URL: database.url,
    };
    try {
      return await withHalves(ctx, "roomcast", env, members, async (halves: Half[]) => {
        for (const h of halves) {
          const c = await h.gen.connect();
          if (c.failed > 0) throw new Error(`${c.failed} connections failed: ${c.firstError}`);
        }
        const perHalf = SCALING_RATE / NODES_ROOM_SIZE / halves.length;
        await Promise.all(halves.map((h) => h.gen.setRate(perHalf)));
        await sleep(ctx.full ? 1000 : 500);
        const w = await measureCluster(halves, broker, windowMs);
        await Promise.all(halves.map((h) => h.gen.setRate(0)));
        const rss = halves.reduce((sum, h) => sum + rssBytes(h.server.pid), 0);
        const values = {
          cpuPerMsg: w.serverCpuUsPerDelivered,
          rssMiB: rss / 1024 / 1024,
          delivered: w.deliveredPerSec,
          p99: w.latency.quantile(0.99) / 1000,
          brokerCpuPerMsg: w.brokerCpuUsPerDelivered,
        };
        const detail = {
          nodes: count,
          serverCpu: w.serverCpuUtil,
          brokerCpu: w.brokerCpuUtil,
          generatorCpu: w.generatorCpuUtil,
          skipped: w.skipped,
          errors: w.errors,
          closed: w.closed,
        };
        return { values, detail };
      });
    } finally {
      await database.drop();
    }
  });
}

export function runScaling(
  ctx: RunContext,
  variant: string,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const p = parseScalingVariant(variant);
  switch (p.axis) {
    case "room":
      return singleNode(ctx, roomMembers(1, p.x, Math.min(10, p.x)), p.x, false);
    case "connections":
      return singleNode(
        ctx,
        roomMembers(Math.ceil(p.x / CONNECTION_ROOM_SIZE), CONNECTION_ROOM_SIZE, 1),
        CONNECTION_ROOM_SIZE,
        true,
      );
    case "nodes":
      return nodes(ctx, p.x);
  }
}
