// What the rate limits cost (issue 10): the same scenario with every limit off
// and with the server's defaults on, alternating, and in the durable scenario
// also with the per-user and per-room limits held in a private Redis
// (RATE_LIMIT_DISTRIBUTED=true), which adds one round trip per publish.
//
// The fanout load stays under the default limits (at most a few hundred
// publishes/s into its room, tens per publisher). The durable closed loop does
// not: 32 connections publishing as fast as acks come back would be refused by
// RATE_LIMIT_MESSAGES (100/1s per connection) and RATE_LIMIT_ROOM_MESSAGES
// (1000/1s), and the figure would be the cost of refusals. So "on" there keeps
// every default but raises those two rates far above the load: each publish
// still runs the same two GCRA checks (their cost does not depend on the rate),
// none is refused. Its fixed-rate window is under the defaults as they are,
// and under what the server sustains on a busy machine, so its latency is the
// cost of one publish and not a queue. Error frames are counted and reported.
import type { Metric, ScenarioResult } from "../report/model.js";
import {
  RATE_LIMITS_OFF,
  serverSpec,
  withDefaultRateLimits,
  type ServerSpec,
} from "../lib/servers.js";
import { Redis } from "ioredis";
import { startRedisServer } from "../../tools/redis-server.js";
import type { RunContext } from "./context.js";
import { DURABLE_METRICS, FIXED_RATE, FIXED_RATE_METRICS, runDurable } from "./durable.js";
import { runThroughput, THROUGHPUT_METRICS, type ThroughputShape } from "./throughput.js";

export const FANOUT_LIMIT_MODES = ["limits=off", "limits=on"] as const;
export const DURABLE_LIMIT_MODES = ["limits=off", "limits=on", "limits=distributed"] as const;
export type LimitMode = (typeof DURABLE_LIMIT_MODES)[number];

/** The durable scenario's store: the reference durable store, a fresh database per run. */
export const LIMITS_STORE = "postgres";
const RAISED = "1000000/1s";

const ERRORS: Metric = {
  key: "errors",
  label: "error frames (refusals) received",
  unit: "frames",
  better: "lower",
  digits: 0,
};

export const LIMITS_FANOUT_METRICS: Metric[] = [
  ...THROUGHPUT_METRICS.filter((m) => m.key !== "rssMiB"),
  { ...ERRORS, label: "error frames (refusals) in the measured windows" },
];
export const LIMITS_DURABLE_METRICS: Metric[] = [
  ...DURABLE_METRICS,
  ...FIXED_RATE_METRICS(FIXED_RATE),
  { ...ERRORS, label: "error frames (refusals) over the run" },
];

function roomcast(mode: LimitMode): ServerSpec {
  const spec = serverSpec("roomcast");
  return mode === "limits=off"
    ? { ...spec, env: { ...spec.env, ...RATE_LIMITS_OFF } }
    : withDefaultRateLimits(spec);
}

interface StepErrors {
  errors?: number;
}

export async function runLimitsFanout(
  ctx: RunContext,
  mode: LimitMode,
  shape: ThroughputShape,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const run = await runThroughput(ctx, roomcast(mode), shape);
  const d = run.detail as { steps: StepErrors[]; half: StepErrors; common: StepErrors };
  const windows = [...d.steps, d.half, d.common];
  const errors = windows.reduce((sum, w) => sum + (w.errors ?? 0), 0);
  return { values: { ...run.values, errors }, detail: run.detail };
}

export async function runLimitsDurable(
  ctx: RunContext,
  mode: LimitMode,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const spec = roomcast(mode);
  const fixedRate = FIXED_RATE;
  if (mode === "limits=off") return runDurable(ctx, LIMITS_STORE, { spec, fixedRate });
  const env = { RATE_LIMIT_MESSAGES: RAISED, RATE_LIMIT_ROOM_MESSAGES: RAISED };
  if (mode === "limits=on") return runDurable(ctx, LIMITS_STORE, { spec, env, fixedRate });
  // The limiter's state needs no persistence; it floats like the stores' backends.
  const redis = await startRedisServer({ cpus: "0,1" });
  try {
    const run = await runDurable(ctx, LIMITS_STORE, {
      spec,
      fixedRate,
      env: {
        ...env,
        RATE_LIMIT_DISTRIBUTED: "true",
        RATE_LIMIT_BACKEND: "redis",
        RATE_LIMIT_REDIS_URL: redis.url,
      },
    });
    // Proof that the checks went to Redis (a node falls back to local limits when it cannot reach it).
    return {
      values: { ...run.values, limiterCalls: await scriptCalls(redis.url) },
      detail: run.detail,
    };
  } finally {
    await redis.close();
  }
}

export function limitsTitle(scenario: "fanout" | "durable"): string {
  return scenario === "fanout"
    ? "Cost of rate limits, fanout (Roomcast only): one room of 1,000 members, 10 publishers"
    : `Cost of rate limits, durable publish (Roomcast only, STORE=${LIMITS_STORE}): one room, 32 publishers × 4 in flight, then ${FIXED_RATE} publishes/s`;
}

export function limitsNotes(result: ScenarioResult): string[] {
  const calls = (result.runs["limits=distributed"] ?? []).map((r) => r["limiterCalls"] ?? 0);
  return result.name === "limits-durable"
    ? [
        `limits=distributed: limiter script calls served by Redis per run: ${calls.join(", ")} (0 would mean the node fell back to local limits).`,
        `"limits=on": every default limit, with RATE_LIMIT_MESSAGES and RATE_LIMIT_ROOM_MESSAGES raised to ${RAISED} so the closed loop is not refused (same checks per publish); "limits=distributed" adds RATE_LIMIT_DISTRIBUTED=true on a private redis-server (RATE_LIMIT_BACKEND=redis). The clients are anonymous, so the per-connection limit stays local and the room limit is the one round trip to Redis per publish.`,
      ]
    : ['"limits=on": the server\'s defaults as they are (the load stays under them).'];
}

/** Script calls (the limiter's one Lua script per check) the Redis at `url` has served. */
async function scriptCalls(url: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info("commandstats");
    let calls = 0;
    for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval|fcall):calls=(\d+)/gm))
      calls += Number(m[1]);
    return calls;
  } finally {
    client.disconnect();
  }
}
