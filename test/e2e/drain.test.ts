// Drain under steady publishing (HTTP.md "Drain"), on the embedded SQLite node
// and on a two-node PostgreSQL + NATS cluster: readiness and upgrades turn 503
// at once, every client gets 1012 at a time spread over DRAIN_PERIOD, nothing
// acknowledged is lost (read back from the store), sessions resume with the
// acks they had, and the process exits 0 in time; a second signal exits at once.
import assert from "node:assert/strict";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PostgresStore } from "../../src/adapters/store/postgres-store.js";
import { SqliteStore } from "../../src/adapters/store/sqlite-store.js";
import type { Store } from "../../src/ports/store.js";
import { makeTempDir, removeTempDir } from "../../tools/process-harness.js";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { natsServerAvailable, startNatsServer, type NatsServer } from "../helpers/nats.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const PERIOD_MS = 3000;
const MEMBERS = 40;
const PUBLISHERS = 4;
const ROOM = "drain";

interface Setup {
  /** The node that is drained. */
  readonly victim: ServerProcess;
  /** Another node of the cluster, publishing into the room throughout. */
  readonly peer?: ServerProcess;
  /** Where clients resume afterwards: another node, or the victim's successor. */
  other(): Promise<ServerProcess>;
  /** A store client on the same data, to read history back. */
  store(): Store;
  close(): Promise<void>;
}

const baseEnv = {
  DRAIN_PERIOD: `${PERIOD_MS}ms`,
  // Acks reach the store only when the drain saves them (not by the timer).
  ACK_FLUSH_INTERVAL: "1m",
  SESSION_REPLAY_LIMIT: "100000",
  HISTORY_SIZE: "100000",
};

const variants = [
  {
    name: "sqlite",
    skip: false,
    async setup(): Promise<Setup> {
      const dir = await makeTempDir("roomcast-drain");
      const path = join(dir, "drain.db");
      const env = { ...baseEnv, STORE: "sqlite", SQLITE_PATH: path };
      const victim = await startServer(env);
      let successor: ServerProcess | undefined;
      return {
        victim,
        async other() {
          successor ??= await startServer(env);
          return successor;
        },
        store: () => new SqliteStore({ path, dedupWindowMs: 60_000 }),
        async close() {
          await successor?.stop();
          await removeTempDir(dir);
        },
      };
    },
  },
  {
    name: "postgres + nats, two nodes",
    skip: !natsServerAvailable() || !postgresAvailable(),
    async setup(): Promise<Setup> {
      const nats: NatsServer = await startNatsServer();
      const pg: PostgresServer = await startPostgres();
      const url = await pg.createDatabase("drain");
      const env = {
        ...baseEnv,
        STORE: "postgres",
        POSTGRES_URL: url,
        POSTGRES_POOL_SIZE: "4",
        BROKER: "nats",
        NATS_URL: nats.url,
        GAP_WAIT: "30ms",
      };
      const victim = await startServer(env);
      const second = await startServer(env);
      return {
        victim,
        peer: second,
        other: () => Promise.resolve(second),
        store: () => new PostgresStore({ url, poolSize: 2, dedupWindowMs: 60_000 }),
        async close() {
          await second.stop();
          await nats.close();
          await pg.close();
        },
      };
    },
  },
];

interface Member {
  readonly client: TestClient;
  readonly token: string;
  readonly memberId: string;
  /** The highest offset this member acked before the drain began. */
  ackedBeforeDrain: bigint;
  closedAt?: number;
  closeCode?: number;
}

