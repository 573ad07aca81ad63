// RATE_LIMIT_DISTRIBUTED on three real nodes sharing a broker (NATS, then
// Redis) and a PostgreSQL store: one user flooding through all three nodes
// gets at most what one limit allows cluster-wide, while another user is
// unaffected. With NATS the limits live in PostgreSQL, with Redis in Redis
// (RATE_LIMIT_BACKEND=auto). Then the limiter's own backend is killed
// mid-test: nodes fall back to local limits and publishing continues.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { natsServerAvailable, startNatsServer } from "../helpers/nats.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { JWT_SECRET, flood, tokenFor } from "../helpers/rate-flood.js";
import { redisServerAvailable, startRedisServer } from "../helpers/redis.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

interface BrokerServer {
  readonly url: string;
  stop(signal?: NodeJS.Signals): Promise<void>;
  close(): Promise<void>;
}

const brokers = [
  {
    name: "nats",
    limiter: "postgres",
    available: natsServerAvailable,
    start: startNatsServer,
    env: (url: string) => ({ BROKER: "nats", NATS_URL: url }),
  },
  {
    name: "redis",
    limiter: "redis",
    available: redisServerAvailable,
    start: startRedisServer,
    env: (url: string) => ({ BROKER: "redis", REDIS_URL: url }),
  },
] as const;

const pgAvailable = postgresAvailable();
// 30 per minute, all at once from rest: one every 2 s afterwards.
const LIMIT = 30;
const limitEnv = {
  AUTH_JWT_SECRET: JWT_SECRET,
  RATE_LIMIT_MESSAGES: `${LIMIT}/1m`,
  RATE_LIMIT_ROOM_MESSAGES: "off",
  RATE_LIMIT_CLOSE_AFTER: "0",
  RATE_LIMIT_DISTRIBUTED: "true",
};

async function member(
  node: ServerProcess,
  room: string,
  user: string,
  clients: TestClient[],
): Promise<TestClient> {
  const [c] = await TestClient.open(node.wsUrl, {
    headers: { Authorization: `Bearer ${await tokenFor(user)}` },
  });
  clients.push(c);
  c.send({ join_room: { room_id: room } });
  await c.next("room_joined");
  return c;
}

/** At most the burst plus one per elapsed interval (2 s), plus one for rounding. */
function withinOneLimit(accepted: number, elapsedMs: number): boolean {
  return accepted >= LIMIT && accepted <= LIMIT + Math.ceil(elapsedMs / 2000) + 1;
}

for (const kind of brokers) {
  const skip = !kind.available() || !pgAvailable;
  describe(`rate limits - cluster - ${kind.name}`, { skip }, () => {
    let broker: BrokerServer;
    let pg: PostgresServer;
    const nodes: ServerProcess[] = [];
    const clients: TestClient[] = [];

    before(async () => {
      broker = await kind.start();
      pg = await startPostgres();
      const env = {
        ...kind.env(broker.url),
        ...limitEnv,
        STORE: "postgres",
        POSTGRES_URL: await pg.createDatabase(`rl_${kind.name}`),
        POSTGRES_POOL_SIZE: "4",
      };
      for (let i = 0; i < 3; i++) nodes.push(await startServer(env));
    });

    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const n of nodes) await n.stop();
      await broker.close();
      await pg.close();
    });

    test(`one user flooding through three nodes gets one limit cluster-wide (limits in ${kind.limiter}); another user is unaffected`, async () => {
      const room = "cluster-flood";
      const flooders = await Promise.all(nodes.map((n) => member(n, room, "flooder", clients)));
      const calm = await member(nodes[1]!, room, "calm", clients);
      const started = Date.now();
      const [results, calmResult] = await Promise.all([
        Promise.all(flooders.map((c, i) => flood(c, room, 40, `n${i}`))),
        flood(calm, room, 20, "calm"),
      ]);
      const elapsed = Date.now() - started;
      const accepted = results.reduce((n, r) => n + r.acked.length, 0);
      assert.ok(withinOneLimit(accepted, elapsed), `accepted ${accepted} in ${elapsed} ms`);
      for (const r of results) for (const e of r.refused) assert.equal(e.code, "rate_limited");
      assert.equal(calmResult.acked.length, 20, "another user is unaffected");
    });
  });
}

describe(
  "rate limits - cluster - limiter backend killed",
  {
    skip: !natsServerAvailable() || !redisServerAvailable() || !pgAvailable,
  },
  () => {
    let nats: BrokerServer;
    let redis: BrokerServer;
    let pg: PostgresServer;
    const nodes: ServerProcess[] = [];
    const clients: TestClient[] = [];

    before(async () => {
      nats = await startNatsServer();
      redis = await startRedisServer();
      pg = await startPostgres();
      const env = {
        BROKER: "nats",
        NATS_URL: nats.url,
        STORE: "postgres",
        POSTGRES_URL: await pg.createDatabase("rl_kill"),
        POSTGRES_POOL_SIZE: "4",
        ...limitEnv,
        RATE_LIMIT_BACKEND: "redis",
        RATE_LIMIT_REDIS_URL: redis.url,
      };
      for (let i = 0; i < 2; i++) nodes.push(await startServer(env));
    });

    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const n of nodes) await n.stop();
      await nats.close();
      await redis.close();
      await pg.close();
    });

    test("publishes continue on local limits when the limiter's Redis dies", async () => {
      const room = "kill";
      const [a, b] = await Promise.all(nodes.map((n) => member(n, room, "user-a", clients)));
      // Shared: both nodes together accept one limit.
      let started = Date.now();
      const [ra, rb] = await Promise.all([flood(a!, room, 20, "s0"), flood(b!, room, 20, "s1")]);
      assert.ok(withinOneLimit(ra.acked.length + rb.acked.length, Date.now() - started));

      await redis.stop("SIGKILL");
      // Local fallback: a fresh user gets the same limit on each node.
      const [c, d] = await Promise.all(nodes.map((n) => member(n, room, "user-b", clients)));
      started = Date.now();
      const [rc, rd] = await Promise.all([flood(c!, room, 40, "k0"), flood(d!, room, 40, "k1")]);
      const elapsed = Date.now() - started;
      for (const r of [rc, rd]) {
        assert.ok(withinOneLimit(r.acked.length, elapsed), `node accepted ${r.acked.length}`);
        for (const e of r.refused) assert.equal(e.code, "rate_limited");
      }
      for (const node of nodes) {
        assert.ok(
          node.logs.some((l) => l["level"] === 40 && String(l["msg"]).includes("local fallback")),
          "the node logged the fallback",
        );
      }
    });
  },
);
