// One chaos run: steady load on a cluster while a nemesis injects faults for
// a bounded time, then the cluster settles (faults healed, publishing
// stopped, retries answered, one last message per room that every connected
// member must reach), the store is read back from PostgreSQL directly, and
// the checker judges the whole history.
import pg from "pg";
import { eventually } from "../helpers/eventually.js";
import { ChaosPeer } from "./chaos-peer.js";
import { checkHistory, type ResultRow } from "./checker.js";
import type { ChaosCluster } from "./cluster.js";
import type { History, StoredRow } from "./history.js";
import type { Nemesis } from "./nemeses.js";

export interface LoadOptions {
  /** How long the nemesis runs. */
  readonly seconds: number;
  readonly random: () => number;
  readonly rooms?: number;
  /** Publishers that retry until acked; as many again send each message once. */
  readonly publishers?: number;
  readonly subscribers?: number;
  /** Messages per second per publisher. */
  readonly rate?: number;
  /**
   * Refusal codes after which a message may still be stored (the checker's
   * maybeStoredCodes).
   */
  readonly maybeStoredCodes?: readonly string[];
}

const SETTLE_MS = 30_000;

export async function runScenario(
  cluster: ChaosCluster,
  nemesis: Nemesis,
  load: LoadOptions,
): Promise<ResultRow> {
  const started = Date.now();
  const rooms = Array.from({ length: load.rooms ?? 3 }, (_, i) => `${nemesis.name}-r${i}`);
  const labels = cluster.slots.map((s) => s.label);
  const at = (i: number) => labels[i % labels.length]!;
  const nodes = cluster.liveNodes;
  const perKind = load.publishers ?? 2;
  const publishers = Array.from(
    { length: perKind * 2 },
    (_, i) =>
      new ChaosPeer({
        name: `${nemesis.name}-pub${i}`,
        rooms,
        nodes,
        firstNode: at(i),
        publishRate: load.rate ?? 30,
        retry: i < perKind,
      }),
  );
  const subscribers = Array.from(
    { length: load.subscribers ?? 6 },
    (_, i) => new ChaosPeer({ name: `${nemesis.name}-sub${i}`, rooms, nodes, firstNode: at(i) }),
  );
  const peers = [...publishers, ...subscribers];
  const problems: string[] = [];
  let faults = "";
  try {
    for (const p of peers) p.start();
    await eventually(() => peers.every((p) => p.ready), { timeoutMs: SETTLE_MS });

    faults = await nemesis.run(
      { cluster, publishers, random: load.random },
      AbortSignal.timeout(load.seconds * 1000),
    );

    // Settle: every peer connected and joined, every retried message answered.
    for (const p of publishers) p.stopPublishing();
    await eventually(() => peers.every((p) => p.ready), { timeoutMs: SETTLE_MS }).catch(() =>
      problems.push(
        `stalled: peers not reconnected within ${SETTLE_MS} ms: ` +
          peers
            .filter((p) => !p.ready)
            .map((p) => p.name)
            .join(", "),
      ),
    );
    await eventually(() => publishers.every((p) => p.unacked === 0), {
      timeoutMs: SETTLE_MS,
    }).catch(() =>
      problems.push(
        `stalled: messages never acknowledged: ` +
          publishers.map((p) => `${p.name} ${p.unacked}`).join(", "),
      ),
    );
    // One last message per room: every member must reach it on its current
    // connection (a node that missed a message on the broker finds the gap).
    const marker = publishers[0]!;
    for (const room of rooms) marker.publishOne(room, `${room}-last`);
    const last = await eventually(
      () => {
        const acks = rooms.map((r) => marker.acked.get(`${r}-last`));
        return acks.every((a) => a !== undefined) ? acks : undefined;
      },
      { timeoutMs: SETTLE_MS },
    ).catch(() => undefined);
    if (last !== undefined) {
      await eventually(
        () => peers.every((p) => rooms.every((r, i) => p.current(r) >= last[i]!.offset)),
        { timeoutMs: 10_000 },
      ).catch(() => undefined); // the checker reports who stalled
    } else {
      problems.push("stalled: the last messages were never acknowledged");
    }
    const streams = peers.flatMap((p) => p.streams(true));
    await Promise.all(peers.map((p) => p.stop()));
    const history: History = {
      ops: publishers.flatMap((p) => p.ops),
      streams,
      store: await readStore(cluster.storeUrl, rooms),
    };
    const result = checkHistory(
      history,
      load.maybeStoredCodes === undefined ? {} : { maybeStoredCodes: load.maybeStoredCodes },
    );
    // Settling problems count as stalls too.
    const counts = { ...result.counts, stalled: result.counts.stalled + problems.length };
    return {
      nemesis: nemesis.name,
      broker: cluster.brokerName,
      faults,
      seconds: (Date.now() - started) / 1000,
      result: {
        counts,
        problems: [...problems, ...result.problems],
        ok: result.ok && problems.length === 0,
      },
    };
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
  }
}

/** Each room's rows and head, read from PostgreSQL directly (not through a node). */
async function readStore(
  url: string,
  rooms: readonly string[],
): Promise<Map<string, { head: number; rows: StoredRow[] }>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const out = new Map<string, { head: number; rows: StoredRow[] }>();
    for (const room of rooms) {
      const head = await client.query<{ head: string }>("SELECT head FROM rooms WHERE room = $1", [
        room,
      ]);
      const rows = await client.query<{ seq: string; message_id: string }>(
        "SELECT seq, message_id FROM messages WHERE room = $1 ORDER BY seq",
        [room],
      );
      out.set(room, {
        head: Number(head.rows[0]?.head ?? 0),
        rows: rows.rows.map((r) => ({ offset: Number(r.seq), messageId: r.message_id })),
      });
    }
    return out;
  } finally {
    await client.end();
  }
}
