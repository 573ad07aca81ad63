// Server API publish throughput (Roomcast only): 32 clients in a closed loop,
// each POSTing one message at a time to /api/v1/rooms/{room}/messages over a
// keep-alive connection, with the memory and PostgreSQL stores. The figure is
// answered (200) publishes/s and the server CPU each costs. The clients run in
// the runner's process; an HTTP request loop needs no worker threads here.
import { Agent, request } from "node:http";
import { cpuSeconds } from "../lib/proc-stats.js";
import { serverSpec } from "../lib/servers.js";
import type { Metric } from "../report/model.js";
import { withServer, type RunContext } from "./context.js";
import { POSTGRES_URL } from "./durable.js";
import { createFreshDatabase, type FreshDatabase } from "./fresh-database.js";

export const API_STORES = ["memory", "postgres"] as const;
export type ApiStore = (typeof API_STORES)[number];

export const API_PUBLISH_METRICS: Metric[] = [
  {
    key: "perSec",
    label: "API publishes/s into one room",
    unit: "req/s",
    better: "higher",
    digits: 0,
  },
  {
    key: "cpuPerPublish",
    label: "server CPU per API publish",
    unit: "µs",
    better: "lower",
    digits: 1,
  },
  { key: "p99", label: "p99 request latency", unit: "ms", better: "lower", digits: 2 },
];

const CLIENTS = 32;
const KEY = "bench-api-key";

function post(agent: Agent, port: number, path: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent,
        headers: {
          Authorization: `Bearer ${KEY}`,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.once("error", () => resolve(0));
    req.end(body);
  });
}

export async function runApiPublish(
  ctx: RunContext,
  store: ApiStore,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  let database: FreshDatabase | undefined;
  const env: Record<string, string> = { STORE: store, API_KEY: KEY, LOG_LEVEL: "error" };
  if (store === "postgres") {
    database = await createFreshDatabase(POSTGRES_URL);
    env["POSTGRES_URL"] = database.url;
  }
  const seconds = ctx.full ? 10 : 3;
  const content = "x".repeat(ctx.contentBytes);
  try {
    return await withServer(ctx, serverSpec("roomcast"), env, async (server) => {
      const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
      const path = `/api/v1/rooms/api-bench-${Date.now().toString(36)}/messages`;
      const body = JSON.stringify({ content });
      // Warm up (JIT, pool connections) before measuring.
      await Promise.all(
        Array.from({ length: CLIENTS }, () => post(agent, server.port, path, body)),
      );
      let ok = 0;
      let failed = 0;
      const latencies: number[] = [];
      const cpu0 = cpuSeconds(server.pid);
      const start = performance.now();
      const end = start + seconds * 1000;
      const loop = async (): Promise<void> => {
        while (performance.now() < end) {
          const t = performance.now();
          const status = await post(agent, server.port, path, body);
          latencies.push(performance.now() - t);
          if (status === 200) ok++;
          else failed++;
        }
      };
      await Promise.all(Array.from({ length: CLIENTS }, () => loop()));
      const elapsed = (performance.now() - start) / 1000;
      const cpu = cpuSeconds(server.pid) - cpu0;
      agent.destroy();
      latencies.sort((a, b) => a - b);
      return {
        values: {
          perSec: ok / elapsed,
          cpuPerPublish: (cpu / Math.max(1, ok)) * 1e6,
          p99: latencies[Math.floor(latencies.length * 0.99)] ?? Number.NaN,
        },
        detail: { store, ok, failed, elapsed, clients: CLIENTS },
      };
    });
  } finally {
    await database?.drop();
  }
}
