// A reconnect storm against one real node: a node died and its 2,000 clients
// all reconnect here at once (loopback, each with a real JWT to verify).
// The node sheds what it cannot take (HTTP 503 with Retry-After, before the
// upgrade), stays up, keeps serving the members it already has, and every
// client that waits as told gets in. Raw `ws` clients honour Retry-After;
// a few SDK clients (client/) come back with their own backoff.
import assert from "node:assert/strict";
import type { ClientRequest, IncomingMessage } from "node:http";
import { after, test } from "node:test";
import WebSocket from "ws";
import { Roomcast } from "../../client/src/index.js";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { tokenFor, JWT_SECRET } from "../helpers/rate-flood.js";
import { Scrape } from "../helpers/metrics.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const STORM = 2000;
const SDK_CLIENTS = 50;
const RETRY_AFTER_MAX_S = 3;
const ROOM = "live";

const sockets: WebSocket[] = [];
const sdk: Roomcast[] = [];
let server: ServerProcess | undefined;
after(async () => {
  for (const c of sdk) c.close();
  for (const ws of sockets) ws.terminate();
  await server?.stop();
});

interface StormStats {
  shed: number;
  retryAfters: Set<string>;
  otherStatuses: number[];
  networkErrors: number;
}

type Attempt =
  | { readonly ws: WebSocket }
  | { readonly status: number; readonly retryAfter: string | undefined }
  | { readonly error: Error };

/** One upgrade attempt; resolves once the session frame arrived or the attempt failed. */
function attempt(url: string, token: string): Promise<Attempt> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    let settled = false;
    const settle = (a: Attempt) => {
      if (settled) return;
      settled = true;
      resolve(a);
    };
    ws.once("unexpected-response", (req: ClientRequest, res: IncomingMessage) => {
      const header: string | undefined = res.headers["retry-after"];
      settle({ status: res.statusCode ?? 0, retryAfter: header });
      res.resume();
      req.destroy();
    });
    ws.once("message", () => settle({ ws }));
    ws.on("error", (error) => settle({ error }));
    ws.once("close", () => settle({ error: new Error("closed before the session") }));
  });
}

