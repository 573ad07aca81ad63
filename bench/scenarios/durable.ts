// Durable publish: Roomcast with a store that persists each message (append
// with dedup and offset) before acking it. Publishers keep a fixed number of
// publishes in flight (closed loop); the figures are acknowledged publishes/s,
// the server's CPU per acknowledged publish and the publish→ack latency. A run
// can add an open-loop window at a fixed rate, where the latency is the cost
// of one publish rather than the queue of a saturated server.
import { setTimeout as sleep } from "node:timers/promises";
import type { MemberSpec } from "../load/messages.js";
import { serverSpec, type ServerSpec } from "../lib/servers.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric } from "../report/model.js";
import { withGenerator, withServer, type RunContext } from "./context.js";
import { startStore, type StoreName } from "./durable-store.js";
import { measureWindow, type WindowResult } from "./window.js";

export { POSTGRES_URL, STORES, type StoreName } from "./durable-store.js";

export interface DurableShape {
  rooms: number;
  /** Every member of a room publishes. */
  publishersPerRoom: number;
  /** Publishes each publisher keeps in flight. */
  inFlight: number;
}

export const ONE_ROOM: DurableShape = { rooms: 1, publishersPerRoom: 32, inFlight: 4 };
/** Each room's only member publishes: appends to different rooms need not wait for each other. */
export const MANY_ROOMS: DurableShape = { rooms: 100, publishersPerRoom: 1, inFlight: 4 };

export function durableTitle(shape: DurableShape): string {
  const into =
    shape.rooms === 1
      ? `one room (Roomcast only): ${shape.publishersPerRoom} publishers`
      : `many rooms (Roomcast only): ${shape.rooms} rooms, ${shape.publishersPerRoom === 1 ? "one publisher each" : `${shape.publishersPerRoom} publishers each`}`;
  return `Durable publish into ${into} × ${shape.inFlight} in flight`;
}

export const DURABLE_METRICS: Metric[] = [
  {
    key: "acksPerSec",
    label: "acknowledged publishes/s",
    unit: "msg/s",
    better: "higher",
    digits: 0,
  },
  {
    key: "cpuPerAck",
    label: "server CPU per acknowledged publish",
    unit: "µs",
    better: "lower",
    digits: 1,
  },
  { key: "ackP50", label: "p50 publish→ack latency", unit: "ms", better: "lower", digits: 2 },
  { key: "ackP99", label: "p99 publish→ack latency", unit: "ms", better: "lower", digits: 2 },
  { key: "p50", label: "p50 publish→deliver latency", unit: "ms", better: "lower", digits: 2 },
  { key: "p99", label: "p99 publish→deliver latency", unit: "ms", better: "lower", digits: 2 },
];

/**
 * Publishes/s in all of the fixed-rate window: in a closed loop the latency is
 * mostly the queue (in flight / rate), so the cost of one publish is measured
 * here, far under what any store sustains even on a busy machine and under
 * the default rate limits (1000/1s per room, 100/1s per connection).
 */
export const FIXED_RATE = 100;

/** The figures of the fixed-rate window (DurableOptions.fixedRate). */
export const FIXED_RATE_METRICS = (rate: number): Metric[] => {
  const at = `at ${rate.toLocaleString("en-US")} publishes/s`;
  return [
    {
      key: "cpuPerAckFixed",
      label: `server CPU per acknowledged publish ${at}`,
      unit: "µs",
      better: "lower",
      digits: 1,
    },
    { key: "ackP50Fixed", label: `p50 publish→ack ${at}`, unit: "ms", better: "lower", digits: 2 },
    { key: "ackP99Fixed", label: `p99 publish→ack ${at}`, unit: "ms", better: "lower", digits: 2 },
  ];
};

