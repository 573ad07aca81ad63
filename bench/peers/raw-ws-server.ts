// The ceiling for a Node ws server: rooms as sets of sockets, each message
// serialised once into one Buffer and sent as-is to every member of the room.
// It speaks the same JSON envelopes as Roomcast (join_room → room_joined,
// message → message to all members incl. the sender + ack to the sender), with no
// validation, persistence or limits, so the generator's code is shared.
import { randomUUID } from "node:crypto";
import { WebSocketServer, type WebSocket, type RawData } from "ws";
import { createHttpServer, listen } from "./http-base.js";

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

function onFrame(ws: WebSocket, senderId: string, joined: Set<RoomState>, data: RawData): void {
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
    ws.send(JSON.stringify({ room_joined: reply }));
    return;
  }
  const msg = frame.message;
  if (msg?.target === undefined) return;
  const room = rooms.get(msg.target);
  if (room === undefined || !room.members.has(ws)) return;
  room.offset++;
  const messageId = msg.message_id ?? `m${++nextMessage}`;
  const offset = String(room.offset);
  const out = Buffer.from(
    JSON.stringify({
      message: {
        target: msg.target,
        content: msg.content ?? "",
        message_id: messageId,
        sent_at: new Date().toISOString(),
        sender_id: senderId,
        offset,
      },
    }),
  );
  for (const member of room.members) member.send(out, { binary: false });
  ws.send(
    JSON.stringify({
      ack: { room_id: msg.target, message_id: messageId, offset, duplicate: false },
    }),
  );
}

const server = createHttpServer();
const wss = new WebSocketServer({
  server,
  path: "/ws",
  perMessageDeflate: false,
  clientTracking: false,
});
wss.on("connection", (ws) => {
  const senderId = randomUUID();
  const joined = new Set<RoomState>();
  ws.send(JSON.stringify({ session: { session_id: senderId } }));
  ws.on("message", (data) => onFrame(ws, senderId, joined, data));
  ws.on("close", () => {
    for (const room of joined) room.members.delete(ws);
  });
  ws.on("error", () => ws.terminate());
});
listen(server, "raw-ws");
