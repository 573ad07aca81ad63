// Socket.IO 4 peer: rooms with io.to(room).emit (Socket.IO encodes a broadcast
// once and hands the same packet to every socket), websocket transport only, an
// ack callback in place of Roomcast's ack frame, and the same message fields.
// REDIS_URL switches on @socket.io/redis-adapter for the cluster scenario.
import { randomUUID } from "node:crypto";
import { Server } from "socket.io";
import { createHttpServer, listen } from "./http-base.js";

interface Publish {
  target?: string;
  content?: string;
  message_id?: string;
}

type Reply = (body: unknown) => void;

const offsets = new Map<string, number>();
const epoch = randomUUID();
let nextMessage = 0;

const http = createHttpServer();
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
});

const redisUrl = process.env["REDIS_URL"];
if (redisUrl !== undefined && redisUrl !== "") {
  // Loaded only when asked for, like Roomcast's own optional backends.
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { Redis } = await import("ioredis");
  const pub = new Redis(redisUrl);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
}

io.on("connection", (socket) => {
  socket.on("join", (room: unknown, reply: unknown) => {
    if (typeof room !== "string") return;
    void socket.join(room);
    if (typeof reply === "function") {
      const body = {
        room_id: room,
        epoch,
        offset: String(offsets.get(room) ?? 0),
        recovered: false,
      };
      (reply as Reply)(body);
    }
  });
  socket.on("message", (msg: Publish, reply: unknown) => {
    const target = msg.target;
    if (target === undefined || !socket.rooms.has(target)) return;
    const offset = (offsets.get(target) ?? 0) + 1;
    offsets.set(target, offset);
    const messageId = msg.message_id ?? `m${++nextMessage}`;
    io.to(target).emit("message", {
      target,
      content: msg.content ?? "",
      message_id: messageId,
      sent_at: new Date().toISOString(),
      sender_id: socket.id,
      offset: String(offset),
    });
    if (typeof reply === "function") {
      (reply as Reply)({
        room_id: target,
        message_id: messageId,
        offset: String(offset),
        duplicate: false,
      });
    }
  });
});
listen(http, "socketio");
