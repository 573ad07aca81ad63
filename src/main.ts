// The composition root: it reads the configuration, opens the store and the
// broker (named in adapters.ts, the one place that knows concrete adapters),
// and starts the gateway.
import type { Config } from "./config/schema.js";
import { ConfigError, loadConfig } from "./config/load.js";
import { GuardedStore } from "./adapters/store/guarded-store.js";
import { GuardedBroker } from "./adapters/broker/guarded-broker.js";
import { Housekeeping } from "./core/housekeeping.js";
import { Router } from "./core/router.js";
import { JwtCredentials } from "./gateway/auth.js";
import { Gateway } from "./gateway/gateway.js";
import { ServerApi } from "./gateway/api.js";
import { defaultPresenceOptions } from "./core/presence.js";
import { createLogger, type Logger } from "./observability/logging.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Metrics } from "./observability/metrics.js";
import { NodeTelemetry } from "./observability/telemetry.js";
import { startTracing, traceIds, tracingSettings } from "./observability/tracing.js";
import type { Broker } from "./ports/broker.js";
import type { Store } from "./ports/store.js";
import { createBroker, createRateLimits, createStore } from "./adapters.js";

// After DRAIN_PERIOD, this long for the last closes, the session flush and the
// store and broker to close; past it the process exits 1 rather than outlive
// the pod's grace period (DRAIN_PERIOD + 10 s in the chart) and be killed.
const SHUTDOWN_GRACE_MS = 5000;

// A second signal exits at once with the shell's code for "killed by it".
const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_EXIT_CODES;