/** A raw upgrade request: the refusal's status and Retry-After. */
function tryUpgrade(server: ServerProcess): Promise<{ status: number; retryAfter: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.httpUrl}/ws`, {
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Protocol": "roomcast.v1.json",
      },
    });
    req.on("response", (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: String(res.headers["retry-after"]) });
    });
    req.on("upgrade", (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, retryAfter: "" });
    });
    req.on("error", reject);
    req.end();
  });
}

/** Publishes with explicit ids, one in flight at a time, until the socket closes. */
async function publishUntilClosed(c: TestClient, prefix: string, acked: Map<string, string>) {
  for (let i = 0; ; i++) {
    const id = `${prefix}-${i}`;
    try {
      c.send({ message: { target: ROOM, content: id, message_id: id } });
      const ack = await c.next("ack", 10_000, (a) => a["message_id"] === id);
      acked.set(id, String(ack["offset"]));
    } catch {
      return; // closed (1012): what was in flight is unacknowledged
    }
  }
}

for (const variant of variants) {
  describe(`drain - ${variant.name}`, { skip: variant.skip }, () => {
    let setup: Setup;
    const members: Member[] = [];
    const acked = new Map<string, string>();
    let signalledAt = 0;
    let ackedAtSignal = 0;
    let exitCode: number | null = null;
    let exitedAt = 0;
    let readyzAfterSignal = 0;
    let healthzAfterSignal = 0;
    let upgradeAfterSignal = { status: 0, retryAfter: "" };

    before(async () => {
      setup = await variant.setup();
      const { victim } = setup;
      for (let i = 0; i < MEMBERS; i++) {
        const [client, session] = await TestClient.open(victim.wsUrl);
        client.send({ join_room: { room_id: ROOM } });
        await client.next("room_joined");
        members.push({
          client,
          token: String(session["token"]),
          memberId: String(session["member_id"]),
          ackedBeforeDrain: 0n,
        });
      }
      let peerPublisher: TestClient | undefined;
      let peerPublishing: Promise<void> | undefined;
      if (setup.peer !== undefined) {
        [peerPublisher] = await TestClient.open(setup.peer.wsUrl);
        peerPublisher.send({ join_room: { room_id: ROOM } });
        await peerPublisher.next("room_joined");
        peerPublishing = publishUntilClosed(peerPublisher, "peer", acked);
      }
      // The last to connect are closed last (the drain goes in connection
      // order), so publishing goes on through the whole period.
      const publishing = members
        .slice(-PUBLISHERS)
        .map((m, i) => publishUntilClosed(m.client, `p${i}`, acked));
      // Steady traffic for a while; every member acks what it has received.
      await eventually(() => acked.size >= 200, { timeoutMs: 20_000 });
      for (const m of members) {
        const last = m.client.all("message").at(-1);
        if (last === undefined) continue;
        m.ackedBeforeDrain = BigInt(String(last["offset"]));
        m.client.send({ ack: { room_id: ROOM, offset: String(last["offset"]) } });
      }
      // A hundred acked publishes later, the members' acks have been read.
      await eventually(() => acked.size >= 300, { timeoutMs: 20_000 });
      for (const m of members) {
        void m.client.closed.then(({ code }) => {
          m.closedAt = Date.now();
          m.closeCode = code;
        });
      }

      ackedAtSignal = acked.size;
      signalledAt = Date.now();
      const exit = victim.stop();
      void exit.then((code) => {
        exitCode = code;
        exitedAt = Date.now();
      });
      readyzAfterSignal = await eventually(
        async () => {
          const status = (await fetch(`${victim.httpUrl}/readyz`)).status;
          return status === 503 && status;
        },
        { timeoutMs: 1000 },
      );
      healthzAfterSignal = (await fetch(`${victim.httpUrl}/healthz`)).status;
      upgradeAfterSignal = await tryUpgrade(victim);
      await exit;
      await Promise.all(publishing);
      peerPublisher?.ws.close();
      await peerPublishing;
      await Promise.all(members.map((m) => m.client.closed));
    });

    after(async () => {
      for (const m of members) m.client.ws.terminate();
      await setup.close();
    });

    test("readiness and new upgrades answer 503 at once; liveness stays 200", () => {
      assert.equal(readyzAfterSignal, 503);
      assert.equal(healthzAfterSignal, 200);
      assert.deepEqual(upgradeAfterSignal, { status: 503, retryAfter: "1" });
    });

    test("every client is closed with 1012", () => {
      assert.deepEqual(
        members.map((m) => m.closeCode),
        members.map(() => 1012),
      );
    });

    test("the closes are spread over DRAIN_PERIOD, the last by its end", (t) => {
      const at = members.map((m) => m.closedAt! - signalledAt).sort((a, b) => a - b);
      assert.ok(at.at(-1)! <= PERIOD_MS + 500, `last close at ${at.at(-1)} ms`);
      assert.ok(at.at(-1)! - at[0]! >= PERIOD_MS * 0.7, `closes only span ${at[0]}..${at.at(-1)}`);
      // Uniform: each third of the period holds roughly a third of the closes.
      const thirds = [0, 0, 0];
      for (const t of at) thirds[Math.min(2, Math.floor((t / PERIOD_MS) * 3))]!++;
      t.diagnostic(`closes at ${at[0]}..${at.at(-1)} ms, per third ${JSON.stringify(thirds)}`);
      for (const n of thirds) assert.ok(n >= MEMBERS / 6, `thirds ${JSON.stringify(thirds)}`);
      // Never all at once: no 100 ms holds more than a few closes.
      for (const t of at) {
        const burst = at.filter((u) => u >= t && u < t + 100).length;
        assert.ok(burst <= MEMBERS / 5, `${burst} closes within 100 ms of ${t} ms`);
      }
    });

    test("the process exits 0 within DRAIN_PERIOD plus a few seconds", (t) => {
      assert.equal(exitCode, 0);
      const took = exitedAt - signalledAt;
      t.diagnostic(
        `exit ${exitCode} after ${took} ms; ${acked.size} publishes acknowledged, ${acked.size - ackedAtSignal} during the drain`,
      );
      assert.ok(took >= PERIOD_MS * 0.7 && took <= PERIOD_MS + 3000, `exited after ${took} ms`);
    });

    test("nothing acknowledged is lost: every acked publish is in the room's history", async () => {
      const store = setup.store();
      await store.open();
      try {
        const page = await store.read(ROOM, 0n, 1_000_000);
        const stored = new Map(page.messages.map((m) => [m.messageId, String(m.offset)]));
        assert.ok(acked.size - ackedAtSignal >= 100, "publishing went on during the drain");
        for (const [id, offset] of acked) assert.equal(stored.get(id), offset, `${id} lost`);
      } finally {
        await store.close();
      }
    });

    test("sessions were saved: each member resumes elsewhere after its last ack", async () => {
      const other = await setup.other();
      for (const m of members.slice(0, 10)) {
        const [c, s] = await TestClient.open(other.wsUrl, { session: m.token });
        try {
          assert.deepEqual([s["resumed"], s["member_id"]], [true, m.memberId]);
          const joined = await c.next("room_joined");
          assert.equal(joined["recovered"], true);
          const head = BigInt(String(joined["offset"]));
          if (head > m.ackedBeforeDrain) {
            const first = BigInt(String((await c.next("message", 10_000))["offset"]));
            assert.ok(
              first > m.ackedBeforeDrain,
              `replay from ${first}, acked ${m.ackedBeforeDrain}`,
            );
          }
        } finally {
          c.ws.terminate();
        }
      }
    });
  });
}

describe("drain - a second signal", () => {
  test("exits at once, without waiting for the period", async () => {
    const server = await startServer({ DRAIN_PERIOD: "30s" });
    const clients = [];
    for (let i = 0; i < 5; i++) clients.push(await TestClient.connect(server.wsUrl));
    const exit = server.stop();
    await eventually(async () => (await fetch(`${server.httpUrl}/readyz`)).status === 503, {
      timeoutMs: 1000,
    });
    const second = Date.now();
    server.child.kill("SIGINT");
    assert.equal(await exit, 130);
    assert.ok(
      Date.now() - second < 1000,
      `exited ${Date.now() - second} ms after the second signal`,
    );
    for (const c of clients) c.ws.terminate();
  });
});
