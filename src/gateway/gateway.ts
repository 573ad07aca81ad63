// The gateway: node:http plus `ws` in noServer mode. Everything about a caller
// (path, origin, subprotocol, session) is decided before 101 Switching
// Protocols; a refusal is an HTTP status. It also serves /healthz and /readyz.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { codecFor, negotiate, supportedSubprotocols, type Codec } from "../protocol/codec.js";
import { CloseCode } from "../protocol/errors.js";
import { StoreUnavailableError } from "../core/guarded-store.js";
import type { Router, SessionGrant } from "../core/router.js";
import type { Logger } from "../observability/logging.js";
import { Heartbeat, type Beating } from "./heartbeat.js";
import { rejectUpgrade } from "./http-reject.js";
import { WsOutlet } from "./ws-outlet.js";

export interface GatewayOptions {
  readonly port: number;
  readonly host: string;
  readonly wsPath: string;
  /** Exact scheme://host:port origins; undefined allows any. */
  readonly allowedOrigins: readonly string[] | undefined;
  readonly maxMessageBytes: number;
  readonly maxBufferedBytes: number;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly firstFrameTimeoutMs: number;
}

/** What /readyz reports: every dependency connected and not draining. */
export type ReadinessCheck = () => { ready: boolean; checks: Record<string, boolean> };

interface Connection {
  readonly ws: WebSocket;
  readonly outlet: WsOutlet;
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
  #draining = false;

  constructor(router: Router, readiness: ReadinessCheck, opts: GatewayOptions, log: Logger) {
    this.#router = router;
    this.#opts = opts;
    this.#log = log;
    this.#readiness = readiness;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxMessageBytes,
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (offered) => negotiate([...offered]) ?? false,
    });
    this.#heartbeat = new Heartbeat(opts);
    this.#http = createServer((req, res) => this.#request(req, res));
    this.#http.headersTimeout = opts.handshakeTimeoutMs;
    this.#http.requestTimeout = opts.handshakeTimeoutMs;
    this.#http.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#upgrade(req, socket, head);
    });
  }

  get connections(): number {
    return this.#connections.size;
  }

  get draining(): boolean {
    return this.#draining;
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
    const path = (req.url ?? "/").split("?")[0];
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
    json(res, 404, { error: "not found" });
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", (err) => this.#log.debug({ err }, "socket error during upgrade"));
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== this.#opts.wsPath) return rejectUpgrade(socket, 404);
    if (this.#draining) return rejectUpgrade(socket, 503, "draining", { "Retry-After": "1" });

    const origin = req.headers.origin;
    // Browsers always send Origin; other clients may omit it and could forge it anyway.
    if (
      this.#opts.allowedOrigins !== undefined &&
      origin !== undefined &&
      !this.#opts.allowedOrigins.includes(origin)
    ) {
      return rejectUpgrade(socket, 403, "origin not allowed");
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
        `unsupported subprotocol; supported: ${supportedSubprotocols.join(", ")}\n`,
      );
    }

    let grant: SessionGrant;
    try {
      grant = await this.#router.openSession(url.searchParams.get("session") ?? undefined, "");
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        this.#log.warn({ err }, "refusing upgrade: store unavailable");
        return rejectUpgrade(socket, 503, "store unavailable", { "Retry-After": "1" });
      }
      this.#log.error({ err }, "refusing upgrade: internal error");
      return rejectUpgrade(socket, 500);
    }
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#connected(ws, socket, codecFor(subprotocol), grant),
    );
  }

  #connected(ws: WebSocket, raw: Duplex, codec: Codec, grant: SessionGrant): void {
    const outlet = new WsOutlet(ws, raw, codec, this.#opts.maxBufferedBytes, () =>
      this.#log.info({ member: grant.memberId }, "closing slow consumer"),
    );
    const conn: Connection = { ws, outlet };
    this.#connections.add(conn);
    const member = this.#router.attach(grant, outlet);
    const now = Date.now();
    const beat: Beating = {
      pingSentAt: 0,
      lastPingAt: now,
      openedAt: now,
      sawFrame: false,
      ping: () => ws.ping(),
      close: (code) => outlet.close(code),
    };
    this.#heartbeat.add(beat);
    ws.on("pong", () => (beat.pingSentAt = 0));
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      beat.sawFrame = true;
      if (isBinary !== codec.binary) {
        outlet.close(CloseCode.UnsupportedData);
        return;
      }
      member.receive(data);
    });
    // ws closes the socket itself on protocol errors (1009 too big, 1007 bad UTF-8).
    ws.on("error", (err) => this.#log.debug({ err, member: member.id }, "websocket error"));
    ws.on("close", () => {
      this.#heartbeat.delete(beat);
      this.#connections.delete(conn);
      this.#router.detach(member);
    });
  }

  /**
   * Draining: readiness turns false, new upgrades get 503, and open sockets
   * are closed with 1012 (reconnect elsewhere) spread over `windowMs`.
   */
  async drain(windowMs: number): Promise<void> {
    this.#draining = true;
    const conns = [...this.#connections];
    const step = conns.length > 0 ? windowMs / conns.length : 0;
    for (let i = 0; i < conns.length; i++) {
      const conn = conns[i]!;
      if (step >= 1 && i > 0 && i % 100 === 0) await new Promise((r) => setTimeout(r, step * 100));
      conn.outlet.close(CloseCode.ServiceRestart);
    }
  }

  async close(): Promise<void> {
    this.#heartbeat.stop();
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