function describeMode(store: Store, broker: Broker): string {
  if (!broker.capabilities.distributed) return "embedded";
  return store.capabilities.shared ? "cluster-durable" : "cluster-ephemeral";
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`roomcast: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const tracingOn = tracingSettings(config).endpoint !== undefined;
  const log = createLogger(config.LOG_LEVEL, tracingOn ? traceIds : undefined);
  const metrics = config.METRICS_ENABLED ? new Metrics() : undefined;
  const telemetry = new NodeTelemetry({
    metrics,
    tracing: await startTracing(tracingSettings(config), log),
    metricsPath: config.METRICS_PATH,
    metricsPort: config.METRICS_PORT,
    host: config.HOST,
    wsPath: config.WS_PATH,
    log,
  });

  const store = new GuardedStore(await createStore(config, log), {
    timeoutMs: config.STORE_TIMEOUT,
    failures: config.STORE_BREAKER_FAILURES,
    halfOpenAfterMs: config.STORE_BREAKER_RESET,
    ...telemetry.storeHooks(),
  });
  await store.open();
  const guardedBroker = new GuardedBroker(await createBroker(config, log), {
    timeoutMs: config.BROKER_TIMEOUT,
    failures: config.BROKER_BREAKER_FAILURES,
    halfOpenAfterMs: config.BROKER_BREAKER_RESET,
    subscribeAttempts: config.BROKER_RETRY_ATTEMPTS,
    retryBaseDelayMs: config.BROKER_RETRY_BACKOFF,
    retryBudget: config.BROKER_RETRY_BUDGET,
    log,
  });
  const broker = telemetry.broker(guardedBroker);
  metrics?.watchBreaker("store", () => !store.healthy);
  metrics?.watchBreaker("broker", () => !guardedBroker.healthy);
  await broker.open();

  const mode = describeMode(store, broker);
  if (mode === "cluster-ephemeral") {
    log.warn(
      { store: config.STORE, broker: config.BROKER },
      "ephemeral cluster: the store is node-local, so delivery across nodes is at most once and sessions resume only on the node that created them",
    );
  }
  const credentials = JwtCredentials.fromOptions({
    secret: config.AUTH_JWT_SECRET,
    publicKeyPem: config.AUTH_JWT_PUBLIC_KEY,
    publicKeyFile: config.AUTH_JWT_PUBLIC_KEY_FILE,
    jwksUrl: config.AUTH_JWKS_URL,
    jwksCacheTtlMs: config.AUTH_JWKS_CACHE_TTL,
    jwksCooldownMs: config.AUTH_JWKS_COOLDOWN,
    jwksTimeoutMs: config.AUTH_JWKS_TIMEOUT,
    issuer: config.AUTH_JWT_ISSUER,
    audience: config.AUTH_JWT_AUDIENCE,
    algorithms: config.AUTH_JWT_ALGORITHMS,
    clockSkewMs: config.AUTH_CLOCK_SKEW,
    defaultRooms: config.AUTH_DEFAULT_ROOMS,
  });
  if (credentials === undefined) {
    log.warn(
      "running without authentication: no AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY(_FILE) or AUTH_JWKS_URL; anyone who reaches the port may join and publish",
    );
  }
  if (config.ALLOWED_ORIGINS === undefined) {
    log.warn("ALLOWED_ORIGINS is unset: WebSocket upgrades from any browser origin are accepted");
  }

  // RATE_LIMIT_*: refusals and the local fallback are counted (the limiter
  // also logs the fallback).
  const rateLimits = await createRateLimits(config, log, {
    onFallback: () => metrics?.rateLimitFallback(true),
    onRestore: () => metrics?.rateLimitFallback(false),
  });
  if (metrics !== undefined) rateLimits.onRefused = (limit) => metrics.rateLimited(limit);

  const router = new Router(
    store,
    broker,
    {
      gapWaitMs: config.GAP_WAIT,
      headAnnounceAfterMs: config.HEAD_ANNOUNCE_AFTER,
      replayLimit: config.SESSION_REPLAY_LIMIT,
      maxRoomsPerMember: config.MAX_ROOMS_PER_MEMBER,
      sessionTtlMs: config.SESSION_TTL,
      ackFlushIntervalMs: config.ACK_FLUSH_INTERVAL,
      badFrameLimit: config.BAD_FRAME_LIMIT,
      badFrameWindowMs: config.BAD_FRAME_WINDOW,
      telemetry,
      presence: { ...defaultPresenceOptions, heartbeatMs: config.PRESENCE_HEARTBEAT },
    },
    log,
    credentials,
    rateLimits,
  );
  await router.start();
  const housekeeping = new Housekeeping(
    store,
    { maxPerRoom: config.HISTORY_SIZE, maxAgeMs: config.HISTORY_TTL },
    config.TRIM_INTERVAL,
    log,
  );
  const gateway = new Gateway(
    router,
    () => {
      const checks = { store: store.healthy, broker: broker.connected && guardedBroker.healthy };
      return { ready: checks.store && checks.broker, checks };
    },
    {
      port: config.PORT,
      host: config.HOST,
      wsPath: config.WS_PATH,
      demoPage: config.DEMO_PAGE,
      allowedOrigins: config.ALLOWED_ORIGINS,
      maxMessageBytes: config.MAX_MESSAGE_BYTES,
      maxBufferedBytes: config.MAX_BUFFERED_BYTES,
      slowConsumerGraceMs: config.SLOW_CONSUMER_GRACE,
      pingIntervalMs: config.PING_INTERVAL,
      pongTimeoutMs: config.PONG_TIMEOUT,
      handshakeTimeoutMs: config.HANDSHAKE_TIMEOUT,
      firstFrameTimeoutMs: config.FIRST_FRAME_TIMEOUT,
      perMessageDeflate: config.PERMESSAGE_DEFLATE,
      limits: {
        maxConnections: config.MAX_CONNECTIONS,
        maxPerUser: config.MAX_CONNECTIONS_PER_USER,
        maxPerIp: config.MAX_CONNECTIONS_PER_IP,
        trustProxy: config.TRUST_PROXY,
      },
      handshakeLimit: (ip) => rateLimits.handshake(ip),
      shedding: {
        maxPending: config.HANDSHAKE_MAX_PENDING,
        maxLagMs: config.HANDSHAKE_MAX_LAG,
        retryAfterMs: config.HANDSHAKE_RETRY_AFTER,
      },
      tls:
        config.TLS_CERT_FILE === undefined || config.TLS_KEY_FILE === undefined
          ? undefined
          : { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE },
      api: serverApi(router, config, log),
    },
    log,
    credentials,
    telemetry,
  );
  const metricsPort = await telemetry.listen();
  const port = await gateway.listen();
  log.info(
    {
      port,
      path: config.WS_PATH,
      mode,
      store: config.STORE,
      broker: config.BROKER,
      ...(config.METRICS_ENABLED && { metricsPath: config.METRICS_PATH }),
      ...(metricsPort !== undefined && { metricsPort }),
      tracing: tracingOn,
    },
    "listening",
  );

  let stopping = false;
  const stop = async (signal: StopSignal): Promise<void> => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting without finishing the drain");
      process.exit(SIGNAL_EXIT_CODES[signal]);
    }
    stopping = true;
    const started = Date.now();
    log.info({ signal, drainPeriodMs: config.DRAIN_PERIOD }, "draining");
    setTimeout(() => {
      log.error({ elapsedMs: Date.now() - started }, "drain did not finish in time; exiting");
      process.exit(1);
    }, config.DRAIN_PERIOD + SHUTDOWN_GRACE_MS).unref();
    await gateway.drain(config.DRAIN_PERIOD);
    housekeeping.stop();
    // Every socket is closed and detached (each detach saves its session);
    // save whatever acks are still pending so clients resume on another node
    // exactly where they were.
    try {
      await router.flushAll();
    } catch (err) {
      log.error({ err }, "drain: sessions could not all be saved");
    }
    await router.close();
    await rateLimits.close();
    await gateway.close();
    await broker.close();
    await store.close();
    await telemetry.close();
    log.info({ elapsedMs: Date.now() - started }, "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => gateway.reloadCertificates());
}

/** The server API's request handler (it answers 404 on its paths while API_KEY is unset). */
function serverApi(router: Router, config: Config, log: Logger) {
  const api = new ServerApi(
    router,
    { keys: config.API_KEY ?? [], maxBodyBytes: config.MAX_MESSAGE_BYTES },
    log,
  );
  if (api.enabled) log.info({ keys: config.API_KEY?.length }, "server API on at /api/v1");
  return (req: IncomingMessage, res: ServerResponse) => api.serve(req, res);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `roomcast: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
