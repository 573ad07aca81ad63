// Issue 19: three nodes on a broker (NATS, then Redis) and a private
// PostgreSQL, steady publishing into three rooms, nodes killed with SIGKILL
// and restarted in turn. Every member that resumes (or joins with `since`)
// must see, on its new connection, each room's offsets in order with no
// repeat and no gap; every acknowledged message is stored once; a duplicate
// publish whose original was never announced still reaches every node.
//
// RESUME_CHAOS_SECONDS (default 15) sets how long the faults run per broker,
// RESUME_CHAOS_KILL_MS (default 1500) the pause between kills (plus the
// restart, ~0.5-1 s), RESUME_CHAOS_RATE (default 100) each of the three
// publishers' messages per second, RESUME_CHAOS_GAP_WAIT the nodes' GAP_WAIT.
// Each kill lands while the victim's publishers have a burst in flight, so
// some messages are stored but never announced on the broker: the other
// nodes' rooms lag the store until a later message reveals the gap, which is
// when resumed members replayed up to the store's head get repeats.
// With the defaults the whole file takes about 40 s.
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { after, before, describe, test, type TestContext } from "node:test";
import { PostgresStore } from "../../src/adapters/store/postgres-store.js";
import type { StoredMessage } from "../../src/ports/store.js";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { brokerKinds, type BrokerServer } from "../helpers/brokers.js";
import { startServer, type ServerProcess } from "../helpers/server.js";
import { ChaosPeer, type LiveNode } from "./chaos-peer.js";
import { checkStreams, formatReport } from "./stream-check.js";

const SECONDS = Number(process.env["RESUME_CHAOS_SECONDS"] ?? 15);
const KILL_EVERY_MS = Number(process.env["RESUME_CHAOS_KILL_MS"] ?? 1500);
const RATE = Number(process.env["RESUME_CHAOS_RATE"] ?? 100);
// GAP_WAIT is how long a node's room may lag the store after a message went
// missing on the broker; the server's default (50ms) unless set.
const gapWait =
  process.env["RESUME_CHAOS_GAP_WAIT"] === undefined
    ? {}
    : { GAP_WAIT: process.env["RESUME_CHAOS_GAP_WAIT"] };
const ROOMS = ["r0", "r1", "r2"];
const PUBLISHERS = 3;
/** Messages each publisher on the victim sends just before a kill. */
const BURST = 20;
const SUBSCRIBERS = 9;

const brokers = brokerKinds;

const pgAvailable = postgresAvailable();
let pgServer: Promise<PostgresServer> | undefined;
const postgres = (): Promise<PostgresServer> => (pgServer ??= startPostgres());
after(async () => {
  if (pgServer !== undefined) await (await pgServer).close();
});

/** One of the three node positions; its process changes at every restart. */
interface Slot {
  readonly label: string;
  server: ServerProcess | undefined;
}