/** A client that keeps trying, waiting as long as each refusal says; resolves connected. */
async function stormClient(url: string, token: string, stats: StormStats): Promise<WebSocket> {
  for (;;) {
    const a = await attempt(url, token);
    if ("ws" in a) {
      sockets.push(a.ws);
      return a.ws;
    }
    let waitMs: number;
    if ("status" in a) {
      if (a.status !== 503) stats.otherStatuses.push(a.status);
      else stats.shed++;
      stats.retryAfters.add(String(a.retryAfter));
      waitMs = Number(a.retryAfter ?? "1") * 1000;
    } else {
      // The listen queue overflowed or a reset: retry soon, spread out.
      stats.networkErrors++;
      waitMs = 200 + Math.random() * 800;
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

test("reconnect storm - 2,000 clients at once: the node sheds with 503 + Retry-After, stays up, keeps serving its members, and everyone gets in", async () => {
  server = await startServer({
    AUTH_JWT_SECRET: JWT_SECRET,
    // Every client comes from 127.0.0.1; the per-address limit is not under test.
    RATE_LIMIT_HANDSHAKES: "off",
    HANDSHAKE_MAX_PENDING: "32",
    HANDSHAKE_RETRY_AFTER: `${RETRY_AFTER_MAX_S}s`,
  });
  const s = server;
  const token = await tokenFor("storm-user");
  const headers = { Authorization: `Bearer ${token}` };

  // The members already here, and a publisher that keeps the room busy throughout.
  const members: TestClient[] = [];
  for (let i = 0; i < 5; i++) {
    const [c] = await TestClient.open(s.wsUrl, { headers });
    c.send({ join_room: { room_id: ROOM } });
    await c.next("room_joined");
    members.push(c);
  }
  const publisher = members[0]!;
  let published = 0;
  const arrivals: number[] = [];
  members[1]!.ws.on("message", () => arrivals.push(Date.now()));
  const ticker = setInterval(() => {
    publisher.send({ message: { target: ROOM, content: `tick-${++published}` } });
  }, 50);

  // Liveness is polled throughout.
  let healthFailures = 0;
  let healthWorstMs = 0;
  let storming = true;
  const health = (async () => {
    while (storming) {
      const started = Date.now();
      try {
        const res = await fetch(`${s.httpUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
        if (res.status !== 200) healthFailures++;
      } catch {
        healthFailures++;
      }
      healthWorstMs = Math.max(healthWorstMs, Date.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();

  const stats: StormStats = {
    shed: 0,
    retryAfters: new Set(),
    otherStatuses: [],
    networkErrors: 0,
  };
  const started = Date.now();
  const raw = Array.from({ length: STORM - SDK_CLIENTS }, () => stormClient(s.wsUrl, token, stats));
  let sdkSessions = 0;
  for (let i = 0; i < SDK_CLIENTS; i++) {
    const c = new Roomcast(s.wsUrl, {
      WebSocket,
      getToken: () => Promise.resolve(token),
      reconnect: { initialDelayMs: 1000, maxDelayMs: 8000 },
    });
    c.on("session", () => sdkSessions++);
    sdk.push(c);
  }
  await Promise.all(raw);
  await eventually(() => sdkSessions >= SDK_CLIENTS, { timeoutMs: 90_000 });
  const tookMs = Date.now() - started;
  storming = false;
  await health;
  clearInterval(ticker);

  // Everyone is in, and the node is still up.
  assert.equal(sockets.length, STORM - SDK_CLIENTS);
  assert.equal(s.child.exitCode, null);
  assert.equal(healthFailures, 0);
  assert.equal((await fetch(`${s.httpUrl}/healthz`)).status, 200);

  // The storm was shed, each refusal a 503 with a Retry-After hint in range.
  assert.ok(stats.shed > 0, "some handshakes were shed");
  assert.deepEqual(stats.otherStatuses, []);
  for (const hint of stats.retryAfters) {
    const n = Number(hint);
    assert.ok(Number.isInteger(n) && n >= 1 && n <= RETRY_AFTER_MAX_S, `Retry-After ${hint}`);
  }

  // The members kept receiving: every tick, in order, none twice.
  const last = published;
  for (const m of members) {
    await m.next("message", 10_000, (v) => v["content"] === `tick-${last}`);
    const offsets = m.all("message").map((v) => Number(v["offset"]));
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => offsets[0]! + i),
      "contiguous offsets",
    );
    assert.equal(offsets.length, last);
  }
  let worstStallMs = 0;
  for (let i = 1; i < arrivals.length; i++) {
    worstStallMs = Math.max(worstStallMs, arrivals[i]! - arrivals[i - 1]!);
  }

  const scrape = await Scrape.from(`${s.httpUrl}/metrics`);
  const shedByNode =
    scrape.value("roomcast_handshakes_shed_total", { reason: "handshakes" }) +
    scrape.value("roomcast_handshakes_shed_total", { reason: "event_loop_lag" });
  assert.ok(shedByNode >= stats.shed, "every 503 the raw clients saw was counted");
  assert.equal(scrape.value("roomcast_connections"), STORM + members.length);

  console.log(
    JSON.stringify({
      storm: STORM,
      tookMs,
      shedSeenByRawClients: stats.shed,
      shedByNode,
      shedByReason: {
        handshakes: scrape.value("roomcast_handshakes_shed_total", { reason: "handshakes" }),
        event_loop_lag: scrape.value("roomcast_handshakes_shed_total", {
          reason: "event_loop_lag",
        }),
      },
      networkErrors: stats.networkErrors,
      memberWorstStallMs: worstStallMs,
      healthWorstMs,
      ticks: last,
    }),
  );
});
