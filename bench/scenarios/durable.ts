// Durable publish throughput into one room: Roomcast with a store that persists
// each message (append with dedup and offset) before acking it. Publishers keep
// a fixed number of publishes in flight; the figure is acknowledged publishes/s.
import { setTimeout as sleep } from "node:timers/promises";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MemberSpec } from "../load/messages.js";
import { serverSpec } from "../lib/servers.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric } from "../report/model.js";
import { withGenerator, withServer, type RunContext } from "./context.js";
import { createFreshDatabase, type FreshDatabase } from "./fresh-database.js";
import { measureWindow } from "./window.js";

export const STORES = ["postgres", "sqlite", "memory"] as const;
export type StoreName = (typeof STORES)[number];

export const DURABLE_METRICS: Metric[] = [
  {
    key: "acksPerSec",
    label: "acknowledged publishes/s into one room",
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
  { key: "p50", label: "p50 publish→deliver latency", unit: "ms", better: "lower", digits: 2 },
  { key: "p99", label: "p99 publish→deliver latency", unit: "ms", better: "lower", digits: 2 },
];

const PUBLISHERS = 32;
const IN_FLIGHT = 4;
/**
 * BENCH_DURABLE_ROOMS=N (N > 1): N rooms whose only member publishes, as the
 * bench-durable branch's 100-room shape, instead of 32 publishers in one room.
 * A stopgap until that scenario lands.
 */
const ROOMS = Math.max(1, Math.trunc(Number(process.env["BENCH_DURABLE_ROOMS"] ?? "1")) || 1);

export const POSTGRES_URL =
  process.env["BENCH_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export async function runDurable(
  ctx: RunContext,
  store: StoreName,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const dir = mkdtempSync(join(tmpdir(), "roomcast-bench-"));
  const env: Record<string, string> = { STORE: store };
  if (store === "sqlite") env["SQLITE_PATH"] = join(dir, "bench.db");
  let database: FreshDatabase | undefined;
  if (store === "postgres") {
    database = await createFreshDatabase(POSTGRES_URL);
    env["POSTGRES_URL"] = database.url;
  }
  // A fresh room per run, so history left by earlier runs is never in the way.
  const room = `durable-${Date.now().toString(36)}`;
  const members: MemberSpec[] =
    ROOMS === 1
      ? Array.from({ length: PUBLISHERS }, () => ({ room, publisher: true }))
      : Array.from({ length: ROOMS }, (_, r) => ({ room: `${room}-${r}`, publisher: true }));
  try {
    return await withServer(ctx, serverSpec("roomcast"), env, (server) =>
      withGenerator(
        {
          url: server.url,
          kind: "roomcast-json",
          members,
          workers: ctx.workers,
          sourceAddresses: nextSourceAddresses(1),
          contentBytes: ctx.contentBytes,
        },
        async (gen) => {
          const c = await gen.connect();
          if (c.failed > 0) throw new Error(`${c.failed} connections failed: ${c.firstError}`);
          await gen.closedLoop(IN_FLIGHT);
          await sleep(ctx.full ? 1500 : 500);
          const w = await measureWindow(gen, server, ctx.full ? 6000 : 2000);
          await gen.setRate(0);
          const values = {
            acksPerSec: w.acksPerSec,
            cpuPerAck: w.serverCpuUsPerAck,
            p50: w.end.latency.quantile(0.5) / 1000,
            p99: w.end.latency.quantile(0.99) / 1000,
          };
          const detail = {
            store,
            rooms: ROOMS,
            publishers: members.length,
            inFlightEach: IN_FLIGHT,
            errors: w.errors,
            closed: w.closed,
            serverCpu: w.serverCpuUtil,
            generatorCpu: w.generatorCpuUtil,
          };
          return { values, detail };
        },
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await database?.drop();
  }
}