for (const kind of brokers) {
  const skip = !kind.available() || !pgAvailable;
  describe(`resume order - ${kind.name}`, { skip }, () => {
    let broker: BrokerServer;
    let pgUrl: string;
    let store: PostgresStore;
    const slots: Slot[] = ["n0", "n1", "n2"].map((label) => ({ label, server: undefined }));
    const clients: TestClient[] = [];

    const nodeEnv = () => ({
      ...kind.env(broker.url),
      STORE: "postgres",
      POSTGRES_URL: pgUrl,
      POSTGRES_POOL_SIZE: "4",
      ...gapWait,
      ACK_FLUSH_INTERVAL: "100ms",
      SESSION_REPLAY_LIMIT: "1000",
      HISTORY_SIZE: "1000000",
    });
    const node = (i: number): ServerProcess => {
      const s = slots[i]?.server;
      if (s === undefined) throw new Error(`node ${i} is down`);
      return s;
    };
    const liveNodes = (): LiveNode[] =>
      slots.flatMap((s) =>
        s.server === undefined ? [] : [{ label: s.label, wsUrl: s.server.wsUrl }],
      );

    async function member(at: ServerProcess, room: string): Promise<TestClient> {
      const [c] = await TestClient.open(at.wsUrl);
      clients.push(c);
      c.send({ join_room: { room_id: room } });
      await c.next("room_joined");
      return c;
    }

    async function offsetsUpTo(c: TestClient, room: string, head: number): Promise<number[]> {
      await c.next("message", 5000, (m) => m["target"] === room && Number(m["offset"]) >= head);
      return c
        .all("message")
        .filter((m) => m["target"] === room)
        .map((m) => Number(m["offset"]));
    }

    /** Appends as a node would, without announcing it: the node "died" before its broker publish. */
    async function storeUnannounced(room: string, messageId: string): Promise<number> {
      const sent = { messageId, senderId: "gone", sentAt: new Date().toISOString(), content: "x" };
      const r = await store.append(room, sent);
      assert.equal(r.duplicate, false);
      return Number(r.offset);
    }

    async function history(room: string): Promise<StoredMessage[]> {
      const out: StoredMessage[] = [];
      for (;;) {
        const page = await store.read(room, out.at(-1)?.offset ?? 0n, 1000);
        out.push(...page.messages);
        if (page.messages.length === 0 || (out.at(-1)?.offset ?? 0n) >= page.head) return out;
      }
    }

    before(async () => {
      broker = await kind.start();
      pgUrl = await (await postgres()).createDatabase(`resume_order_${kind.name}`);
      for (const slot of slots) slot.server = await startServer(nodeEnv());
      store = new PostgresStore({ url: pgUrl, poolSize: 2, dedupWindowMs: 120_000 });
      await store.open();
    });

    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const slot of slots) await slot.server?.kill9();
      await store?.close();
      await broker?.close();
    });

    test("a join with since on a node whose room is behind the store repeats nothing", async () => {
      const room = "behind";
      const watcher = await member(node(0), room); // keeps node 0's room open
      const publisher = await member(node(1), room);
      for (let i = 0; i < 3; i++)
        publisher.send({ message: { target: room, content: `m${i}`, message_id: `m${i}` } });
      for (let i = 0; i < 3; i++) await publisher.next("ack");
      await offsetsUpTo(watcher, room, 3);
      // Offset 4 is stored, but no node heard of it: node 0's room stands at 3.
      assert.equal(await storeUnannounced(room, "orphan"), 4);
      const [late] = await TestClient.open(node(0).wsUrl);
      clients.push(late);
      late.send({ join_room: { room_id: room, since: { offset: "2" } } });
      const joined = await late.next("room_joined");
      assert.deepEqual([joined["offset"], joined["recovered"]], ["4", true]);
      publisher.send({ message: { target: room, content: "after", message_id: "after" } });
      assert.equal(
        (await publisher.next("ack", 5000, (a) => a["message_id"] === "after"))["offset"],
        "5",
      );
      assert.deepEqual(await offsetsUpTo(watcher, room, 5), [1, 2, 3, 4, 5]);
      assert.deepEqual(
        await offsetsUpTo(late, room, 5),
        [3, 4, 5],
        "replayed 3 and 4, then live from 5, each once",
      );
    });

    test("a duplicate publish whose original was never announced reaches every node", async () => {
      const room = "orphan-dup";
      const members = [await member(node(0), room), await member(node(1), room)];
      const publisher = await member(node(2), room);
      publisher.send({ message: { target: room, content: "first", message_id: "first" } });
      await publisher.next("ack");
      for (const m of members) await offsetsUpTo(m, room, 1);
      // The original was stored by a node that died before its broker publish;
      // its publisher retries the same message_id on another node.
      const offset = await storeUnannounced(room, "retried");
      publisher.send({ message: { target: room, content: "x", message_id: "retried" } });
      const ack = await publisher.next("ack", 5000, (a) => a["message_id"] === "retried");
      assert.deepEqual([ack["offset"], ack["duplicate"]], [String(offset), true]);
      // No later publish reveals the gap: the duplicate itself must be announced.
      for (const [i, m] of [...members, publisher].entries()) {
        const got = await m
          .next("message", 2000, (x) => x["message_id"] === "retried")
          .catch(() => assert.fail(`the member on node ${i} never received offset ${offset}`));
        assert.equal(got["offset"], String(offset));
      }
      publisher.send({ message: { target: room, content: "next", message_id: "next" } });
      await publisher.next("ack", 5000, (a) => a["message_id"] === "next");
      for (const m of [...members, publisher])
        assert.deepEqual(await offsetsUpTo(m, room, offset + 1), [1, offset, offset + 1]);
    });

    test("kill -9 and restart nodes under steady publishing: resumed streams stay in order", async (t: TestContext) => {
      const started = Date.now();
      const publishers = Array.from(
        { length: PUBLISHERS },
        (_, i) =>
          new ChaosPeer({
            name: `pub${i}`,
            rooms: ROOMS,
            nodes: liveNodes,
            firstNode: slots[i % 3]!.label,
            publishRate: RATE,
          }),
      );
      const subscribers = Array.from(
        { length: SUBSCRIBERS },
        (_, i) =>
          new ChaosPeer({
            name: `sub${i}`,
            rooms: ROOMS,
            nodes: liveNodes,
            firstNode: slots[Math.floor(i / 3) % 3]!.label,
          }),
      );
      const peers = [...publishers, ...subscribers];
      try {
        for (const p of peers) p.start();
        await eventually(() => peers.every((p) => p.ready), { timeoutMs: 15_000 });

        // The fault schedule: one node at a time, killed while its publishers
        // have a burst in flight (some stored, not yet announced), and
        // restarted at once.
        let kills = 0;
        const end = Date.now() + SECONDS * 1000;
        while (Date.now() < end) {
          await delay(KILL_EVERY_MS);
          const slot = slots[kills % slots.length]!;
          const inFlight = publishers
            .filter((p) => p.node === slot.label)
            .map((p) => ({ p, ids: p.burst(BURST) }));
          await eventually(
            () => inFlight.every(({ p, ids }) => ids.some((id) => p.acked.has(id))),
            {
              timeoutMs: 1000,
              intervalMs: 1,
            },
          ).catch(() => undefined);
          await slot.server?.kill9();
          slot.server = undefined;
          kills++;
          slot.server = await startServer(nodeEnv());
        }

        for (const p of publishers) p.stopPublishing();
        await eventually(() => peers.every((p) => p.ready), { timeoutMs: 20_000 });
        await eventually(() => publishers.every((p) => p.unacked === 0), { timeoutMs: 20_000 });
        // A last message per room: every member must reach it on its current
        // connection (nodes missing an unannounced message find the gap).
        const markers = ROOMS.map((room) => `marker-${room}`);
        for (const [i, room] of ROOMS.entries()) publishers[0]!.publishOne(room, markers[i]!);
        await eventually(() => markers.every((m) => publishers[0]!.acked.has(m)), {
          timeoutMs: 10_000,
        });
        const heads = new Map(
          ROOMS.map((r, i) => [r, publishers[0]!.acked.get(markers[i]!)!.offset]),
        );
        let stalled: string[] = [];
        await eventually(
          () => {
            stalled = peers.flatMap((p) =>
              p.rooms.filter((r) => p.current(r) < heads.get(r)!).map((r) => `${p.name}/${r}`),
            );
            return stalled.length === 0;
          },
          { timeoutMs: 10_000 },
        ).catch(() => undefined);

        // Every acknowledged message is stored once, at the acknowledged offset.
        const acked = new Map<string, { room: string; offset: number }>();
        let duplicates = 0;
        for (const p of publishers)
          for (const [id, a] of p.acked) {
            acked.set(id, a);
            if (a.duplicate) duplicates++;
          }
        const storeProblems: string[] = [];
        for (const room of ROOMS) {
          const stored = await history(room);
          const ids = new Map<string, number>();
          for (const [i, m] of stored.entries()) {
            if (Number(m.offset) !== i + 1)
              storeProblems.push(`${room}: offset ${m.offset} at ${i + 1}`);
            if (ids.has(m.messageId)) storeProblems.push(`${room}: ${m.messageId} stored twice`);
            ids.set(m.messageId, Number(m.offset));
          }
          for (const [id, a] of acked)
            if (a.room === room && ids.get(id) !== a.offset)
              storeProblems.push(`${id} acked at ${a.offset}, stored at ${String(ids.get(id))}`);
        }

        const report = checkStreams(peers.flatMap((p) => p.connections));
        const lines = [
          `${kind.name}: ${kills} kills in ${SECONDS} s, ${acked.size} messages acked ` +
            `(${duplicates} duplicate acks), ${stalled.length} streams stalled, ` +
            `${Math.round((Date.now() - started) / 1000)} s`,
          ...formatReport(kind.name, report),
        ];
        for (const line of lines) t.diagnostic(line);
        const summary = `\n${lines.join("\n")}\n${report.examples.join("\n")}`;
        assert.deepEqual(storeProblems.slice(0, 10), [], "store: every acked message once");
        assert.deepEqual(
          {
            repeats: report.total.repeats,
            reorders: report.total.reorders,
            gaps: report.total.gaps,
            early: report.total.early,
          },
          { repeats: 0, reorders: 0, gaps: 0, early: 0 },
          `offsets on a connection went backwards, repeated or skipped${summary}`,
        );
        assert.deepEqual(stalled, [], `members that never reached the last message${summary}`);
      } finally {
        await Promise.all(peers.map((p) => p.stop()));
      }
    });
  });
}
