// The node's telemetry, put together from what is switched on: metrics
// (METRICS_ENABLED, served at METRICS_PATH on the main port or only on
// METRICS_PORT) and tracing (an OTLP endpoint set). It implements the ports
// the core and the gateway report to, and hands main.ts the store hooks and
// the broker wrapper. Whatever is off costs nothing: its no-op stands in.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Broker } from "../ports/broker.js";
import {
  noMetrics,
  noTracing,
  type CoreMetrics,
  type GatewayTelemetry,
  type MessageTracing,
  type ShedReason,
  type Telemetry,
} from "../ports/telemetry.js";
import type { Logger } from "./logging.js";
import { Metrics } from "./metrics.js";
import { InstrumentedBroker } from "./instrumented-broker.js";
import type { Tracing } from "./tracing.js";

export interface TelemetryOptions {
  /** undefined: metrics off. */
  readonly metrics: Metrics | undefined;
  /** undefined: tracing off. */
  readonly tracing: Tracing | undefined;
  readonly metricsPath: string;
  /** Serve metrics only on this port (0 picks one); undefined serves them on the main port. */
  readonly metricsPort: number | undefined;
  readonly host: string;
  /** Upgrades on this path are counted (others are 404s of no interest). */
  readonly wsPath: string;
  readonly log: Logger;
}

export class NodeTelemetry implements Telemetry, GatewayTelemetry {
  readonly metrics: CoreMetrics;
  readonly tracing: MessageTracing;
  readonly #opts: TelemetryOptions;
  #server: Server | undefined;

  constructor(opts: TelemetryOptions) {
    this.#opts = opts;
    this.metrics = opts.metrics ?? noMetrics;
    this.tracing = opts.tracing ?? noTracing;
  }

  /** Hooks for GuardedStore: durations into the histogram, calls into spans. */
  storeHooks(): {
    observe?: (operation: string, seconds: number) => void;
    around?: <T>(operation: string, call: () => Promise<T>) => Promise<T>;
  } {
    const { metrics, tracing } = this.#opts;
    return {
      ...(metrics !== undefined && {
        observe: (operation: string, seconds: number) => metrics.storeCall(operation, seconds),
      }),
      ...(tracing !== undefined && {
        around: <T>(operation: string, call: () => Promise<T>) => tracing.store(operation, call),
      }),
    };
  }

  /** The broker as the node should use it: failures, reconnects and publish spans recorded. */
  broker(inner: Broker): Broker {
    const { metrics, tracing } = this.#opts;
    if (metrics === undefined && tracing === undefined) return inner;
    return new InstrumentedBroker(inner, metrics, tracing);
  }

  // ---- GatewayTelemetry -------------------------------------------------------

  serve(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.#opts.metricsPort !== undefined) return false;
    return this.#serveMetrics(req, res);
  }

  upgrade(
    req: IncomingMessage,
    run: () => Promise<void>,
    status: () => number | undefined,
  ): Promise<void> {
    const { tracing, metrics } = this.#opts;
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const ran = tracing === undefined ? run() : tracing.upgrade(req.headers, path, run, status);
    if (metrics === undefined || path !== this.#opts.wsPath) return ran;
    return ran.finally(() => metrics.upgraded(status()));
  }

  connected(): void {
    this.#opts.metrics?.connected();
  }

  disconnected(code: number): void {
    this.#opts.metrics?.disconnected(code);
  }

  slowConsumer(why: string): void {
    this.#opts.metrics?.slowConsumer(why === "hard cap" ? "hard_cap" : "not_draining");
  }

  shed(reason: ShedReason): void {
    this.#opts.metrics?.handshakeShed(reason);
  }

  // ---- lifecycle --------------------------------------------------------------

  /** Starts the separate metrics listener when METRICS_PORT is set; resolves with its port. */
  async listen(): Promise<number | undefined> {
    if (this.#opts.metrics === undefined || this.#opts.metricsPort === undefined) return undefined;
    const server = createServer((req, res) => {
      if (!this.#serveMetrics(req, res)) {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("not found");
      }
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#opts.metricsPort, this.#opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      await this.#opts.tracing?.shutdown();
    } catch (err) {
      this.#opts.log.warn({ err }, "flushing trace spans failed");
    }
  }

  #serveMetrics(req: IncomingMessage, res: ServerResponse): boolean {
    const metrics = this.#opts.metrics;
    if (metrics === undefined || req.method !== "GET") return false;
    if ((req.url ?? "/").split("?")[0] !== this.#opts.metricsPath) return false;
    metrics.render().then(
      (text) => {
        res.writeHead(200, {
          "Content-Type": metrics.contentType,
          "Content-Length": Buffer.byteLength(text),
        });
        res.end(text);
      },
      (err: unknown) => {
        this.#opts.log.error({ err }, "rendering metrics failed");
        res.writeHead(500).end();
      },
    );
    return true;
  }
}
