// A generator worker thread: holds its share of the connections, publishes from
// its publishers at the rate it is told (open loop) or keeps a fixed number of
// publishes in flight (closed loop), and counts what comes back.
import { join } from "node:path";
import { parentPort, threadId, workerData } from "node:worker_threads";
import { Histogram } from "../lib/histogram.js";
import { LatencyTimeline, appendLines, traceDir } from "../lib/trace.js";
import { connectClient, type BenchClient, type ClientHooks } from "./clients.js";
import type { Command, Counters, Reply, WorkerSetup } from "./messages.js";
import { makeContent, nowNs } from "./payload.js";

const setup = workerData as WorkerSetup;
const port = parentPort;
if (port === null) throw new Error("bench worker started outside worker_threads");

const TICK_MS = 5;
const CONNECT_TIMEOUT_MS = 15_000;

const counters: Counters = {
  delivered: 0,
  acks: 0,
  published: 0,
  skipped: 0,
  errors: 0,
  closed: 0,
};
const latency = new Histogram();
// Under --trace, deliveries per 100 ms too (bench/lib/trace.ts).
const traceTo = traceDir();
const timeline = traceTo === undefined ? undefined : new LatencyTimeline();
const flushTimeline = (): void => {
  if (timeline === undefined || traceTo === undefined) return;
  appendLines(join(traceTo, `generator-${process.pid}-${threadId}.log`), timeline.drain());
};
if (timeline !== undefined) setInterval(flushTimeline, 1000).unref();
const ackLatency = new Histogram();
const clients: (BenchClient | undefined)[] = [];
const publishers: BenchClient[] = [];
/**
 * Send times (ns) of each client's publishes not yet answered. A connection's
 * frames are answered in order (an ack, or an error for a refused publish), so
 * the oldest send time belongs to the next answer.
 */
const unanswered = new Map<BenchClient, SendTimes>();

class SendTimes {
  #times: number[] = [];
  #head = 0;
  push(ns: number): void {
    this.#times.push(ns);
  }
  shift(): number | undefined {
    if (this.#head >= this.#times.length) return undefined;
    const ns = this.#times[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#times.length) {
      this.#times = this.#times.slice(this.#head);
      this.#head = 0;
    }
    return ns;
  }
}
let closedLoopDepth = 0;
let pacer: NodeJS.Timeout | undefined;

function publishOne(client: BenchClient): void {
  const ns = nowNs();
  client.publish(makeContent(ns, setup.contentBytes));
  unanswered.get(client)?.push(ns);
  counters.published++;
}

function answered(index: number): void {
  const client = clients[index];
  const sent = client === undefined ? undefined : unanswered.get(client)?.shift();
  if (sent !== undefined) ackLatency.record((nowNs() - sent) / 1000);
}

function hooksFor(index: number): ClientHooks {
  return {
    delivered: (stampNs) => {
      counters.delivered++;
      if (stampNs === stampNs) {
        const now = nowNs();
        latency.record((now - stampNs) / 1000);
        timeline?.record(now, (now - stampNs) / 1e6);
      }
    },
    ack: () => {
      counters.acks++;
      answered(index);
      if (closedLoopDepth === 0) return;
      const client = clients[index];
      if (client !== undefined) publishOne(client);
    },
    error: () => {
      counters.errors++;
      answered(index);
    },
    closed: () => counters.closed++,
  };
}

async function connectAll(): Promise<Reply & { type: "connected" }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError = "";
  const lane = async (): Promise<void> => {
    while (next < setup.members.length) {
      const index = next++;
      const spec = setup.members[index];
      if (spec === undefined) continue;
      const sources = setup.sourceAddresses;
      const localAddress = sources.length === 0 ? undefined : sources[index % sources.length];
      try {
        const client = await connectClient(
          setup.kind,
          { url: setup.url, room: spec.room, localAddress, timeoutMs: CONNECT_TIMEOUT_MS },
          hooksFor(index),
        );
        clients[index] = client;
        if (spec.publisher) {
          publishers.push(client);
          unanswered.set(client, new SendTimes());
        }
        ok++;
      } catch (err) {
        failed++;
        if (firstError === "") firstError = err instanceof Error ? err.message : String(err);
      }
    }
  };
  const lanes = Array.from({ length: Math.max(1, setup.connectConcurrency) }, lane);
  await Promise.all(lanes);
  return { id: 0, type: "connected", ok, failed, firstError };
}

/** Open loop: a token bucket refilled every tick, round-robin over the publishers. */
function setRate(perSecond: number): void {
  if (pacer !== undefined) clearInterval(pacer);
  pacer = undefined;
  if (perSecond <= 0 || publishers.length === 0) return;
  const start = performance.now();
  let issued = 0;
  let cursor = 0;
  // After a stall the generator sends at most one tick's worth of catch-up.
  const burst = Math.max(1, Math.ceil((perSecond * TICK_MS * 4) / 1000));
  pacer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * perSecond) / 1000);
    let owed = due - issued;
    if (owed > burst) {
      issued += owed - burst;
      owed = burst;
    }
    for (let i = 0; i < owed; i++) {
      const client = publishers[cursor];
      cursor = (cursor + 1) % publishers.length;
      issued++;
      if (client === undefined) continue;
      if (client.backlogged(setup.maxPublisherBuffer)) counters.skipped++;
      else publishOne(client);
    }
  }, TICK_MS);
}

function startClosedLoop(depth: number): void {
  closedLoopDepth = depth;
  for (const client of publishers) {
    for (let i = 0; i < depth; i++) publishOne(client);
  }
}

function handle(cmd: Command): void {
  switch (cmd.type) {
    case "connect":
      void connectAll().then((reply) => port?.postMessage({ ...reply, id: cmd.id }));
      return;
    case "rate":
      closedLoopDepth = 0;
      setRate(cmd.perSecond);
      break;
    case "closed-loop":
      setRate(0);
      startClosedLoop(cmd.inflight);
      break;
    case "snapshot": {
      const reply: Reply = {
        id: cmd.id,
        type: "snapshot",
        counters: { ...counters },
        latency: Array.from(latency.counts),
        ackLatency: Array.from(ackLatency.counts),
      };
      if (cmd.resetLatency) {
        latency.reset();
        ackLatency.reset();
      }
      port?.postMessage(reply);
      return;
    }
    case "stop":
      flushTimeline(); // the last second's buckets, before the thread ends
      setRate(0);
      closedLoopDepth = 0;
      for (const client of clients) client?.close();
      port?.postMessage({ id: cmd.id, type: "done" } satisfies Reply);
      return;
  }
  port?.postMessage({ id: cmd.id, type: "done" } satisfies Reply);
}

port.on("message", (cmd: Command) => handle(cmd));
