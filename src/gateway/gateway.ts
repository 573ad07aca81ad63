// The gateway: node:http plus `ws` in noServer mode. Everything about a caller
// (path, origin, subprotocol, session) is decided before 101 Switching
// Protocols; a refusal is an HTTP status. It also serves /healthz and /readyz.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { codecFor, negotiate, supportedSubprotocols, type Codec } from "../protocol/codec.js";
import { CloseCode } from "../protocol/errors.js";
import { StoreError } from "../ports/store-error.js";
import { CredentialError, type Credentials, type Identity } from "../core/access.js";
import { HandshakeShedding, type SheddingOptions } from "./shedding.js";
import { Admission, isRefusal, type AdmissionLimits, type Slot } from "./admission.js";
import { CertificateReloader, readPair, type TlsFiles } from "./tls.js";
import type { Router, SessionGrant } from "../core/router.js";
import type { Logger } from "../observability/logging.js";
import type { Member } from "../core/member.js";
import { noGatewayTelemetry, type GatewayTelemetry } from "../ports/telemetry.js";
import { Heartbeat, monotonicMs, type Beating } from "./heartbeat.js";
import { spreadCloseTimes } from "./drain-schedule.js";
import { rejectUpgrade, upgradeStatus } from "./http-reject.js";
import { WsOutlet, type OutletLimits } from "./ws-outlet.js";
import { DemoPage } from "./demo-page.js";

export interface GatewayOptions {
  readonly port: number;
  readonly host: string;
  readonly wsPath: string;
  /** Exact scheme://host:port origins; undefined allows any. */
  readonly allowedOrigins: readonly string[] | undefined;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly slowConsumerGraceMs: number;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly firstFrameTimeoutMs: number;
  /** PERMESSAGE_DEFLATE: offer compression, with the limits of SAFE_DEFLATE. */
  readonly perMessageDeflate?: boolean | undefined;
  readonly limits: AdmissionLimits;
  /**
   * RATE_LIMIT_HANDSHAKES: 0 when an upgrade from this address may go
   * ahead, else milliseconds until one would (HTTP 429, before anything else
   * is spent on it). Omitted: no limit.
   */
  readonly handshakeLimit?: ((ip: string) => Promise<number>) | undefined;
  /** Handshake shedding under a reconnect storm (shedding.ts); omitted: none. */
  readonly shedding?: SheddingOptions | undefined;
  /** Native HTTPS/WSS when set. */
  readonly tls?: TlsFiles | undefined;
  /** Answers /api/* (the server API, api.ts); false for other paths. */
  readonly api?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  /** Serve the demo chat page at GET / (DEMO_PAGE). */
  readonly demoPage?: boolean;
}

/** What /readyz reports: every dependency connected and not draining. */
export type ReadinessCheck = () => { ready: boolean; checks: Record<string, boolean> };

/** What connections need from their gateway, shared by all of them. */
interface ConnectionHooks {
  /** Every open connection; the heartbeat walks it too. */
  readonly connections: Set<Connection>;
  readonly router: Router;
  readonly log: Logger;
  readonly telemetry: GatewayTelemetry;
}

const kConnection = Symbol("roomcast.connection");
type ConnectedSocket = WebSocket & { [kConnection]?: Connection };

/** One upgraded socket: its outlet, member and heartbeat state. */
class Connection implements Beating {
  readonly ws: WebSocket;
  readonly outlet: WsOutlet;
  readonly member: Member;
  readonly hooks: ConnectionHooks;
  pingSentAt = 0;
  /** Set by Heartbeat.add (a random point of the first interval). */
  lastPingAt = 0;
  /** Its place under the connection limits, given back on close. */
  slot: Slot | undefined;
  readonly openedAt: number;
  sawFrame = false;

  constructor(ws: WebSocket, outlet: WsOutlet, member: Member, hooks: ConnectionHooks) {
    this.ws = ws;
    this.outlet = outlet;
    this.member = member;
    this.hooks = hooks;
    this.openedAt = monotonicMs();
  }

  get closed(): boolean {
    return this.outlet.closed;
  }

  ping(): void {
    this.ws.ping();
  }

