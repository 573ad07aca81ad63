// Presence against a real server (PROTOCOL.md Part 2, "Presence"). The
// server's presence is being added separately: until its proto has
// join_room.presence and presence_state, these tests are skipped (never faked).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import WebSocket from "ws";
import { EnvelopeSchema, JoinRoomSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import { eventually } from "../../test/helpers/eventually.js";
import { startServer, type ServerProcess } from "../../test/helpers/server.js";
import { Roomcast } from "../src/index.js";

const serverHasPresence =
  JoinRoomSchema.fields.some((f) => f.name === "presence") &&
  EnvelopeSchema.fields.some((f) => f.name === "presence_state") &&
  EnvelopeSchema.fields.some((f) => f.name === "presence_diff");
const skip = serverHasPresence ? false : "server presence not merged yet";

let server: ServerProcess | undefined;
before(async () => {
  if (serverHasPresence) server = await startServer();
});
after(async () => {
  await server?.stop();
});

for (const protocol of ["json", "protobuf"] as const) {
  test(
    `client presence - ${protocol}: state on join, then diffs as members come and go`,
    { skip },
    async () => {
      const url = server!.wsUrl;
      const id = `presence-${protocol}`;
      const watcher = new Roomcast(url, { WebSocket, protocol });
      const room = watcher.room(id, { presence: true });
      await eventually(() => room.presence.some((m) => m.memberId === watcher.session?.memberId));

      const other = new Roomcast(url, { WebSocket, protocol });
      other.room(id); // without presence itself: still present for others
      await eventually(() => room.presence.some((m) => m.memberId === other.session?.memberId));
      const otherId = other.session?.memberId;

      other.close();
      await eventually(() => !room.presence.some((m) => m.memberId === otherId), {
        timeoutMs: 8_000,
      });
      assert.deepEqual(
        room.presence.map((m) => m.memberId),
        [watcher.session?.memberId],
      );
      watcher.close();
    },
  );
}
