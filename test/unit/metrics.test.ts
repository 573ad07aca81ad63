// The metric registry: the names HTTP.md fixes, their labels, and that no
// label could carry a room, user or member id.
import assert from "node:assert/strict";
import { test } from "node:test";
import fs from "node:fs";
import {
  ENUMERATING_DEFAULT_METRICS,
  Metrics,
  closeCodeLabel,
  labelNames,
} from "../../src/observability/metrics.js";

/** name → label names, as the contract (HTTP.md, ARCHITECTURE.md) and docs/operations.md fix them. */
const contract: Record<string, readonly string[]> = {
  roomcast_connections: [],
  roomcast_rooms: [],
  roomcast_messages_published_total: [],
  roomcast_messages_delivered_total: [],
  roomcast_errors_total: ["code"],
  roomcast_rate_limited_total: ["limit"],
  roomcast_resumes_total: ["result"],
  roomcast_disconnects_total: ["code"],
  roomcast_publish_duration_seconds: [],
  roomcast_store_duration_seconds: ["operation"],
  roomcast_broker_publish_failures_total: [],
  roomcast_broker_reconnects_total: [],
  roomcast_slow_consumer_closes_total: ["reason"],
  roomcast_handshakes_shed_total: ["reason"],
  roomcast_replay_messages: [],
  roomcast_upgrades_total: ["status"],
  roomcast_rate_limit_fallback: [],
  roomcast_circuit_open: ["dependency"],
};

async function series(m: Metrics) {
  const out = new Map<
    string,
    { labels: Partial<Record<string, string | number>>; value: number }[]
  >();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    out.set(
      metric.name,
      metric.values.map((v) => ({ labels: v.labels, value: v.value })),
    );
  }
  return out;
}

test("metrics - declares every name of the contract with its labels", async () => {
  const m = new Metrics();
  const declared = new Map(
    (await m.registry.getMetricsAsJSON()).map((metric) => [metric.name, metric]),
  );
  for (const [name, labels] of Object.entries(contract)) {
    const metric = declared.get(name);
    assert.ok(metric !== undefined, `${name} is declared`);
    const own = m.registry.getSingleMetric(name) as unknown as { labelNames: string[] };
    assert.deepEqual([...own.labelNames].sort(), [...labels].sort(), name);
  }
  // The standard process and Node.js metrics, event-loop lag among them.
  for (const name of [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "nodejs_eventloop_lag_seconds",
    "nodejs_eventloop_lag_p99_seconds",
    "nodejs_heap_size_used_bytes",
  ]) {
    assert.ok(declared.has(name), `${name} is declared`);
  }
  // Every roomcast_ metric is in the contract above (and so in the docs).
  const ours = [...declared.keys()].filter((n) => n.startsWith("roomcast_")).sort();
  assert.deepEqual(ours, Object.keys(contract).sort());
});

test("metrics - no label can carry a room, user or member id", async () => {
  const m = new Metrics();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const own = m.registry.getSingleMetric(metric.name) as unknown as { labelNames: string[] };
    for (const label of own.labelNames) {
      assert.doesNotMatch(label, /room|user|member|session|id/i, `${metric.name}{${label}}`);
      if (metric.name.startsWith("roomcast_")) {
        assert.ok((labelNames as readonly string[]).includes(label), label);
      }
    }
  }
  // Label values are bounded: unknown codes collapse into "other".
  m.error("not-a-code-room-42");
  m.disconnected(4999);
  const s = await series(m);
  assert.deepEqual(
    s.get("roomcast_errors_total")?.map((v) => v.labels),
    [{ code: "other" }],
  );
  assert.deepEqual(
    s.get("roomcast_disconnects_total")?.map((v) => v.labels),
    [{ code: "other" }],
  );
  assert.equal(closeCodeLabel(4000), "4000");
  assert.equal(closeCodeLabel(1006), "1006");
});

test("metrics - plain counters are read when scraped", async () => {
  const m = new Metrics();
  m.published();
  m.published();
  m.delivered(3);
  m.delivered(27);
  m.rooms(1);
  m.rooms(1);
  m.rooms(-1);
  m.connected();
  m.connected();
  m.disconnected(1000);
  m.error("not_joined");
  m.resume("resumed");
  m.replayed(12);
  m.storeCall("resumeSession", 0.002);
  m.slowConsumer("hard_cap");
  m.publishTimer()();
  let s = await series(m);
  assert.equal(s.get("roomcast_messages_published_total")?.[0]?.value, 2);
  assert.equal(s.get("roomcast_messages_delivered_total")?.[0]?.value, 30);
  assert.equal(s.get("roomcast_rooms")?.[0]?.value, 1);
  assert.equal(s.get("roomcast_connections")?.[0]?.value, 1);
  assert.deepEqual(s.get("roomcast_disconnects_total"), [{ labels: { code: "1000" }, value: 1 }]);
  assert.deepEqual(s.get("roomcast_errors_total"), [{ labels: { code: "not_joined" }, value: 1 }]);
  const text = await m.render();
  assert.match(text, /^roomcast_store_duration_seconds_count\{operation="resume_session"\} 1$/m);
  assert.match(text, /^roomcast_replay_messages_sum 12$/m);
  assert.match(text, /^roomcast_publish_duration_seconds_count 1$/m);
  assert.match(text, /^roomcast_resumes_total\{result="resumed"\} 1$/m);
  assert.match(text, /^roomcast_slow_consumer_closes_total\{reason="hard_cap"\} 1$/m);
  // A second scrape reads the same totals, not double.
  m.delivered(1);
  s = await series(m);
  assert.equal(s.get("roomcast_messages_delivered_total")?.[0]?.value, 31);
});

test("metrics - a scrape never lists the process's handles, resources or descriptors on the event loop", async (t) => {
  // Those lists grow with the sockets: at 9,000 connections they made a
  // scrape stall every delivery for ~14 ms. Count the calls that build them.
  const calls = { handles: 0, resources: 0, readdirSync: 0 };
  const proc = process as unknown as Record<string, (...args: unknown[]) => unknown>;
  const count = (
    obj: Record<string, (...args: unknown[]) => unknown>,
    key: string,
    as: keyof typeof calls,
  ) => {
    const original = obj[key];
    if (original === undefined) return;
    obj[key] = function (this: unknown, ...args: unknown[]) {
      calls[as]++;
      return original.apply(this, args);
    };
    t.after(() => {
      obj[key] = original;
    });
  };
  count(proc, "_getActiveHandles", "handles");
  count(proc, "getActiveResourcesInfo", "resources");
  count(
    fs as unknown as Record<string, (...args: unknown[]) => unknown>,
    "readdirSync",
    "readdirSync",
  );
  const m = new Metrics();
  const text = await m.render();
  assert.deepEqual(calls, { handles: 0, resources: 0, readdirSync: 0 });
  for (const name of ENUMERATING_DEFAULT_METRICS) {
    if (name === "process_open_fds") continue;
    assert.doesNotMatch(text, new RegExp(`^${name}[ {]`, "m"), `${name} is not exported`);
  }
  if (process.platform !== "linux") return;
  // The open descriptors are still counted, off the event loop: opening
  // more files raises the figure by as many.
  const openFds = async () => Number(/^process_open_fds (\d+)$/m.exec(await m.render())?.[1]);
  const before = await openFds();
  const extra = Array.from({ length: 5 }, () => fs.openSync("/dev/null", "r"));
  t.after(() => extra.forEach((fd) => fs.closeSync(fd)));
  assert.equal(await openFds(), before + extra.length);
});