  close(code: CloseCode): void {
    this.outlet.close(code);
  }
}

function ignoreError(): void {}

function onPong(this: ConnectedSocket): void {
  const conn = this[kConnection];
  if (conn !== undefined) conn.pingSentAt = 0;
}

function onMessage(this: ConnectedSocket, data: Buffer, isBinary: boolean): void {
  const conn = this[kConnection];
  if (conn === undefined) return;
  conn.sawFrame = true;
  if (isBinary !== conn.outlet.codec.binary) {
    conn.outlet.close(CloseCode.UnsupportedData);
    return;
  }
  conn.member.receive(data);
}

// ws closes the socket itself on protocol errors (1009 too big, 1007 bad UTF-8).
function onError(this: ConnectedSocket, err: Error): void {
  this[kConnection]?.hooks.log.debug(
    { err, member: this[kConnection]?.member.id },
    "websocket error",
  );
}

function onClose(this: ConnectedSocket, code: number): void {
  const conn = this[kConnection];
  if (conn === undefined) return;
  conn.hooks.telemetry.disconnected(code);
  conn.hooks.connections.delete(conn);
  conn.slot?.release();
  conn.hooks.router.detach(conn.member);
}

export class Gateway {
  readonly #router: Router;
  readonly #opts: GatewayOptions;
  readonly #log: Logger;
  readonly #readiness: ReadinessCheck;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #heartbeat: Heartbeat;
  readonly #connections = new Set<Connection>();
  readonly #hooks: ConnectionHooks;
  /** One object per node, shared by every outlet. */
  readonly #outletLimits: OutletLimits;
  readonly #admission: Admission;
  readonly #shedding: HandshakeShedding | undefined;
  /** Undefined when authentication is off. */
  readonly #credentials: Credentials | undefined;
  readonly #certificates: CertificateReloader | undefined;
  readonly #telemetry: GatewayTelemetry;
  #draining = false;
  readonly #demo: DemoPage | undefined;

