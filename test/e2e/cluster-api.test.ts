// The server API and presence on three real nodes sharing a broker (NATS, then
// Redis) and PostgreSQL: an API publish on one node reaches members on the
// others in order, presence sees every node, a node killed with SIGKILL
// leaves no ghost, and a disconnect closes the user's sockets on every node
// with 4502 and ends its resume.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { brokerKinds } from "../helpers/brokers.js";
import { startServer, type ServerProcess } from "../helpers/server.js";
import { API_TEST_KEY as KEY, API_TEST_SECRET as SECRET, api, token } from "../helpers/api.js";
const HEARTBEAT_MS = 1000;

const brokers = brokerKinds;

const pgAvailable = postgresAvailable();

for (const kind of brokers) {
  const skip = !kind.available() || !pgAvailable;
  describe(`server API and presence - cluster on ${kind.name}`, { skip }, () => {
    let broker: { url: string; close(): Promise<void> };
    let pg: PostgresServer;
    let pgUrl: string;
    const nodes: ServerProcess[] = [];
    const clients: TestClient[] = [];

    const nodeEnv = () => ({
      ...kind.env(broker.url),
      STORE: "postgres",
      POSTGRES_URL: pgUrl,
      POSTGRES_POOL_SIZE: "4",
      GAP_WAIT: "30ms",
      API_KEY: KEY,
      AUTH_JWT_SECRET: SECRET,
      PRESENCE_HEARTBEAT: `${HEARTBEAT_MS}ms`,
    });

    async function member(node: ServerProcess, room: string, sub: string, presence = false) {
      const [c, s] = await TestClient.open(node.wsUrl, {
        headers: { Authorization: `Bearer ${await token(sub)}` },
      });
      clients.push(c);
      c.send({ join_room: { room_id: room, presence } });
      await c.next("room_joined");
      return [c, s] as const;
    }

    /** The member ids a watcher believes present: its presence_state plus every diff. */
    function view(c: TestClient): string[] {
      const present = new Set<string>();
      for (const f of c.frames) {
        const state = f["presence_state"];
        const diff = f["presence_diff"];
        if (state !== undefined) {
          present.clear();
          for (const m of state["members"] as { member_id: string }[]) present.add(m.member_id);
        }
        if (diff !== undefined) {
          for (const m of diff["joined"] as { member_id: string }[]) present.add(m.member_id);
          for (const m of diff["left"] as { member_id: string }[]) present.delete(m.member_id);
        }
      }
      return [...present].sort();
    }

    before(async () => {
      broker = await kind.start();
      pg = await startPostgres();
      pgUrl = await pg.createDatabase(`cluster_api_${kind.name}`);
      for (let i = 0; i < 3; i++) nodes.push(await startServer(nodeEnv()));
    });

    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const n of nodes) await n.stop();
      await broker.close();
      await pg.close();
    });

    test("an API publish on one node reaches members on every node with its offset", async () => {
      const room = "api-fan";
      const members = [];
      for (const node of nodes) members.push((await member(node, room, "u"))[0]);
      const offsets = [];
      for (let i = 0; i < 20; i++) {
        const r = await api(nodes[i % 3]!, "POST", `/api/v1/rooms/${room}/messages`, {
          content: `m${i}`,
          message_id: `id-${i}`,
        });
        assert.equal(r.status, 200);
        offsets.push(r.body["offset"]);
      }
      assert.deepEqual(
        offsets,
        Array.from({ length: 20 }, (_, i) => String(i + 1)),
      );
      for (const m of members) {
        for (let i = 0; i < 20; i++) {
          const got = await m.next("message", 10_000);
          assert.equal(got["offset"], String(i + 1));
          assert.equal(got["sender_id"], "server");
        }
      }
      // A repeat on another node is a duplicate with the original offset.
      const again = await api(nodes[2]!, "POST", `/api/v1/rooms/${room}/messages`, {
        content: "m0",
        message_id: "id-0",
      });
      assert.deepEqual([again.body["duplicate"], again.body["offset"]], [true, "1"]);
      const page = await api(nodes[1]!, "GET", `/api/v1/rooms/${room}/history?since=18`);
      assert.deepEqual(
        (page.body["messages"] as Record<string, unknown>[]).map((m) => m["offset"]),
        ["19", "20"],
      );
    });

    test("presence: state and diffs include members on other nodes; the API sees every node", async () => {
      const room = "pres";
      const [, a] = await member(nodes[0]!, room, "alice");
      const [watcher, w] = await member(nodes[1]!, room, "wendy", true);
      await watcher.next("presence_state");
      assert.deepEqual(view(watcher), [a["member_id"], w["member_id"]].sort());

      const [bob, b] = await member(nodes[2]!, room, "bob");
      await eventually(() => view(watcher).includes(String(b["member_id"])));
      // Node 2 asks; nobody watches from there, yet it sees all three.
      const seen = await api(nodes[2]!, "GET", `/api/v1/rooms/${room}/presence`);
      assert.deepEqual(
        (seen.body["members"] as Record<string, unknown>[]).map((m) => m["user_id"]).sort(),
        ["alice", "bob", "wendy"],
      );
      // A clean close is `left` within 5 s on the other node.
      const closedAt = Date.now();
      bob.close();
      await eventually(() => !view(watcher).includes(String(b["member_id"])), {
        timeoutMs: 5000,
      });
      assert.ok(Date.now() - closedAt < 5000);
    });

    test("a node killed with SIGKILL leaves no ghost", async () => {
      const room = "ghost";
      const doomed = await startServer(nodeEnv());
      try {
        const [watcher] = await member(nodes[0]!, room, "wendy", true);
        await watcher.next("presence_state");
        const [, g] = await member(doomed, room, "ghost");
        await eventually(() => view(watcher).includes(String(g["member_id"])));
        const killedAt = Date.now();
        await doomed.kill9();
        // Expiry is 3 heartbeats (+ one sweep); 30 s with the defaults.
        await eventually(() => !view(watcher).includes(String(g["member_id"])), {
          timeoutMs: 3 * HEARTBEAT_MS + 5000,
        });
        assert.ok(Date.now() - killedAt <= 3 * HEARTBEAT_MS + 5000);
        const seen = await api(nodes[2]!, "GET", `/api/v1/rooms/${room}/presence`);
        assert.deepEqual(
          (seen.body["members"] as Record<string, unknown>[]).map((m) => m["user_id"]),
          ["wendy"],
        );
      } finally {
        await doomed.kill9().catch(() => undefined);
      }
    });

    test("disconnect closes the user's sockets on every node with 4502 and ends its resume", async () => {
      const socks = [];
      for (const node of nodes) socks.push(await member(node, "d", "carol"));
      const [other] = await member(nodes[1]!, "d", "dave");
      const res = await api(nodes[0]!, "POST", "/api/v1/users/carol/disconnect");
      assert.equal(res.status, 202);
      for (const [c] of socks) assert.equal((await c.closed).code, 4502);
      for (const [, s] of socks) {
        const [again, session] = await TestClient.open(nodes[2]!.wsUrl, {
          session: String(s["token"]),
          headers: { Authorization: `Bearer ${await token("carol")}` },
        });
        clients.push(again);
        assert.equal(session["resumed"], false);
      }
      assert.equal(other.ws.readyState, other.ws.OPEN);
    });
  });
}
