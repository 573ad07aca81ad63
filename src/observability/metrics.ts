// Every metric Roomcast exports, declared here and nowhere else (names are
// contract: ../shared/design/HTTP.md "Metrics" and docs/operations.md).
// test/unit/metrics.test.ts checks the names, their labels, and that no label
// could carry a room, user or member id.
//
// The fanout path only adds to plain numbers (`#published`, `#delivered`,
// `#rooms`, `#connections`); prom-client reads them when scraped, through each
// metric's `collect()`, so the fanout loop never hashes labels or calls into
// prom-client per member. Measured (docs/benchmarks.md, CPU profiles of the
// fanout scenario): all metrics code together is 1.0-1.7 % of server CPU,
// mostly the once-per-publish histogram observations.
import { readdir } from "node:fs/promises";
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
} from "prom-client";
import { CloseCode, ErrorCode } from "../protocol/errors.js";
import { ShedReason, type CoreMetrics, type ResumeResult } from "../ports/telemetry.js";
import { RATE_LIMIT_NAMES, type RateLimitName } from "../core/rate-limits.js";

/** Why a slow consumer was closed (4000). */
export type SlowConsumerReason = "hard_cap" | "not_draining";
/** Which limit refused a request: RATE_LIMIT_MESSAGES, _ROOM_MESSAGES, _JOINS, _HANDSHAKES. */
export type RateLimit = RateLimitName;

/**
 * prom-client defaults left out: each collects by listing every handle,
 * resource or descriptor of the process on the event loop (process_open_fds
 * is replaced by a count read off the loop).
 */
export const ENUMERATING_DEFAULT_METRICS = [
  "process_open_fds",
  "nodejs_active_handles",
  "nodejs_active_handles_total",
  "nodejs_active_resources",
  "nodejs_active_resources_total",
] as const;

/** Every label name in use; none of them names a room, user or member. */
export const labelNames = [
  "code",
  "limit",
  "result",
  "operation",
  "reason",
  "status",
  "dependency",
] as const;

/** HTTP answers to an upgrade that get a series of their own; others count as "other". */
const upgradeStatuses = new Set([101, 400, 401, 403, 404, 429, 500, 503]);

const knownCloseCodes = new Set<number>([...Object.values(CloseCode), 1005, 1006]);
const knownErrorCodes = new Set<string>(Object.values(ErrorCode));

/** Close codes as label values: registered ones (plus 1005/1006), anything else "other" (a peer may send any code). */
export function closeCodeLabel(code: number): string {
  return knownCloseCodes.has(code) ? String(code) : "other";
}

const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const REPLAY_BUCKETS = [0, 1, 10, 50, 100, 500, 1000, 5000, 10_000];

export class Metrics implements CoreMetrics {
  readonly registry = new Registry();
  #published = 0;
  #delivered = 0;
  #rooms = 0;
  #connections = 0;
  readonly #errors: Counter<"code">;
  readonly #rateLimited: Counter<"limit">;
  readonly #resumes: Counter<"result">;
  readonly #disconnects: Counter<"code">;
  readonly #publishDuration: Histogram;
  readonly #storeDuration: Histogram<"operation">;
  readonly #brokerPublishFailures: Counter;
  readonly #brokerReconnects: Counter;
  readonly #slowConsumers: Counter<"reason">;
  readonly #handshakesShed: Counter<"reason">;
  readonly #replaySize: Histogram;
  readonly #upgrades: Counter<"status">;
  /** 1 while distributed rate limits fell back to this node's own limiter. */
  #rateLimitFallback = 0;
  /** Whether each dependency's circuit breaker is open, read at scrape time. */
  readonly #breakers = new Map<"store" | "broker", () => boolean>();
  readonly #operationLabels = new Map<string, string>();

