// A node pointed at a PostgreSQL primary and its synchronous streaming standby
// (POSTGRES_URL lists both, target_session_attrs=read-write). Publishes flow;
// the primary is killed and the standby promoted; publishes resume against
// the new primary without restarting the node, and every message acked
// before the kill is in the new primary's history at its acked offset.
//
// Synchronous replication (synchronous_standby_names = '*') is what makes
// "acked" mean "on the standby". With asynchronous replication a promotion
// can lose the last commits the standby had not received yet, acked or not:
// docs/operations.md says so, and this test does not claim otherwise.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import pg from "pg";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import {
  replicatedPostgresAvailable,
  startReplicatedPostgres,
  type ReplicatedPostgres,
} from "../helpers/postgres-replicated.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const skip = !replicatedPostgresAvailable();
let pair: ReplicatedPostgres;
let node: ServerProcess;

before(async () => {
  if (skip) return;
  pair = await startReplicatedPostgres({ synchronous: true });
  node = await startServer({
    STORE: "postgres",
    POSTGRES_URL: pair.url,
    STORE_TIMEOUT: "1s",
    STORE_BREAKER_RESET: "200ms",
  });
});

after(async () => {
  await node?.stop();
  await pair?.close();
});

/** Publishes with a message id, retrying as a client would until acked; resolves with the offset. */
async function publishUntilAcked(c: TestClient, id: string): Promise<string> {
  return await eventually(
    async () => {
      c.send({ message: { target: "f", content: id, message_id: id } });
      const reply = await Promise.race([
        c.next("ack", 3000, (x) => x["message_id"] === id).then((a) => String(a["offset"])),
        c.next("error", 3000, (e) => e["ref"] === id).then(() => undefined),
      ]);
      return reply;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

test(
  "postgres failover - publishes resume on the promoted standby and no acked message is lost",
  { skip },
  async () => {
    const [a] = await TestClient.open(node.wsUrl);
    const [b] = await TestClient.open(node.wsUrl);
    for (const c of [a, b]) {
      c.send({ join_room: { room_id: "f" } });
      await c.next("room_joined");
    }
    const acked = new Map<string, string>();
    for (let i = 0; i < 20; i++)
      acked.set(`before-${i}`, await publishUntilAcked(a, `before-${i}`));

    await pair.failover();

    for (let i = 0; i < 10; i++) acked.set(`after-${i}`, await publishUntilAcked(a, `after-${i}`));
    assert.equal(a.ws.readyState, a.ws.OPEN, "the socket stayed open through the failover");

    // Every acked message is in the new primary's history, once, at its acked offset.
    const client = new pg.Client({
      connectionString: `postgres://postgres@127.0.0.1:${pair.standby.port}/roomcast`,
    });
    await client.connect();
    try {
      const { rows } = await client.query<{ seq: string; message_id: string }>(
        "SELECT seq, message_id FROM messages WHERE room = 'f' ORDER BY seq",
      );
      const stored = new Map(rows.map((r) => [r.message_id, r.seq]));
      assert.equal(stored.size, rows.length, "no message stored twice");
      for (const [id, offset] of acked) {
        assert.equal(stored.get(id), offset, `${id} is stored at its acked offset ${offset}`);
      }
      assert.deepEqual(
        rows.map((r) => Number(r.seq)),
        rows.map((_, i) => i + 1),
        "offsets stay contiguous across the failover",
      );
    } finally {
      await client.end();
    }
    // The other member got every message in offset order.
    const got: string[] = [];
    for (let i = 0; i < acked.size; i++)
      got.push(String((await b.next("message", 10_000))["message_id"]));
    assert.deepEqual(got, [...acked.keys()]);
    a.close();
    b.close();
  },
);
