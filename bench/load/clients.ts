// One connection of the load generator, speaking either the JSON envelopes that
// Roomcast and the raw ws peer share, or Socket.IO. The receive path stays cheap
// (no JSON parse for ws frames) so the generator is not what saturates first.
import { WebSocket, type RawData } from "ws";
import { io, type ManagerOptions, type SocketOptions } from "socket.io-client";
import { connectCentrifugo } from "./centrifugo-client.js";
import type { ClientKind } from "./messages.js";
import { stampInContent, stampInFrame } from "./payload.js";

export interface ClientHooks {
  delivered(stampNs: number): void;
  ack(): void;
  error(): void;
  closed(): void;
}

export interface BenchClient {
  publish(content: string): void;
  /** True while the client's own send buffer is too full to publish more. */
  backlogged(limitBytes: number): boolean;
  close(): void;
}

export interface ConnectOptions {
  url: string;
  room: string;
  localAddress: string | undefined;
  timeoutMs: number;
}

const M = 0x6d; // {"message"
const A = 0x61; // {"ack"
const E = 0x65; // {"error"

function connectJson(opts: ConnectOptions, hooks: ClientHooks): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${opts.url}/ws`, "roomcast.v1.json", {
      perMessageDeflate: false,
      // The generator only counts frames and reads a stamp: UTF-8 checks are the server's job.
      skipUTF8Validation: true,
      handshakeTimeout: opts.timeoutMs,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    });
    const prefix = `{"message":{"target":${JSON.stringify(opts.room)},"content":"`;
    let joined = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("join timed out"));
    }, opts.timeoutMs);
    const client: BenchClient = {
      publish: (content) => ws.send(`${prefix}${content}"}}`),
      backlogged: (limit) => ws.bufferedAmount > limit,
      close: () => ws.terminate(),
    };
    ws.on("open", () => ws.send(JSON.stringify({ join_room: { room_id: opts.room } })));
    ws.on("message", (data: RawData) => {
      const frame = data as Buffer;
      if (joined) {
        const kind = frame[2];
        if (kind === M) hooks.delivered(stampInFrame(frame));
        else if (kind === A) hooks.ack();
        else if (kind === E) hooks.error();
        return;
      }
      const text = frame.toString();
      if (text.includes('"room_joined"')) {
        joined = true;
        clearTimeout(timer);
        resolve(client);
      } else if (text.startsWith('{"error"')) {
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(`join refused: ${text.slice(0, 200)}`));
      }
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      if (!joined) reject(err);
      else hooks.error();
    });
    ws.on("close", () => {
      clearTimeout(timer);
      if (joined) hooks.closed();
      else reject(new Error("closed before room_joined"));
    });
  });
}

interface SocketIoMessage {
  content?: string;
}

function connectSocketIo(opts: ConnectOptions, hooks: ClientHooks): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    // localAddress is passed through to ws by engine.io-client but is not in its types.
    const options: Partial<ManagerOptions & SocketOptions> & { localAddress?: string } = {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: opts.timeoutMs,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    };
    const socket = io(opts.url, options);
    let joined = false;
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error("join timed out"));
    }, opts.timeoutMs);
    const onAck = (): void => hooks.ack();
    const client: BenchClient = {
      publish: (content) => {
        socket.emit("message", { target: opts.room, content }, onAck);
      },
      // Socket.IO queues packets in the engine until the transport drains.
      backlogged: (limit) => socket.io.engine.writeBuffer.length * 256 > limit,
      close: () => socket.disconnect(),
    };
    socket.on("connect", () => {
      socket.emit("join", opts.room, () => {
        joined = true;
        clearTimeout(timer);
        resolve(client);
      });
    });
    socket.on("message", (msg: SocketIoMessage) => {
      hooks.delivered(msg.content === undefined ? Number.NaN : stampInContent(msg.content));
    });
    socket.on("connect_error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("disconnect", () => {
      if (joined) hooks.closed();
    });
  });
}

export function connectClient(
  kind: ClientKind,
  opts: ConnectOptions,
  hooks: ClientHooks,
): Promise<BenchClient> {
  if (kind === "centrifugo-json") return connectCentrifugo(opts, hooks);
  return kind === "socketio" ? connectSocketIo(opts, hooks) : connectJson(opts, hooks);
}
