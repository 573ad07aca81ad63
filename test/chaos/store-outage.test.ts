// The store fails mid-stream and comes back, for every shared durable store,
// one table of stores and one set of cases:
//   outage — the store goes away: PostgreSQL crashes (immediate stop), Redis
//            stops (SIGTERM, AOF written), and the Spanner emulator, which
//            keeps data only in memory and cannot restart, is cut off by the
//            TCP proxy in front of it (new connections reset, open ones
//            dropped). Publishes get `unavailable` and are never acknowledged,
//            sockets stay open, nothing crashes, service recovers by itself.
//   hang   — the store stops answering (the proxy holds every byte, as for a
//            SIGSTOPped server): publishes get `unavailable` within
//            STORE_TIMEOUT, the event loop stays responsive, presence (the
//            live path that needs no store) keeps working, and service
//            recovers when the store answers again.
// Every node reaches its store through the proxy (test/helpers/tcp-proxy.ts).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { Scrape } from "../helpers/metrics.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import {
  REDIS_AOF_EVERYSEC,
  redisServerAvailable,
  startRedisServer,
  type RedisServer,
} from "../helpers/redis.js";
import { startServer, type ServerProcess } from "../helpers/server.js";
import {
  spannerEmulatorAvailable,
  startSpannerEmulator,
  type SpannerEmulator,
} from "../helpers/spanner.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

interface StoreUnderTest {
  readonly name: string;
  readonly skip: boolean;
  /** The node's STORE_TIMEOUT in ms. */
  readonly timeoutMs: number;
  /** Starts the store's server and a proxy in front of it; returns the node settings (through the proxy). */
  start(): Promise<Record<string, string>>;
  /** The proxy between the node and the store. */
  proxy(): TcpProxy;
  /** The store goes away. */
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** `url` with its host and port replaced by the proxy's. */
function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = proxy.host;
  u.port = String(proxy.port);
  return u.toString();
}

function postgresStore(): StoreUnderTest {
  let pg: PostgresServer | undefined;
  let proxy: TcpProxy | undefined;
  return {
    name: "postgres",
    skip: !postgresAvailable() || Boolean(process.env["ROOMCAST_TEST_POSTGRES_URL"]),
    timeoutMs: 500,
    async start() {
      pg = await startPostgres();
      const url = await pg.createDatabase("outage");
      proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(url).port) });
      return { STORE: "postgres", POSTGRES_URL: viaProxy(url, proxy) };
    },
    proxy: () => proxy!,
    down: () => pg!.stop("immediate"),
    up: () => pg!.start(),
    async close() {
      await proxy?.close();
      await pg?.close();
    },
  };
}

function redisStore(): StoreUnderTest {
  let redis: RedisServer | undefined;
  let proxy: TcpProxy | undefined;
  return {
    name: "redis",
    skip: !redisServerAvailable(),
    timeoutMs: 500,
    async start() {
      redis = await startRedisServer({
        args: REDIS_AOF_EVERYSEC,
      });
      proxy = await startTcpProxy({ host: "127.0.0.1", port: redis.port });
      return { STORE: "redis", STORE_REDIS_URL: viaProxy(redis.url, proxy) };
    },
    proxy: () => proxy!,
    // SIGTERM: Redis writes its AOF out before it exits. (SIGKILL may lose
    // the last second of acknowledged appends: docs/operations.md.)
    down: () => redis!.stop(),
    up: () => redis!.start(),
    async close() {
      await proxy?.close();
      await redis?.close();
    },
  };
}

