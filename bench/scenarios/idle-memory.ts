// Idle memory: connections that joined one room each (rooms of 100) and then
// stay silent. Per-connection cost = (RSS with N connections − RSS before any) / N,
// measured at two levels to show it is linear.
import { setTimeout as sleep } from "node:timers/promises";
import type { MemberSpec } from "../load/messages.js";
import { rssBytes } from "../lib/proc-stats.js";
import type { ServerProcess } from "../lib/server-process.js";
import type { ServerSpec } from "../lib/servers.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric } from "../report/model.js";
import { withGenerator, withServer, type RunContext } from "./context.js";

const ROOM_SIZE = 100;
/** Connections per loopback source address, well under the ~28k ephemeral ports. */
const PER_ADDRESS = 5_000;

export function idleMetrics(levels: readonly number[]): Metric[] {
  return levels.map((n) => ({
    key: `kbPerConn${n}`,
    label: `RSS per idle connection at ${n.toLocaleString("en-US")}`,
    unit: "KB",
    better: "lower",
    digits: 2,
  }));
}

/** RSS once it stops moving (a connect burst leaves garbage and lazy page faults). */
async function settledRss(server: ServerProcess, maxMs: number): Promise<number> {
  const deadline = performance.now() + maxMs;
  let last = rssBytes(server.pid);
  await sleep(1000);
  while (performance.now() < deadline) {
    const now = rssBytes(server.pid);
    if (Math.abs(now - last) < last * 0.005) return now;
    last = now;
    await sleep(500);
  }
  return rssBytes(server.pid);
}

function idleMembers(from: number, count: number): MemberSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    room: `idle-${Math.floor((from + i) / ROOM_SIZE)}`,
    publisher: false,
  }));
}

export async function runIdleMemory(
  ctx: RunContext,
  spec: ServerSpec,
  levels: readonly number[],
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const settleMs = ctx.full ? 4000 : 1500;
  return withServer(ctx, spec, {}, async (server) => {
    const base = await settledRss(server, settleMs);
    const snapshot = async (connections: number): Promise<void> => {
      if (ctx.heapSnapshotDir === undefined || !server.node) return;
      const file = await server.heapSnapshot(
        ctx.heapSnapshotDir,
        `${spec.name}-${server.pid}-${connections}`,
      );
      ctx.log(`heap snapshot ${file}`);
    };
    await snapshot(0);
    const values: Record<string, number> = {};
    const detail: Record<string, number>[] = [];
    // Each level adds its difference to the connections already open, held by a
    // generator that stays open until every level is measured.
    const open = async (index: number, have: number): Promise<void> => {
      const n = levels[index];
      if (n === undefined) return;
      const add = idleMembers(have, n - have);
      await withGenerator(
        {
          url: server.url,
          kind: spec.kind,
          members: add,
          workers: ctx.workers,
          sourceAddresses: nextSourceAddresses(Math.max(2, Math.ceil(add.length / PER_ADDRESS))),
          contentBytes: ctx.contentBytes,
        },
        async (gen) => {
          const c = await gen.connect();
          if (c.failed > 0)
            throw new Error(
              `${c.failed} of ${add.length} idle connections failed: ${c.firstError}`,
            );
          const rss = await settledRss(server, settleMs);
          values[`kbPerConn${n}`] = (rss - base) / n / 1000;
          detail.push({ connections: n, baseRssBytes: base, rssBytes: rss });
          await snapshot(n);
          await open(index + 1, n);
        },
      );
    };
    await open(0, 0);
    return { values, detail };
  });
}
