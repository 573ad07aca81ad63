// OpenTelemetry tracing, configured by OpenTelemetry's own OTEL_* variables
// (ARCHITECTURE.md "Names fixed by the contract"). With neither
// OTEL_EXPORTER_OTLP_ENDPOINT nor OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set,
// `startTracing` returns undefined: no SDK, no exporter, and the core keeps
// `noTracing`, which only calls through.
//
// Spans: the WebSocket upgrade (SERVER, parent from the request's
// traceparent header); each publish (PRODUCER, child of the message's
// traceparent or a new root, sampled by OTEL_TRACES_SAMPLER) with the store
// calls (CLIENT) and the broker publish (PRODUCER) under it; and the delivery
// of the message on each node (CONSUMER, child of the publish span through
// the traceparent the message carries in the broker payload).
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  diag,
  propagation,
  trace,
  type Attributes,
  type Context,
  type DiagLogger,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { DiagLogLevel } from "@opentelemetry/api";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-node";
import type { Config } from "../config/schema.js";
import type { MessageTracing, TraceFields } from "../ports/telemetry.js";
import type { Logger } from "./logging.js";

export type OtlpProtocol = "grpc" | "http/protobuf" | "http/json";

export interface TracingSettings {
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string | undefined;
  /** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else grpc. */
  readonly protocol: OtlpProtocol;
  readonly serviceName: string;
}

/** The tracing half of the node's telemetry, present only when an endpoint is set. */
export class Tracing implements MessageTracing {
  readonly #provider: NodeTracerProvider;
  readonly #tracer: Tracer;

  constructor(provider: NodeTracerProvider) {
    this.#provider = provider;
    this.#tracer = provider.getTracer("roomcast");
  }

  publish<T>(room: string, msg: TraceFields, fn: (trace: TraceFields) => Promise<T>): Promise<T> {
    return this.#tracer.startActiveSpan(
      "publish",
      { kind: SpanKind.PRODUCER, attributes: messaging(room, "send") },
      parentOf(msg),
      async (span) => {
        const carrier: Record<string, string> = {};
        propagation.inject(context.active(), carrier);
        try {
          // The span's traceparent; the tracestate exactly as the client sent it.
          return await fn({ traceparent: carrier["traceparent"], tracestate: msg.tracestate });
        } catch (err) {
          fail(span, err);
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  deliver(room: string, msg: TraceFields, remote: boolean, fn: () => void): void {
    if (msg.traceparent === undefined) {
      fn();
      return;
    }
    const span = this.#tracer.startSpan(
      "deliver",
      {
        kind: SpanKind.CONSUMER,
        attributes: messaging(room, "process", remote),
      },
      parentOf(msg),
    );
    try {
      context.with(trace.setSpan(context.active(), span), fn);
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Runs a store call in a CLIENT span, only inside a traced operation (timers' calls stay untraced). */
  store<T>(operation: string, call: () => Promise<T>): Promise<T> {
    return this.#child(
      `store ${operation}`,
      SpanKind.CLIENT,
      { "db.operation.name": operation },
      call,
    );
  }

  /** Runs a broker publish in a PRODUCER span, only inside a traced operation. */
  broker<T>(room: string, call: () => Promise<T>): Promise<T> {
    return this.#child("broker publish", SpanKind.PRODUCER, messaging(room, "publish"), call);
  }

  /** Runs a WebSocket upgrade in a SERVER span; `status` tells what was answered. */
  async upgrade(
    headers: Readonly<Record<string, string | string[] | undefined>>,
    path: string,
    run: () => Promise<void>,
    status: () => number | undefined,
  ): Promise<void> {
    const parent = propagation.extract(ROOT_CONTEXT, headers);
    const span = this.#tracer.startSpan(
      "GET websocket upgrade",
      {
        kind: SpanKind.SERVER,
        attributes: { "http.request.method": "GET", "url.path": path },
      },
      parent,
    );
    try {
      await context.with(trace.setSpan(parent, span), run);
      const code = status();
      if (code !== undefined) {
        span.setAttribute("http.response.status_code", code);
        if (code >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      }
    } catch (err) {
      fail(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  async #child<T>(
    name: string,
    kind: SpanKind,
    attributes: Attributes,
    call: () => Promise<T>,
  ): Promise<T> {
    if (trace.getActiveSpan() === undefined) return call();
    return this.#tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
      try {
        return await call();
      } catch (err) {
        fail(span, err);
        throw err;
      } finally {
        span.end();
      }
    });
  }

  /** Exports what is buffered and stops (on shutdown). */
  shutdown(): Promise<void> {
    return this.#provider.shutdown();
  }
}

// Built whole, not spread and extended: Node 20's optimised code gives each
// object made by `{ ...a, extra }` a hidden class of its own.
function messaging(room: string, operation: string, remote?: boolean): Attributes {
  const attributes: Attributes = {
    "messaging.system": "roomcast",
    "messaging.operation.type": operation,
    "messaging.destination.name": room,
  };
  if (remote !== undefined) attributes["roomcast.remote"] = remote;
  return attributes;
}

function parentOf(msg: TraceFields): Context {
  if (msg.traceparent === undefined) return ROOT_CONTEXT;
  const carrier: Record<string, string> = { traceparent: msg.traceparent };
  if (msg.tracestate !== undefined) carrier["tracestate"] = msg.tracestate;
  return propagation.extract(ROOT_CONTEXT, carrier);
}

function fail(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR });
}

/** The OTEL_* variables this module acts on (the SDK and exporters read the rest themselves). */
export function tracingSettings(config: Config): TracingSettings {
  return {
    endpoint: config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? config.OTEL_EXPORTER_OTLP_ENDPOINT,
    protocol: config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? config.OTEL_EXPORTER_OTLP_PROTOCOL,
    serviceName: config.OTEL_SERVICE_NAME,
  };
}

async function exporterFor(protocol: OtlpProtocol): Promise<SpanExporter> {
  // Loaded only when tracing is on: a node without an endpoint never loads gRPC.
  switch (protocol) {
    case "grpc":
      return new (await import("@opentelemetry/exporter-trace-otlp-grpc")).OTLPTraceExporter();
    case "http/protobuf":
      return new (await import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter();
    case "http/json":
      return new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter();
  }
}

/** Starts the SDK when an endpoint is set; undefined (tracing off) otherwise. */
export async function startTracing(
  settings: TracingSettings,
  log: Logger,
): Promise<Tracing | undefined> {
  if (settings.endpoint === undefined) return undefined;
  diag.setLogger(diagToPino(log), DiagLogLevel.WARN);
  const resource = resourceFromAttributes({ "service.name": settings.serviceName }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(await exporterFor(settings.protocol))],
  });
  // Registers the AsyncLocalStorage context manager and the W3C propagators.
  provider.register();
  return new Tracing(provider);
}

function diagToPino(log: Logger): DiagLogger {
  return {
    error: (msg, ...args) => log.error({ args }, `opentelemetry: ${msg}`),
    warn: (msg, ...args) => log.warn({ args }, `opentelemetry: ${msg}`),
    info: (msg) => log.info(`opentelemetry: ${msg}`),
    debug: (msg) => log.debug(`opentelemetry: ${msg}`),
    verbose: (msg) => log.trace(`opentelemetry: ${msg}`),
  };
}

/** The active span's ids, for log lines inside a traced operation (pino mixin). */
export function traceIds(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const ids = span.spanContext();
  return { trace_id: ids.traceId, span_id: ids.spanId };
}
