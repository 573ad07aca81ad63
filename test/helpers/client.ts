// A real `ws` client that records every frame the server sends, decoded to
// protojson objects for either subprotocol, so tests assert on data and codes.
import { toJson } from "@bufbuild/protobuf";
import WebSocket from "ws";
import { protoCodec } from "../../src/protocol/codec.js";
import { EnvelopeSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";

export type Frame = Record<string, Record<string, unknown>>;

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

export interface ConnectOptions {
  readonly protocols?: string | string[];
  readonly headers?: Record<string, string>;
  readonly session?: string;
  /** false: never answer pings (to test the heartbeat). */
  readonly autoPong?: boolean;
  /** CA certificate(s) to trust for wss:// (a test's self-signed certificate). */
  readonly ca?: string;
}

export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  readonly closed: Promise<Closed>;
  #cursor = new Map<string, number>();
  #waiters: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        for (const env of protoCodec.decode(data)) {
          this.frames.push(
            toJson(EnvelopeSchema, env, {
              useProtoFieldName: true,
              alwaysEmitImplicit: true,
            }) as Frame,
          );
        }
      } else {
        this.frames.push(JSON.parse(data.toString("utf8")) as Frame);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.once("close", (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const w of this.#waiters.splice(0)) w();
      }),
    );
    ws.on("error", () => undefined);
  }

  static connect(url: string, opts: ConnectOptions = {}): Promise<TestClient> {
    const target =
      opts.session === undefined
        ? url
        : `${url}${url.includes("?") ? "&" : "?"}session=${encodeURIComponent(opts.session)}`;
    const ws = new WebSocket(target, opts.protocols ?? [], {
      headers: opts.headers ?? {},
      autoPong: opts.autoPong ?? true,
      ...(opts.ca !== undefined && { ca: opts.ca }),
    });
    const client = new TestClient(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(client));
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
  }

  /** Connects and returns the `session` frame too. */
  static async open(
    url: string,
    opts: ConnectOptions = {},
  ): Promise<[TestClient, Record<string, unknown>]> {
    const client = await TestClient.connect(url, opts);
    const session = await client.next("session");
    return [client, session];
  }

  send(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The next frame of `kind` not yet taken (frames of other kinds stay available). */
  async next(
    kind: string,
    timeoutMs = 5000,
    where?: (v: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let i = this.#cursor.get(kind) ?? 0;
      for (; i < this.frames.length; i++) {
        const value = this.frames[i]![kind];
        if (value !== undefined && (where === undefined || where(value))) {
          this.#cursor.set(kind, i + 1);
          return value;
        }
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(
          `no "${kind}" frame within ${timeoutMs} ms; ${this.all(kind).length} received, the last ` +
            `offsets ${JSON.stringify(
              this.all(kind)
                .slice(-5)
                .map((v) => v["offset"]),
            )}; last frame ` +
            JSON.stringify(this.frames.at(-1)).slice(0, 300),
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Every frame of `kind` received so far. */
  all(kind: string): Record<string, unknown>[] {
    return this.frames.flatMap((f) => (f[kind] === undefined ? [] : [f[kind]]));
  }

  close(): void {
    this.ws.close();
  }
}