function spannerStore(): StoreUnderTest {
  let emulator: SpannerEmulator | undefined;
  let proxy: TcpProxy | undefined;
  return {
    name: "spanner",
    skip: !spannerEmulatorAvailable(),
    // One node serializes its own read-write transactions on the emulator;
    // a little more room than the others for a loaded test machine.
    timeoutMs: 1000,
    async start() {
      emulator = await startSpannerEmulator();
      const [host, port] = emulator.host.split(":");
      proxy = await startTcpProxy({ host: host!, port: Number(port) });
      return {
        ...emulator.env(emulator.databaseId("outage")),
        SPANNER_EMULATOR_HOST: `${proxy.host}:${proxy.port}`,
      };
    },
    proxy: () => proxy!,
    // The emulator cannot restart (its data lives in memory): the proxy cuts
    // it off instead, as a stopped server would be: open connections dropped,
    // new ones reset.
    down() {
      proxy!.setMode("down");
      proxy!.resetAll();
      return Promise.resolve();
    },
    up() {
      proxy!.setMode("up");
      return Promise.resolve();
    },
    async close() {
      await proxy?.close();
      await emulator?.close();
    },
  };
}

type Client = TestClient;

async function joined(server: ServerProcess, room: string, presence = false) {
  const [client, session] = await TestClient.open(server.wsUrl);
  client.send({ join_room: { room_id: room, ...(presence && { presence: true }) } });
  await client.next("room_joined");
  return { client, memberId: String(session["member_id"]) };
}

const publish = (c: Client, room: string, id: string) =>
  c.send({ message: { target: room, content: id, message_id: id } });

