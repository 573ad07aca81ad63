// What the core reports through the Telemetry port, with in-memory adapters
// and a recording implementation: counts per publish and per delivered frame,
// errors, rooms, resumes and replays, and the publish path running inside
// the tracing hook with the trace fields it hands back.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { MemoryBroker } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { Router } from "../../src/core/router.js";
import { silentLogger } from "../../src/observability/logging.js";
import type {
  CoreMetrics,
  MessageTracing,
  ResumeResult,
  Telemetry,
  TraceFields,
} from "../../src/ports/telemetry.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { routerOptions } from "../helpers/core.js";

class RecordingMetrics {
  published = 0;
  delivered = 0;
  deliveredCalls = 0;
  rooms = 0;
  errors: string[] = [];
  resumes: ResumeResult[] = [];
  replays: number[] = [];
  timed = 0;

  readonly port: CoreMetrics = {
    published: () => void this.published++,
    delivered: (n) => {
      this.delivered += n;
      this.deliveredCalls++;
    },
    error: (code) => void this.errors.push(code),
    resume: (r) => void this.resumes.push(r),
    replayed: (n) => void this.replays.push(n),
    rooms: (d) => void (this.rooms += d),
    publishTimer: () => () => void this.timed++,
  };
}

const PUBLISH_SPAN = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";

class RecordingTracing implements MessageTracing {
  readonly published: TraceFields[] = [];
  readonly delivered: { remote: boolean; traceparent: string | undefined }[] = [];
  publish<T>(_room: string, msg: TraceFields, fn: (t: TraceFields) => Promise<T>): Promise<T> {
    this.published.push(msg);
    return fn({ traceparent: PUBLISH_SPAN, tracestate: msg.tracestate });
  }
  deliver(_room: string, msg: TraceFields, remote: boolean, fn: () => void): void {
    this.delivered.push({ remote, traceparent: msg.traceparent });
    fn();
  }
}

const routers: Router[] = [];
after(async () => {
  for (const r of routers) await r.close();
});

async function setup() {
  const metrics = new RecordingMetrics();
  const tracing = new RecordingTracing();
  const telemetry: Telemetry = { metrics: metrics.port, tracing };
  const broker = new MemoryBroker();
  await broker.open();
  const router = new Router(
    new MemoryStore({ dedupWindowMs: 60_000 }),
    broker,
    { ...routerOptions, telemetry },
    silentLogger(),
  );
  await router.start();
  routers.push(router);
  return { router, metrics, tracing };
}

async function member(router: Router, token?: string) {
  const grant = await router.openSession(token);
  const outlet = new RecordingOutlet();
  const m = router.attach(grant, outlet);
  const send = (frame: object) => m.receive(new TextEncoder().encode(JSON.stringify(frame)));
  return { member: m, outlet, token: grant.token, send };
}

test("core telemetry - 3 members, 10 publishes: 10 published, 30 delivered, one call per message", async () => {
  const { router, metrics } = await setup();
  const clients = [await member(router), await member(router), await member(router)];
  for (const c of clients) {
    c.send({ join_room: { room_id: "r" } });
    await eventually(() => c.outlet.kinds("roomJoined").length === 1);
  }
  assert.equal(metrics.rooms, 1);
  for (let i = 0; i < 10; i++) clients[0]!.send({ message: { target: "r", content: `m${i}` } });
  await eventually(() => clients.every((c) => c.outlet.kinds("message").length === 10));
  assert.equal(metrics.published, 10);
  assert.equal(metrics.delivered, 30);
  assert.equal(metrics.deliveredCalls, 10);
  await eventually(() => metrics.timed === 10);

  // A duplicate is not published again.
  clients[0]!.send({ message: { target: "r", content: "x", message_id: "dup" } });
  clients[0]!.send({ message: { target: "r", content: "x", message_id: "dup" } });
  await eventually(() => clients[0]!.outlet.kinds("ack").length === 12);
  assert.equal(metrics.published, 11);

  // Errors by code.
  clients[1]!.send({ message: { target: "elsewhere", content: "x" } });
  await eventually(() => metrics.errors.length === 1);
  assert.deepEqual(metrics.errors, ["not_joined"]);

  // The last member out closes the room.
  for (const c of clients) {
    c.send({ leave_room: { room_id: "r" } });
    await eventually(() => c.outlet.kinds("roomLeft").length === 1);
  }
  assert.equal(metrics.rooms, 0);
});

test("core telemetry - resumes and replay sizes", async () => {
  const { router, metrics } = await setup();
  const a = await member(router);
  const b = await member(router);
  for (const c of [a, b]) {
    c.send({ join_room: { room_id: "r" } });
    await eventually(() => c.outlet.kinds("roomJoined").length === 1);
  }
  router.detach(b.member);
  for (let i = 0; i < 3; i++) a.send({ message: { target: "r", content: `m${i}` } });
  await eventually(() => a.outlet.kinds("ack").length === 3);
  const before = metrics.delivered;
  const b2 = await member(router, b.token);
  await eventually(() => b2.outlet.kinds("message").length === 3);
  assert.deepEqual(metrics.resumes, ["resumed"]);
  assert.deepEqual(metrics.replays, [3]);
  assert.equal(metrics.delivered - before, 3);
  await member(router, "no-such-token");
  assert.deepEqual(metrics.resumes, ["resumed", "expired"]);
});

test("core telemetry - the publish runs in the tracing hook and stores what it hands back", async () => {
  const { router, tracing } = await setup();
  const a = await member(router);
  a.send({ join_room: { room_id: "r" } });
  await eventually(() => a.outlet.kinds("roomJoined").length === 1);
  const client = "00-11111111111111111111111111111111-2222222222222222-01";
  a.send({ message: { target: "r", content: "x", traceparent: client, tracestate: "k=v" } });
  await eventually(() => a.outlet.kinds("message").length === 1);
  assert.deepEqual(tracing.published, [
    { ...tracing.published[0], traceparent: client, tracestate: "k=v" },
  ]);
  const delivered = a.outlet.kinds("message")[0]!;
  assert.equal(delivered.traceparent, PUBLISH_SPAN);
  assert.equal(delivered.tracestate, "k=v");
  assert.deepEqual(tracing.delivered, [{ remote: false, traceparent: PUBLISH_SPAN }]);
  // A replay carries the stored (publish span's) traceparent too.
  const b = await member(router);
  b.send({ join_room: { room_id: "r", since: { offset: "0", epoch: "" } } });
  await eventually(() => b.outlet.kinds("message").length === 1);
  assert.equal(b.outlet.kinds("message")[0]!.traceparent, PUBLISH_SPAN);
});
