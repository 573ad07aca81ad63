// The best write strategy a plain Node `ws` server can have, to tell how much
// of Roomcast's lead is the write strategy and how much is everything else:
// each envelope is framed once (ws's own framer) and the same frame bytes are
// queued for every member; each socket's queue leaves in one corked write
// (one writev) after the event-loop turn. Everything else is the raw-ws peer.
// Pings and close frames that `ws` writes itself are written synchronously and
// whole, so they never interleave mid-frame with ours.
import type { Socket } from "node:net";
import * as wsModule from "ws";
import type { WebSocket } from "ws";
import { serveJsonRooms } from "./json-rooms.js";

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}

/** ws's own framer (`Sender.frame`, public in ws 8 but absent from @types/ws). */
const { Sender } = wsModule as unknown as {
  Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] };
};

interface Queue {
  readonly ws: WebSocket;
  readonly socket: Socket;
  frames: Buffer[];
  scheduled: boolean;
}

const queues = new WeakMap<WebSocket, Queue>();
const due: Queue[] = [];
let flushScheduled = false;

/** A server frame (FIN, text, unmasked) around the envelope, in one Buffer. */
function frameOf(envelope: Buffer): Buffer {
  const parts = Sender.frame(envelope, {
    fin: true,
    rsv1: false,
    opcode: 0x01,
    mask: false,
    readOnly: true,
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function flushAll(): void {
  flushScheduled = false;
  for (const q of due.splice(0)) {
    q.scheduled = false;
    const frames = q.frames;
    q.frames = [];
    // Nothing may follow a close frame that ws has already written.
    if (q.ws.readyState !== q.ws.OPEN || q.socket.destroyed || q.socket.writableEnded) continue;
    if (frames.length === 1) {
      q.socket.write(frames[0]!);
      continue;
    }
    q.socket.cork();
    for (const f of frames) q.socket.write(f);
    q.socket.uncork();
  }
}

function enqueue(ws: WebSocket, frame: Buffer): void {
  const q = queues.get(ws);
  if (q === undefined) return;
  q.frames.push(frame);
  if (q.scheduled) return;
  q.scheduled = true;
  due.push(q);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushAll);
  }
}

serveJsonRooms("corked-ws", {
  opened: (ws, req) => {
    queues.set(ws, { ws, socket: req.socket, frames: [], scheduled: false });
  },
  send: (ws, envelope) => enqueue(ws, frameOf(envelope)),
  broadcast: (members, envelope) => {
    const frame = frameOf(envelope);
    for (const member of members) enqueue(member, frame);
  },
  closed: (ws) => queues.delete(ws),
});