export interface DurableOptions {
  shape?: DurableShape;
  /** Default: Roomcast as every scenario runs it. */
  spec?: ServerSpec;
  /** Extra node settings (over the store's). */
  env?: Record<string, string>;
  /** After the closed loop, an open-loop window at this many publishes/s in all. */
  fixedRate?: number;
}

function members(shape: DurableShape, prefix: string): MemberSpec[] {
  const out: MemberSpec[] = [];
  for (let r = 0; r < shape.rooms; r++)
    for (let p = 0; p < shape.publishersPerRoom; p++)
      out.push({ room: shape.rooms === 1 ? prefix : `${prefix}-${r}`, publisher: true });
  return out;
}

function ms(w: WindowResult, q: number): number {
  return w.end.ackLatency.quantile(q) / 1000;
}

export async function runDurable(
  ctx: RunContext,
  store: StoreName,
  options: DurableOptions = {},
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const shape = options.shape ?? ONE_ROOM;
  const backend = await startStore(store);
  // Fresh rooms per run, so history left by earlier runs is never in the way.
  const list = members(shape, `durable-${Date.now().toString(36)}`);
  const env = { ...backend.env, ...options.env };
  try {
    return await withServer(ctx, options.spec ?? serverSpec("roomcast"), env, (server) =>
      withGenerator(
        {
          url: server.url,
          kind: "roomcast-json",
          members: list,
          workers: ctx.workers,
          sourceAddresses: nextSourceAddresses(1),
          contentBytes: ctx.contentBytes,
        },
        async (gen) => {
          const c = await gen.connect();
          if (c.failed > 0) throw new Error(`${c.failed} connections failed: ${c.firstError}`);
          await gen.closedLoop(shape.inFlight);
          await sleep(ctx.full ? 1500 : 500);
          const w = await measureWindow(gen, server, ctx.full ? 6000 : 2000);
          const values: Record<string, number> = {
            acksPerSec: w.acksPerSec,
            cpuPerAck: w.serverCpuUsPerAck,
            ackP50: ms(w, 0.5),
            ackP99: ms(w, 0.99),
            p50: w.end.latency.quantile(0.5) / 1000,
            p99: w.end.latency.quantile(0.99) / 1000,
          };
          let fixed: WindowResult | undefined;
          if (options.fixedRate !== undefined) {
            // The closed loop's publishes in flight are answered during the settling time.
            await gen.setRate(options.fixedRate);
            await sleep(ctx.full ? 1500 : 500);
            fixed = await measureWindow(gen, server, ctx.full ? 6000 : 1500);
            values["cpuPerAckFixed"] = fixed.serverCpuUsPerAck;
            values["ackP50Fixed"] = ms(fixed, 0.5);
            values["ackP99Fixed"] = ms(fixed, 0.99);
          }
          await gen.setRate(0);
          const end = await gen.snapshot(false);
          // Error frames answered over the whole run (refusals, store failures).
          values["errors"] = end.counters.errors;
          const detail = {
            store,
            shape,
            errors: w.errors,
            closed: w.closed,
            serverCpu: w.serverCpuUtil,
            generatorCpu: w.generatorCpuUtil,
            ...(fixed === undefined
              ? {}
              : {
                  fixedRate: options.fixedRate,
                  fixedAcksPerSec: fixed.acksPerSec,
                  fixedErrors: fixed.errors,
                  fixedServerCpu: fixed.serverCpuUtil,
                }),
          };
          return { values, detail };
        },
      ),
    );
  } finally {
    await backend.stop();
  }
}

/** Says which variants got error frames (refusals, store failures) and how many. */
export function durableErrorNotes(
  runs: Record<string, Record<string, number>[]>,
  what = "error frames",
): string[] {
  const notes: string[] = [];
  for (const [variant, list] of Object.entries(runs)) {
    const counts = list.map((r) => r["errors"] ?? 0);
    if (counts.some((n) => n > 0))
      notes.push(`${variant}: ${what} per run (whole run): ${counts.join(", ")}.`);
  }
  return notes;
}
