// One generator connection to Centrifugo, speaking its JSON protocol (client
// protocol v2): connect, subscribe to the member's room as a channel, publish
// into it. Centrifugo may put several newline-separated replies and pushes in
// one frame, and sends an empty `{}` ping that wants an empty `{}` pong. Like
// the other clients, the receive path classifies lines by their first bytes
// and reads the stamp without parsing the JSON.
import { WebSocket, type RawData } from "ws";
import type { BenchClient, ClientHooks, ConnectOptions } from "./clients.js";
import { stampInFrame } from "./payload.js";

const NEWLINE = 0x0a;
const P = 0x70; // {"push"
const I = 0x69; // {"id"
const CLOSE_BRACE = 0x7d; // {}
const ERROR = Buffer.from('"error"');

const CONNECT_ID = 1;
const SUBSCRIBE_ID = 2;

interface Reply {
  id?: number;
  error?: { code?: number; message?: string };
  connect?: { pong?: boolean };
}

export function connectCentrifugo(opts: ConnectOptions, hooks: ClientHooks): Promise<BenchClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${opts.url}/connection/websocket`, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: opts.timeoutMs,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    });
    const channel = JSON.stringify(opts.room);
    let nextId = SUBSCRIBE_ID + 1;
    let joined = false;
    let pong = false;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error("subscribe timed out"));
    }, opts.timeoutMs);
    const fail = (why: string): void => {
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(why));
    };
    const client: BenchClient = {
      publish: (content) =>
        ws.send(
          `{"id":${nextId++},"publish":{"channel":${channel},"data":{"content":"${content}"}}}`,
        ),
      backlogged: (limit) => ws.bufferedAmount > limit,
      close: () => ws.terminate(),
    };
    const onLine = (line: Buffer): void => {
      const kind = line[2];
      if (kind === P) hooks.delivered(stampInFrame(line));
      else if (kind === I) {
        if (line.indexOf(ERROR) >= 0) hooks.error();
        else hooks.ack();
      } else if (line[1] === CLOSE_BRACE && pong) ws.send("{}");
    };
    const onHandshakeLine = (text: string): void => {
      let reply: Reply;
      try {
        reply = JSON.parse(text) as Reply;
      } catch {
        return;
      }
      if (reply.error !== undefined) {
        fail(`centrifugo refused: ${text.slice(0, 200)}`);
      } else if (reply.id === CONNECT_ID) {
        pong = reply.connect?.pong === true;
        ws.send(`{"id":${SUBSCRIBE_ID},"subscribe":{"channel":${channel}}}`);
      } else if (reply.id === SUBSCRIBE_ID) {
        joined = true;
        clearTimeout(timer);
        resolve(client);
      } else if (text === "{}" && pong) {
        ws.send("{}");
      }
    };
    ws.on("open", () => ws.send(`{"id":${CONNECT_ID},"connect":{}}`));
    ws.on("message", (data: RawData) => {
      const frame = data as Buffer;
      if (!joined) {
        for (const line of frame.toString().split("\n")) if (line !== "") onHandshakeLine(line);
        return;
      }
      let start = 0;
      for (;;) {
        const end = frame.indexOf(NEWLINE, start);
        if (end < 0) {
          if (start < frame.length) onLine(start === 0 ? frame : frame.subarray(start));
          return;
        }
        if (end > start) onLine(frame.subarray(start, end));
        start = end + 1;
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
      else reject(new Error("closed before subscribed"));
    });
  });
}