  constructor() {
    const registers = [this.registry];
    const counter = <L extends string>(c: CounterConfiguration<L>) =>
      new Counter<L>({ ...c, registers });
    // collect() runs with the metric as `this`; these read the plain numbers.
    const connections = () => this.#connections;
    const rooms = () => this.#rooms;
    const published = () => this.#published;
    const delivered = () => this.#delivered;

    new Gauge({
      name: "roomcast_connections",
      help: "Open WebSocket connections on this node.",
      registers,
      collect() {
        this.set(connections());
      },
    });
    new Gauge({
      name: "roomcast_rooms",
      help: "Rooms with at least one member on this node.",
      registers,
      collect() {
        this.set(rooms());
      },
    });
    counter({
      name: "roomcast_messages_published_total",
      help: "Messages stored by publishes on this node (WebSocket and API); duplicates are not counted.",
      collect() {
        this.reset();
        this.inc(published());
      },
    });
    counter({
      name: "roomcast_messages_delivered_total",
      help: "Message frames written to sockets on this node, live and replayed.",
      collect() {
        this.reset();
        this.inc(delivered());
      },
    });
    this.#errors = counter({
      name: "roomcast_errors_total",
      help: "Error frames sent to clients, by wire error code.",
      labelNames: ["code"],
    });
    this.#rateLimited = counter({
      name: "roomcast_rate_limited_total",
      help: "Requests refused by a rate limit, by limit.",
      labelNames: ["limit"],
    });
    this.#resumes = counter({
      name: "roomcast_resumes_total",
      help: "Connections that offered a session token: resumed, or failed (unknown or expired; a fresh session was given).",
      labelNames: ["result"],
    });
    this.#disconnects = counter({
      name: "roomcast_disconnects_total",
      help: "Closed WebSocket connections, by close code (unregistered codes as other).",
      labelNames: ["code"],
    });
    this.#publishDuration = new Histogram({
      name: "roomcast_publish_duration_seconds",
      help: "WebSocket publish latency, frame handled to ack sent (store append and delivery included).",
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#storeDuration = new Histogram({
      name: "roomcast_store_duration_seconds",
      help: "Store call latency as the node sees it (timeout and circuit breaker included), by operation.",
      labelNames: ["operation"],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#brokerPublishFailures = counter({
      name: "roomcast_broker_publish_failures_total",
      help: "Broker publishes that failed (the room's head is announced again once the broker is back).",
    });
    this.#brokerReconnects = counter({
      name: "roomcast_broker_reconnects_total",
      help: "Times the broker connection came back after being lost.",
    });
    this.#slowConsumers = counter({
      name: "roomcast_slow_consumer_closes_total",
      help: "Connections closed as slow consumers (4000), by reason.",
      labelNames: ["reason"],
    });
    this.#handshakesShed = counter({
      name: "roomcast_handshakes_shed_total",
      help: "Upgrades refused with 503 and Retry-After because the node was overloaded, by reason (handshakes: HANDSHAKE_MAX_PENDING in progress; event_loop_lag: over HANDSHAKE_MAX_LAG).",
      labelNames: ["reason"],
    });
    this.#replaySize = new Histogram({
      name: "roomcast_replay_messages",
      help: "Messages replayed by one join with since (a resume or a client's own position).",
      buckets: REPLAY_BUCKETS,
      registers,
    });
    this.#upgrades = counter({
      name: "roomcast_upgrades_total",
      help: "WebSocket upgrade requests on the WebSocket path, by HTTP status answered (101 connected; aborted when the socket closed first).",
      labelNames: ["status"],
    });
    const fallback = () => this.#rateLimitFallback;
    new Gauge({
      name: "roomcast_rate_limit_fallback",
      help: "1 while RATE_LIMIT_DISTRIBUTED's backend is down and this node limits on its own.",
      registers,
      collect() {
        this.set(fallback());
      },
    });
    const breakers = this.#breakers;
    new Gauge({
      name: "roomcast_circuit_open",
      help: "1 while the circuit breaker in front of the dependency (store, broker) is open: its calls are refused without being made.",
      labelNames: ["dependency"],
      registers,
      collect() {
        for (const [dependency, open] of breakers) this.set({ dependency }, open() ? 1 : 0);
      },
    });
    // process_* and nodejs_*, event-loop lag included (nodejs_eventloop_lag_seconds
    // and its p50/p90/p99 from a 10 ms-resolution histogram).
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    // Except the ones that walk every socket on the event loop at each scrape:
    // at 9,000 connections they took 13 of the scrape's 14 ms (process_open_fds
    // 6-11 ms by a synchronous readdir of /proc/self/fd, the handle and
    // resource lists 5-9 ms), a stall of every delivery per scrape that grows
    // with the connections. The open fds are counted off the event loop
    // instead; roomcast_connections counts the sockets.
    for (const name of ENUMERATING_DEFAULT_METRICS) this.registry.removeSingleMetric(name);
    if (process.platform === "linux") {
      new Gauge({
        name: "process_open_fds",
        help: "Number of open file descriptors.",
        registers,
        async collect() {
          try {
            // Minus the descriptor the listing itself holds open.
            this.set((await readdir("/proc/self/fd")).length - 1);
          } catch {
            // Left at its last value.
          }
        },
      });
    }

    // Zero series for the labels known up front, so rates exist before the first event.
    for (const result of ["resumed", "expired", "error"] as const) this.#resumes.inc({ result }, 0);
    for (const limit of RATE_LIMIT_NAMES) this.#rateLimited.inc({ limit }, 0);
    for (const reason of ["hard_cap", "not_draining"] as const) {
      this.#slowConsumers.inc({ reason }, 0);
    }
    for (const reason of Object.values(ShedReason)) this.#handshakesShed.inc({ reason }, 0);
  }

  // ---- CoreMetrics ------------------------------------------------------------

  published(): void {
    this.#published++;
  }
  delivered(frames: number): void {
    this.#delivered += frames;
  }
  error(code: string): void {
    this.#errors.inc({ code: knownErrorCodes.has(code) ? code : "other" });
  }
  resume(result: ResumeResult): void {
    this.#resumes.inc({ result });
  }
  replayed(messages: number): void {
    this.#replaySize.observe(messages);
  }
  rooms(delta: number): void {
    this.#rooms += delta;
  }
  publishTimer(): () => void {
    const started = performance.now();
    return () => this.#publishDuration.observe((performance.now() - started) / 1000);
  }

  // ---- gateway, store, broker -------------------------------------------------

  /** An upgrade request was answered with `status` (undefined: the socket closed first). */
  upgraded(status: number | undefined): void {
    const label =
      status === undefined ? "aborted" : upgradeStatuses.has(status) ? String(status) : "other";
    this.#upgrades.inc({ status: label });
  }
  connected(): void {
    this.#connections++;
  }
  disconnected(code: number): void {
    this.#connections--;
    this.#disconnects.inc({ code: closeCodeLabel(code) });
  }
  slowConsumer(reason: SlowConsumerReason): void {
    this.#slowConsumers.inc({ reason });
  }
  handshakeShed(reason: ShedReason): void {
    this.#handshakesShed.inc({ reason });
  }
  rateLimitFallback(on: boolean): void {
    this.#rateLimitFallback = on ? 1 : 0;
  }

  rateLimited(limit: RateLimit): void {
    this.#rateLimited.inc({ limit });
  }
  /** `operation` as GuardedStore names it (append, read, createSession, ...); labelled snake_case. */
  storeCall(operation: string, seconds: number): void {
    let label = this.#operationLabels.get(operation);
    if (label === undefined) {
      label = operation.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      this.#operationLabels.set(operation, label);
    }
    this.#storeDuration.observe({ operation: label }, seconds);
  }
  /** Reports a dependency's breaker on roomcast_circuit_open (read at each scrape). */
  watchBreaker(dependency: "store" | "broker", open: () => boolean): void {
    this.#breakers.set(dependency, open);
  }
  brokerPublishFailed(): void {
    this.#brokerPublishFailures.inc();
  }
  brokerReconnected(): void {
    this.#brokerReconnects.inc();
  }

  /** The Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
