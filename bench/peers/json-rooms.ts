// What the plain `ws` peers share: rooms as sets of sockets, each message
// serialised once into one Buffer, and the same JSON envelopes as Roomcast
// (join_room → room_joined, message → message to all members incl. the sender
// + ack to the sender), with no validation, persistence or limits, so the
// generator's code is shared. How the bytes reach the sockets is the only thing
// the peers differ in: a Writer.
import type { IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import { createHttpServer, listen } from "./http-base.js";

/** How a peer puts envelopes on the wire. */
export interface Writer {
  /** A socket was accepted; `req.socket` is its TCP socket. */
  opened(ws: WebSocket, req: IncomingMessage): void;
  /** One envelope to one socket. */
  send(ws: WebSocket, envelope: Buffer): void;
  /** The same envelope to every member of a room. */
  broadcast(members: ReadonlySet<WebSocket>, envelope: Buffer): void;
  closed(ws: WebSocket): void;
}

interface Inbound {
  join_room?: { room_id?: string };
  message?: { target?: string; content?: string; message_id?: string };
}

interface RoomState {
  members: Set<WebSocket>;
  offset: number;
}

const rooms = new Map<string, RoomState>();
const epoch = randomUUID();
let nextMessage = 0;

function roomOf(id: string): RoomState {
  let room = rooms.get(id);
  if (room === undefined) {
    room = { members: new Set(), offset: 0 };
    rooms.set(id, room);
  }
  return room;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

function onFrame(
  writer: Writer,
  ws: WebSocket,
  senderId: string,
  joined: Set<RoomState>,
  data: RawData,
): void {
  let frame: Inbound;
  try {
    // Text frames arrive as one Buffer (binaryType nodebuffer, no fragments from our clients).
    frame = JSON.parse((data as Buffer).toString()) as Inbound;
  } catch {
    return;
  }
  const join = frame.join_room?.room_id;
  if (join !== undefined) {
    const room = roomOf(join);
    room.members.add(ws);
    joined.add(room);
    const reply = { room_id: join, epoch, offset: String(room.offset), recovered: false };
    writer.send(ws, json({ room_joined: reply }));
    return;
  }
  const msg = frame.message;
  if (msg?.target === undefined) return;
  const room = rooms.get(msg.target);
  if (room === undefined || !room.members.has(ws)) return;
  room.offset++;
  const messageId = msg.message_id ?? `m${++nextMessage}`;
  const offset = String(room.offset);
  const out = json({
    message: {
      target: msg.target,
      content: msg.content ?? "",
      message_id: messageId,
      sent_at: new Date().toISOString(),
      sender_id: senderId,
      offset,
    },
  });
  writer.broadcast(room.members, out);
  writer.send(
    ws,
    json({ ack: { room_id: msg.target, message_id: messageId, offset, duplicate: false } }),
  );
}

/** Starts the peer on PORT and prints its "listening" line. */
export function serveJsonRooms(name: string, writer: Writer): void {
  const server = createHttpServer();
  const wss = new WebSocketServer({
    server,
    path: "/ws",
    perMessageDeflate: false,
    clientTracking: false,
  });
  wss.on("connection", (ws, req) => {
    const senderId = randomUUID();
    const joined = new Set<RoomState>();
    writer.opened(ws, req);
    writer.send(ws, json({ session: { session_id: senderId } }));
    ws.on("message", (data) => onFrame(writer, ws, senderId, joined, data));
    ws.on("close", () => {
      for (const room of joined) room.members.delete(ws);
      writer.closed(ws);
    });
    ws.on("error", () => ws.terminate());
  });
  listen(server, name);
}
