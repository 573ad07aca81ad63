// Tracing end to end: two real nodes on a private NATS export to a real OTLP
// receiver started by the test (gRPC, http/protobuf, http/json). A publish
// with a client traceparent gives a publish span whose parent is the
// client's span, store and broker spans under it, and a deliver span on the
// other node in the same trace; every delivered copy carries the publish
// span's traceparent and the client's tracestate. With tracing off both pass
// through unchanged.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import { natsServerAvailable, startNatsServer, type NatsServer } from "../helpers/nats.js";
import {
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from "../helpers/otlp-receiver.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const TRACESTATE = "roomcast-test=abc,other=1";

function clientTrace(): { traceId: string; spanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString("hex");
  const spanId = randomBytes(8).toString("hex");
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

const protocols = [
  { protocol: "grpc", transport: "grpc" },
  { protocol: "http/protobuf", transport: "http" },
  { protocol: "http/json", transport: "http" },
] as const;

describe("tracing - two nodes", { skip: !natsServerAvailable() }, () => {
  let nats: NatsServer;
  const cleanup: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  for (const { protocol, transport } of protocols) {
    test(`${protocol} - one trace from the client's span to the delivery on the other node`, async () => {
      nats ??= await startNatsServer();
      if (cleanup.length === 0) cleanup.push(() => nats.close());
      const receiver: OtlpReceiver = await startOtlpReceiver(transport);
      cleanup.push(() => receiver.close());
      const env = (name: string) => ({
        BROKER: "nats",
        NATS_URL: nats.url,
        STORE: "memory",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        OTEL_SERVICE_NAME: name,
        OTEL_BSP_SCHEDULE_DELAY: "50",
      });
      const one: ServerProcess = await startServer(env("roomcast-one"));
      cleanup.push(() => one.stop());
      const two: ServerProcess = await startServer(env("roomcast-two"));
      cleanup.push(() => two.stop());

      const upgrade = clientTrace();
      const a = await TestClient.connect(one.wsUrl, {
        headers: { traceparent: upgrade.traceparent },
      });
      const b = await TestClient.connect(two.wsUrl);
      cleanup.push(() => {
        a.close();
        b.close();
        return Promise.resolve();
      });
      const room = `traced-${protocol.replace("/", "-")}`;
      for (const c of [a, b]) {
        await c.next("session");
        c.send({ join_room: { room_id: room } });
        await c.next("room_joined");
      }

      const client = clientTrace();
      a.send({
        message: {
          target: room,
          content: "hello",
          traceparent: client.traceparent,
          tracestate: TRACESTATE,
        },
      });
      await a.next("ack");
      const onA = await a.next("message");
      const onB = await b.next("message");

      // Both copies carry the publish span's context: same trace, a new span id, sampled.
      const delivered = String(onB["traceparent"]);
      const [version, traceId, publishSpanId, flags] = delivered.split("-");
      assert.equal(version, "00");
      assert.equal(traceId, client.traceId);
      assert.notEqual(publishSpanId, client.spanId);
      assert.equal(flags, "01");
      assert.equal(onA["traceparent"], delivered);
      assert.equal(onB["tracestate"], TRACESTATE);
      assert.equal(onA["tracestate"], TRACESTATE);

      const inTrace = (name: string, service: string) => (s: ReceivedSpan) =>
        s.traceId === client.traceId && s.name === name && s.service === service;
      const spans = await eventually(
        () => {
          const found = {
            publish: receiver.spans.find(inTrace("publish", "roomcast-one")),
            append: receiver.spans.find(inTrace("store append", "roomcast-one")),
            broker: receiver.spans.find(inTrace("broker publish", "roomcast-one")),
            localDeliver: receiver.spans.find(inTrace("deliver", "roomcast-one")),
            remoteDeliver: receiver.spans.find(inTrace("deliver", "roomcast-two")),
            upgrade: receiver.spans.find(
              (s) => s.traceId === upgrade.traceId && s.name === "GET websocket upgrade",
            ),
            createSession: receiver.spans.find(
              (s) => s.traceId === upgrade.traceId && s.name === "store createSession",
            ),
          };
          return Object.values(found).every((s) => s !== undefined) ? found : undefined;
        },
        { timeoutMs: 10_000 },
      );
      // The server's publish span is a child of the client's span.
      assert.equal(spans.publish?.spanId, publishSpanId);
      assert.equal(spans.publish?.parentSpanId, client.spanId);
      assert.equal(spans.publish?.attributes["messaging.destination.name"], room);
      // Store append and broker publish under it.
      assert.equal(spans.append?.parentSpanId, publishSpanId);
      assert.equal(spans.broker?.parentSpanId, publishSpanId);
      // Delivery on both nodes, children of the publish span in the same trace.
      assert.equal(spans.localDeliver?.parentSpanId, publishSpanId);
      assert.equal(spans.remoteDeliver?.parentSpanId, publishSpanId);
      assert.equal(spans.remoteDeliver?.attributes["roomcast.remote"], true);
      // The upgrade is an HTTP server span, child of the request's traceparent.
      assert.equal(spans.upgrade?.service, "roomcast-one");
      assert.equal(spans.upgrade?.parentSpanId, upgrade.spanId);
      assert.equal(spans.createSession?.parentSpanId, spans.upgrade?.spanId);
      assert.equal(spans.upgrade?.attributes["http.response.status_code"], 101);
      // The exporter spoke the protocol asked for.
      const expected = {
        grpc: "grpc",
        "http/protobuf": "application/x-protobuf",
        "http/json": "application/json",
      }[protocol];
      assert.ok(
        receiver.requests.every((r) => r.startsWith(expected)),
        receiver.requests.join(),
      );
    });
  }

  test("a message without a traceparent starts a new root trace", async () => {
    const receiver = await startOtlpReceiver("http");
    cleanup.push(() => receiver.close());
    const node = await startServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_BSP_SCHEDULE_DELAY: "50",
    });
    cleanup.push(() => node.stop());
    const [a] = await TestClient.open(node.wsUrl);
    cleanup.push(() => Promise.resolve(a.close()));
    a.send({ join_room: { room_id: "rooted" } });
    await a.next("room_joined");
    a.send({ message: { target: "rooted", content: "x" } });
    const msg = await a.next("message");
    const [, traceId, spanId] = String(msg["traceparent"]).split("-");
    const publish = await eventually(() =>
      receiver.spans.find((s) => s.name === "publish" && s.spanId === spanId),
    );
    assert.equal(publish.traceId, traceId);
    assert.equal(publish.parentSpanId, "");
    assert.equal(publish.service, "roomcast");
  });
});

describe("tracing - off", () => {
  test("traceparent and tracestate pass through unchanged", async () => {
    const node = await startServer();
    try {
      const [a] = await TestClient.open(node.wsUrl);
      a.send({ join_room: { room_id: "untraced" } });
      await a.next("room_joined");
      const { traceparent } = clientTrace();
      a.send({
        message: { target: "untraced", content: "x", traceparent, tracestate: TRACESTATE },
      });
      const msg = await a.next("message");
      assert.equal(msg["traceparent"], traceparent);
      assert.equal(msg["tracestate"], TRACESTATE);
      const listening = node.logs.find((r) => r["msg"] === "listening");
      assert.equal(listening?.["tracing"], false);
      a.close();
    } finally {
      await node.stop();
    }
  });
});
