// tracing.ts against the real OpenTelemetry SDK with an in-memory exporter:
// the trace fields a publish hands on, which spans are children of which,
// the sampling flag, and the ids log lines get inside a traced operation.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-node";
import { Tracing, traceIds } from "../../src/observability/tracing.js";

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
const tracing = new Tracing(provider);

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";

function spans(name: string) {
  return exporter.getFinishedSpans().filter((s) => s.name === name);
}

test("tracing - a publish is the client's child; store and broker calls inside it are its children", async () => {
  exporter.reset();
  let handed: { traceparent?: string | undefined; tracestate?: string | undefined } = {};
  let ids: Record<string, string> = {};
  await tracing.publish(
    "room",
    { traceparent: `00-${TRACE}-${CLIENT_SPAN}-01`, tracestate: "a=1,b=2" },
    async (t) => {
      handed = t;
      await tracing.store("append", () => Promise.resolve());
      await tracing.broker("room", () => Promise.resolve());
      ids = traceIds();
    },
  );
  const [publish] = spans("publish");
  assert.ok(publish !== undefined);
  const own = publish.spanContext();
  assert.equal(own.traceId, TRACE);
  assert.equal(publish.parentSpanContext?.spanId, CLIENT_SPAN);
  assert.equal(handed.traceparent, `00-${TRACE}-${own.spanId}-01`);
  assert.equal(handed.tracestate, "a=1,b=2");
  assert.equal(spans("store append")[0]?.parentSpanContext?.spanId, own.spanId);
  assert.equal(spans("broker publish")[0]?.parentSpanContext?.spanId, own.spanId);
  // Log lines written inside carry the operation's trace.
  assert.equal(ids["trace_id"], TRACE);
  assert.deepEqual(traceIds(), {});
});

test("tracing - a delivery is a child of the publish span the message carries", () => {
  exporter.reset();
  const carried = `00-${TRACE}-${CLIENT_SPAN}-01`;
  let ran = false;
  tracing.deliver("room", { traceparent: carried }, true, () => {
    ran = true;
  });
  assert.ok(ran);
  const [deliver] = spans("deliver");
  assert.equal(deliver?.spanContext().traceId, TRACE);
  assert.equal(deliver?.parentSpanContext?.spanId, CLIENT_SPAN);
  assert.equal(deliver?.attributes["roomcast.remote"], true);
  // No trace context on the message: nothing to continue, no span.
  tracing.deliver("room", {}, false, () => undefined);
  assert.equal(spans("deliver").length, 1);
});

test("tracing - no traceparent starts a root; an unsampled parent stays unsampled", async () => {
  exporter.reset();
  const root = await tracing.publish("room", {}, (t) => Promise.resolve(t));
  assert.match(root.traceparent ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(spans("publish")[0]?.parentSpanContext, undefined);

  exporter.reset();
  const off = await tracing.publish(
    "room",
    { traceparent: `00-${TRACE}-${CLIENT_SPAN}-00` },
    async (t) => {
      await tracing.store("append", () => Promise.resolve());
      return t;
    },
  );
  const [, traceId, spanId, flags] = (off.traceparent ?? "").split("-");
  assert.equal(traceId, TRACE);
  assert.notEqual(spanId, CLIENT_SPAN);
  assert.equal(flags, "00");
  assert.equal(exporter.getFinishedSpans().length, 0);
});

test("tracing - store calls outside a traced operation make no span", async () => {
  exporter.reset();
  await tracing.store("saveSession", () => Promise.resolve());
  assert.equal(exporter.getFinishedSpans().length, 0);
});