  constructor(
    router: Router,
    readiness: ReadinessCheck,
    opts: GatewayOptions,
    log: Logger,
    credentials?: Credentials,
    telemetry: GatewayTelemetry = noGatewayTelemetry,
  ) {
    this.#router = router;
    this.#credentials = credentials;
    this.#admission = new Admission(opts.limits);
    this.#shedding = opts.shedding === undefined ? undefined : new HandshakeShedding(opts.shedding);
    this.#telemetry = telemetry;
    this.#opts = opts;
    this.#log = log;
    this.#readiness = readiness;
    this.#outletLimits = {
      maxBufferedBytes: opts.maxBufferedBytes,
      slowConsumerGraceMs: opts.slowConsumerGraceMs,
      onSlowConsumer: (why) => telemetry.slowConsumer(why),
    };
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxMessageBytes,
      perMessageDeflate: opts.perMessageDeflate === true ? SAFE_DEFLATE : false,
      clientTracking: false,
      handleProtocols: (offered) => negotiate([...offered]) ?? false,
    });
    this.#heartbeat = new Heartbeat(opts, this.#connections);
    this.#demo = opts.demoPage === true ? new DemoPage(opts.wsPath) : undefined;
    this.#hooks = {
      connections: this.#connections,
      router,
      log,
      telemetry,
    };
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#request(req, res);
    const serverOptions = {
      // Node checks headersTimeout/requestTimeout only this often (30 s by
      // default), which would let a slowloris client outlive
      // HANDSHAKE_TIMEOUT several times over.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, opts.handshakeTimeoutMs / 4)),
      // An upgrade needs a dozen headers; 2000 (Node's default) only helps an attacker.
      maxHeadersCount: MAX_HEADERS,
    };
    if (opts.tls === undefined) {
      this.#http = createServer(serverOptions, handler);
    } else {
      const https = createTlsServer({ ...readPair(opts.tls), ...serverOptions }, handler);
      this.#certificates = new CertificateReloader(https, opts.tls, log);
      this.#http = https;
    }
    this.#http.headersTimeout = opts.handshakeTimeoutMs;
    this.#http.requestTimeout = opts.handshakeTimeoutMs;
    this.#http.maxHeadersCount = MAX_HEADERS;
    this.#http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#telemetry.upgrade(
        req,
        () => this.#upgrade(req, socket, head),
        () => upgradeStatus(socket),
      );
    });
  }

  /** Starts listening; resolves with the bound port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#http.once("error", reject);
      this.#http.listen(this.#opts.port, this.#opts.host, () => {
        this.#http.off("error", reject);
        resolve((this.#http.address() as AddressInfo).port);
      });
    });
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    if (this.#opts.api?.(req, res) === true) return;
    const path = (req.url ?? "/").split("?")[0];
    if (this.#telemetry.serve(req, res)) return;
    if (req.method === "GET" && path === "/healthz") {
      // Liveness: this process and its event loop answer. Never a dependency.
      json(res, 200, { status: "ok" });
      return;
    }
    if (req.method === "GET" && path === "/readyz") {
      const { ready, checks } = this.#readiness();
      const ok = ready && !this.#draining;
      json(res, ok ? 200 : 503, {
        status: ok ? "ready" : "not ready",
        draining: this.#draining,
        ...checks,
      });
      return;
    }
    if (this.#demo?.serve(req, res, path ?? "/") === true) return;
    json(res, 404, { error: { code: "not_found", message: "not found" } });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Until ws owns the socket, an error (a reset while the session is read)
    // must not crash the process; the upgrade then simply fails.
    socket.on("error", ignoreError);
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== this.#opts.wsPath) return rejectUpgrade(socket, 404, "not_found");
    if (this.#draining) {
      return rejectUpgrade(socket, 503, "unavailable", "draining", { "Retry-After": "1" });
    }
    const shedding = this.#shedding;
    if (shedding === undefined) return this.#handshake(req, socket, head, url);
    const shed = shedding.enter();
    if (shed !== undefined) {
      this.#telemetry.shed(shed.reason);
      return rejectUpgrade(socket, 503, "unavailable", "overloaded, retry later", {
        "Retry-After": String(shed.retryAfterS),
      });
    }
    try {
      await this.#handshake(req, socket, head, url);
    } finally {
      shedding.done();
    }
  }

  /** The checks of one upgrade that was not shed, then the upgrade itself. */
  async #handshake(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    if (this.#opts.handshakeLimit !== undefined) {
      const wait = await this.#opts.handshakeLimit(this.#admission.clientIp(req));
      if (wait > 0) {
        return rejectUpgrade(socket, 429, "rate_limited", "too many handshakes from this address", {
          "Retry-After": String(Math.ceil(wait / 1000)),
        });
      }
    }

    const origin = req.headers.origin;
    // Browsers always send Origin; other clients may omit it and could forge it anyway.
    if (
      this.#opts.allowedOrigins !== undefined &&
      origin !== undefined &&
      !this.#opts.allowedOrigins.includes(origin)
    ) {
      return rejectUpgrade(socket, 403, "forbidden", "origin not allowed");
    }

    const offered = (req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p.length > 0);
    const subprotocol = negotiate(offered);
    if (subprotocol === undefined) {
      return rejectUpgrade(
        socket,
        400,
        "bad_request",
        `unsupported subprotocol; supported: ${supportedSubprotocols.join(", ")}`,
      );
    }

    let identity: Identity | undefined;
    if (this.#credentials !== undefined) {
      const token = bearerToken(req) ?? url.searchParams.get("token") ?? undefined;
      if (token === undefined || token === "") {
        return rejectUpgrade(socket, 401, "unauthorized", "a token is required", BEARER);
      }
      try {
        identity = await this.#credentials.verify(token);
      } catch (err) {
        if (!(err instanceof CredentialError)) {
          this.#log.error({ err }, "refusing upgrade: token verification failed unexpectedly");
          return rejectUpgrade(socket, 500, "internal");
        }
        // The reason is jose's code, never the token.
        this.#log.debug({ reason: err.message }, "refusing upgrade: token not accepted");
        return rejectUpgrade(socket, 401, "unauthorized", "token not accepted", BEARER);
      }
    }

    const admitted = this.#admission.admit(identity?.userId ?? "", this.#admission.clientIp(req));
    if (isRefusal(admitted)) {
      const code = admitted.status === 503 ? "unavailable" : "rate_limited";
      return rejectUpgrade(socket, admitted.status, code, admitted.message, { "Retry-After": "1" });
    }

    let grant: SessionGrant;
    try {
      grant = await this.#router.openSession(
        url.searchParams.get("session") ?? undefined,
        identity,
      );
    } catch (err) {
      admitted.release();
      if (err instanceof StoreError) {
        this.#log.warn({ err }, "refusing upgrade: store unavailable");
        return rejectUpgrade(socket, 503, "unavailable", "store unavailable", {
          "Retry-After": "1",
        });
      }
      this.#log.error({ err }, "refusing upgrade: internal error");
      return rejectUpgrade(socket, 500, "internal");
    }
    if (socket.destroyed) {
      admitted.release();
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#connected(ws, socket, codecFor(subprotocol), grant, admitted),
    );
  }

  #connected(ws: WebSocket, raw: Duplex, codec: Codec, grant: SessionGrant, slot: Slot): void {
    raw.off("error", ignoreError); // ws has its own handler now
    const outlet = new WsOutlet(ws, raw, codec, this.#outletLimits, this.#log, grant.memberId);
    const member = this.#router.attach(grant, outlet);
    const conn = new Connection(ws, outlet, member, this.#hooks);
    conn.slot = slot;
    this.#connections.add(conn);
    this.#telemetry.connected();
    this.#heartbeat.add(conn);
    (ws as ConnectedSocket)[kConnection] = conn;
    // Shared listener functions (they find the connection through the
    // socket) rather than closures: per-connection memory is what limits how
    // many connections a node holds.
    ws.on("pong", onPong);
    ws.on("message", onMessage);
    ws.on("error", onError);
    ws.on("close", onClose);
  }

  /**
   * Draining (HTTP.md "Drain"): readiness turns false and new upgrades get
   * 503 at once; the open sockets are closed with 1012 (reconnect elsewhere)
   * one at a time, spread over `periodMs` (see drain-schedule.ts), the last
   * by its end. Resolves once every socket is gone, or `settleMs` after the
   * last close if a peer never answers it.
   */
  async drain(periodMs: number, settleMs = 2000): Promise<void> {
    this.#draining = true;
    const conns = [...this.#connections];
    const times = spreadCloseTimes(conns.length, periodMs);
    const start = Date.now();
    for (let i = 0; i < conns.length; i++) {
      if (!this.#connections.has(conns[i]!)) continue; // gone by itself: nothing to wait for
      const wait = times[i]! - (Date.now() - start);
      if (wait > 0) await sleep(wait);
      conns[i]!.close(CloseCode.ServiceRestart);
    }
    // Upgrades that were past the draining check when the drain began.
    for (const conn of this.#connections) conn.close(CloseCode.ServiceRestart);
    const deadline = Date.now() + settleMs;
    while (this.#connections.size > 0 && Date.now() < deadline) await sleep(20);
  }

  /** Re-reads the TLS certificate and key (SIGHUP); open sockets are kept. */
  reloadCertificates(): void {
    this.#certificates?.reload();
  }

  async close(): Promise<void> {
    this.#heartbeat.stop();
    this.#shedding?.close();
    this.#certificates?.close();
    for (const conn of this.#connections) conn.ws.terminate();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * permessage-deflate when enabled: no context takeover (no zlib state kept
 * between messages, so memory per socket stays flat and one message's text
 * never helps compress another's), bounded zlib concurrency, small frames
 * sent as they are. ws applies maxPayload to the inflated size.
 */
const SAFE_DEFLATE = {
  serverNoContextTakeover: true,
  clientNoContextTakeover: true,
  concurrencyLimit: 10,
  threshold: 1024,
} as const;

/** Headers one request may carry (server.maxHeadersCount); the rest are dropped. */
const MAX_HEADERS = 64;

const BEARER = { "WWW-Authenticate": "Bearer" };

/** The token of an `Authorization: Bearer` header (which wins over `?token=`). */
function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1] ?? "";
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
