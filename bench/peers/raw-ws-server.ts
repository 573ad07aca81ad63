// The plain Node `ws` peer: each message serialised once into one Buffer and
// handed as-is to `ws.send` of every member, which frames it and writes it to
// that socket at once (one frame, one write per member per message).
import type { WebSocket } from "ws";
import { serveJsonRooms } from "./json-rooms.js";

serveJsonRooms("raw-ws", {
  opened: () => {},
  send: (ws, envelope) => ws.send(envelope, { binary: false }),
  broadcast: (members: ReadonlySet<WebSocket>, envelope) => {
    for (const member of members) member.send(envelope, { binary: false });
  },
  closed: () => {},
});
