// The composition root: it reads the configuration, opens the store and the
// broker (named in adapters.ts, the one place that knows concrete adapters),
// and starts the gateway.
import type { Config } from "./config/schema.js";
import { ConfigError, loadConfig } from "./config/load.js";
import { GuardedStore } from "./adapters/store/guarded-store.js";
import { Housekeeping } from "./core/housekeeping.js";
import { Router } from "./core/router.js";
import { JwtCredentials } from "./gateway/auth.js";
import { Gateway } from "./gateway/gateway.js";
import { createLogger } from "./observability/logging.js";
import type { Broker } from "./ports/broker.js";
import type { Store } from "./ports/store.js";
import { createBroker, createStore } from "./adapters.js";

const DRAIN_WINDOW_MS = 5000;

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
  const log = createLogger(config.LOG_LEVEL);

  const store = new GuardedStore(await createStore(config, log), {
    timeoutMs: config.STORE_TIMEOUT,
  });
  await store.open();
  const broker = await createBroker(config, log);
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

  const router = new Router(
    store,
    broker,
    {
      gapWaitMs: config.GAP_WAIT,
      replayLimit: config.SESSION_REPLAY_LIMIT,
      maxRoomsPerMember: config.MAX_ROOMS_PER_MEMBER,
      sessionTtlMs: config.SESSION_TTL,
      ackFlushIntervalMs: config.ACK_FLUSH_INTERVAL,
      badFrameLimit: config.BAD_FRAME_LIMIT,
      badFrameWindowMs: config.BAD_FRAME_WINDOW,
    },
    log,
    credentials,
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
      const checks = { store: store.healthy, broker: broker.connected };
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
      limits: {
        maxConnections: config.MAX_CONNECTIONS,
        maxPerUser: config.MAX_CONNECTIONS_PER_USER,
        maxPerIp: config.MAX_CONNECTIONS_PER_IP,
        trustProxy: config.TRUST_PROXY,
      },
      tls:
        config.TLS_CERT_FILE === undefined || config.TLS_KEY_FILE === undefined
          ? undefined
          : { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE },
    },
    log,
    credentials,
  );
  const port = await gateway.listen();
  log.info(
    { port, path: config.WS_PATH, mode, store: config.STORE, broker: config.BROKER },
    "listening",
  );

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "draining");
    await gateway.drain(DRAIN_WINDOW_MS);
    housekeeping.stop();
    await router.close();
    await gateway.close();
    await broker.close();
    await store.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => gateway.reloadCertificates());
}

main().catch((err: unknown) => {
  process.stderr.write(
    `roomcast: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