/** Resends `id` as a client would, until it is acknowledged (possibly as a duplicate). */
async function retryUntilAcked(c: Client, room: string, id: string): Promise<void> {
  await eventually(
    async () => {
      publish(c, room, id);
      const reply = await Promise.race([
        c.next("ack", 2000, (x) => x["message_id"] === id).then(() => "ack"),
        c.next("error", 2000, (x) => x["ref"] === id).then(() => "error"),
      ]);
      return reply === "ack";
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
}

/**
 * What was stored, from the acknowledgements: every message id acked at one
 * offset only (a retry of a publish that landed is acked as a duplicate at the
 * same offset), the ids in `ids` at offsets 1..n, and `reader` got exactly
 * those messages in offset order. `inOrder`: at offsets 1..n in the order of
 * `ids` (publishes refused before reaching the store were retried in order;
 * publishes that timed out may land in another order, as unacknowledged).
 */
async function assertStoredOnce(
  a: Client,
  reader: Client,
  ids: readonly string[],
  inOrder: boolean,
): Promise<void> {
  const offsets = new Map<string, string>();
  for (const ack of a.all("ack")) {
    const id = String(ack["message_id"]);
    const seen = offsets.get(id);
    assert.ok(seen === undefined || seen === ack["offset"], `${id} acked at two offsets`);
    offsets.set(id, String(ack["offset"]));
  }
  const expected = ids.map((_, i) => String(i + 1));
  const acked = ids.map((id) => offsets.get(id) ?? "none");
  assert.deepEqual(inOrder ? acked : [...acked].sort((x, y) => Number(x) - Number(y)), expected);
  const got = [];
  for (let i = 0; i < ids.length; i++) got.push(await reader.next("message", 10_000));
  assert.deepEqual(
    got.map((m) => m["offset"]),
    expected,
    "the reader got every offset once, in order",
  );
  assert.deepEqual(
    got.map((m) => offsets.get(String(m["message_id"]))),
    expected,
    "each message at the offset its publisher was acked with",
  );
}

for (const store of [postgresStore(), redisStore(), spannerStore()]) {
  describe(`store outage - ${store.name}`, { skip: store.skip }, () => {
    let server: ServerProcess;
    before(async () => {
      const env = await store.start();
      server = await startServer({ ...env, STORE_TIMEOUT: `${store.timeoutMs}ms` });
    });
    after(async () => {
      await server?.stop();
      await store.close();
    });

    const readyz = async () => (await fetch(`${server.httpUrl}/readyz`)).status;
    const alive = () => assert.equal(server.child.exitCode, null, "the node is still running");

    test(`store outage - ${store.name} - unavailable, never acked, sockets open, recovery`, async () => {
      const { client: a } = await joined(server, "o");
      const { client: b } = await joined(server, "o");
      for (let i = 0; i < 5; i++) publish(a, "o", `up${i}`);
      for (let i = 0; i < 5; i++) await a.next("ack");

      await store.down();
      for (let i = 0; i < 3; i++) {
        publish(a, "o", `down${i}`);
        const e = await a.next("error", 10_000);
        assert.equal(e["code"], "unavailable");
        assert.equal(e["ref"], `down${i}`);
        assert.ok(Number(e["retry_after_ms"]) > 0);
      }
      assert.equal(await readyz(), 503);
      await assert.rejects(TestClient.connect(server.wsUrl), /HTTP 503/);
      assert.equal(
        (await fetch(`${server.httpUrl}/healthz`)).status,
        200,
        "liveness never depends on the store",
      );
      assert.equal(a.all("ack").length, 5, "nothing acknowledged while the store is down");
      assert.equal(a.ws.readyState, WebSocket.OPEN);
      assert.equal(b.ws.readyState, WebSocket.OPEN);
      alive();

      await store.up();
      for (let i = 0; i < 3; i++) await retryUntilAcked(a, "o", `down${i}`);
      await eventually(async () => (await readyz()) === 200, { timeoutMs: 20_000 });
      await assertStoredOnce(
        a,
        b,
        ["up0", "up1", "up2", "up3", "up4", "down0", "down1", "down2"],
        true,
      );
      alive();
      a.close();
      b.close();
    });

    test(`store hang - ${store.name} - unavailable within STORE_TIMEOUT, event loop responsive, presence live, recovery`, async (t) => {
      const proxy = store.proxy();
      const { client: a } = await joined(server, "h");
      const { client: b } = await joined(server, "h");
      const { client: watcher } = await joined(server, "h", true);
      const { client: leaver, memberId: leaverId } = await joined(server, "h");
      const { client: closer, memberId: closerId } = await joined(server, "h");
      await watcher.next("presence_state");
      publish(a, "h", "before");
      await a.next("ack");
      const metricsUrl = `${server.httpUrl}/metrics`;
      await Scrape.from(metricsUrl); // resets the event-loop delay histogram

      // /healthz, asked every 50 ms during the hang: the slowest answer.
      let slowestHealthz = 0;
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const t0 = performance.now();
          const res = await fetch(`${server.httpUrl}/healthz`);
          await res.arrayBuffer();
          assert.equal(res.status, 200);
          slowestHealthz = Math.max(slowestHealthz, performance.now() - t0);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();

      proxy.setMode("hang");
      try {
        const ids = ["hang0", "hang1", "hang2", "hang3"];
        for (const id of ids) {
          const t0 = performance.now();
          publish(a, "h", id);
          const e = await a.next("error", store.timeoutMs + 5_000, (x) => x["ref"] === id);
          const took = performance.now() - t0;
          assert.equal(e["code"], "unavailable");
          assert.ok(
            took < store.timeoutMs + 500,
            `${id}: unavailable after ${Math.round(took)} ms (STORE_TIMEOUT ${store.timeoutMs} ms)`,
          );
        }
        assert.equal(await readyz(), 503);

        // Presence needs no store: a leave and a disconnect reach the watcher live.
        leaver.send({ leave_room: { room_id: "h" } });
        await leaver.next("room_left");
        closer.close();
        const left = new Set<string>();
        await eventually(async () => {
          const diff = await watcher.next("presence_diff", 2_000);
          for (const m of (diff["left"] ?? []) as Record<string, unknown>[]) {
            left.add(String(m["member_id"]));
          }
          return left.has(leaverId) && left.has(closerId);
        });

        probing = false;
        await probe;
        const lag = (await Scrape.from(metricsUrl)).value("nodejs_eventloop_lag_max_seconds");
        // A loop blocked by the hung store would show STORE_TIMEOUT here; a
        // busy test machine shows a few tens of ms.
        t.diagnostic(
          `during the hang: event-loop lag max ${Math.round(lag * 1000)} ms, slowest /healthz ${Math.round(slowestHealthz)} ms`,
        );
        assert.ok(lag < 0.25, `event-loop lag up to ${Math.round(lag * 1000)} ms during the hang`);
        assert.ok(slowestHealthz < 250, `/healthz took up to ${Math.round(slowestHealthz)} ms`);
        assert.equal(a.all("ack").length, 1, "nothing acknowledged while the store hangs");
        for (const c of [a, b, watcher, leaver]) assert.equal(c.ws.readyState, WebSocket.OPEN);
        alive();
      } finally {
        probing = false;
        await probe.catch(() => undefined);
        proxy.setMode("up");
      }

      // Held calls complete now; a publish that timed out may have been
      // stored after all: its retry is acknowledged as a duplicate.
      for (const id of ["hang0", "hang1", "hang2", "hang3"]) await retryUntilAcked(a, "h", id);
      const landed = a.all("ack").filter((x) => x["duplicate"] === true);
      t.diagnostic(
        `answered unavailable, yet stored by one of those attempts: ${landed.length} of 4`,
      );
      await eventually(async () => (await readyz()) === 200, { timeoutMs: 20_000 });
      publish(a, "h", "after");
      await a.next("ack", 5_000, (x) => x["message_id"] === "after");
      await assertStoredOnce(a, b, ["before", "hang0", "hang1", "hang2", "hang3", "after"], false);
      alive();
      for (const c of [a, b, watcher, leaver]) c.close();
    });
  });
}

describe("store latency - postgres", { skip: postgresStore().skip }, () => {
  let pg: PostgresServer;
  let proxy: TcpProxy;
  let server: ServerProcess;
  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase("latency");
    proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(url).port) });
    // STORE_TIMEOUT at its default (2 s): an append is one round trip.
    server = await startServer({ STORE: "postgres", POSTGRES_URL: viaProxy(url, proxy) });
  });
  after(async () => {
    await server?.stop();
    await proxy?.close();
    await pg?.close();
  });

  test("store latency - postgres - 200 ms each way: publishes succeed, in order", async (t) => {
    proxy.setLatency(200, 100);
    const { client: a } = await joined(server, "l");
    const { client: b } = await joined(server, "l");
    const { client: reader } = await joined(server, "l");
    const lone = performance.now();
    publish(a, "l", "lone");
    await a.next("ack", 20_000);
    t.diagnostic(`one publish acked after ${Math.round(performance.now() - lone)} ms`);
    // Two publishers, each pipelining: one connection's publishes get
    // increasing offsets in its sending order, whatever the pool's
    // connections (each with its own jitter) do.
    const t0 = performance.now();
    for (let i = 1; i <= 15; i++) {
      publish(a, "l", `a${i}`);
      publish(b, "l", `b${i}`);
    }
    const acks = async (c: Client, prefix: string) => {
      const offsets = [];
      for (let i = 1; i <= 15; i++) {
        const ack = await c.next("ack", 20_000, (x) => x["message_id"] === `${prefix}${i}`);
        offsets.push(Number(ack["offset"]));
      }
      return offsets;
    };
    const [aOffsets, bOffsets] = [await acks(a, "a"), await acks(b, "b")];
    const took = performance.now() - t0;
    t.diagnostic(
      `30 publishes through 200±100 ms each way, all acked after ${Math.round(took)} ms`,
    );
    assert.ok(took >= 400, `acked after ${Math.round(took)} ms: the latency was not applied`);
    for (const offsets of [aOffsets, bOffsets]) {
      assert.deepEqual(
        offsets,
        [...offsets].sort((x, y) => x - y),
        "one publisher's order kept",
      );
    }
    assert.deepEqual(
      [...aOffsets, ...bOffsets].sort((x, y) => x - y),
      Array.from({ length: 30 }, (_, i) => i + 2),
    );
    const got = [];
    for (let i = 0; i < 31; i++) got.push(await reader.next("message", 20_000));
    assert.deepEqual(
      got.map((m) => Number(m["offset"])),
      Array.from({ length: 31 }, (_, i) => i + 1),
      "the reader sees offset order with no gap",
    );
    assert.equal(a.all("error").length + b.all("error").length, 0);
    proxy.setLatency(0);
    for (const c of [a, b, reader]) c.close();
  });
});
