// Sessions, resume, replay and idempotency end to end, on each durable store:
// SQLite, and the shared stores Redis (a private redis-server with AOF) and
// Spanner (a private emulator). PostgreSQL runs these through cluster.test.ts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import {
  redisBackend,
  spannerBackend,
  sqliteBackend,
  type DurableBackend,
} from "../helpers/durable-stores.js";
import { eventually } from "../helpers/eventually.js";
import { RATE_LIMITS_OFF, startServer, type ServerProcess } from "../helpers/server.js";

for (const backend of [sqliteBackend(), redisBackend(), spannerBackend()]) {
  describe(`resume - ${backend.name}`, { skip: !backend.available() }, () => {
    resumeSuite(backend);
  });
}

function resumeSuite(backend: DurableBackend): void {
  let server: ServerProcess;
  const clients: TestClient[] = [];

  async function open(opts: Parameters<typeof TestClient.open>[1] = {}, url = server.wsUrl) {
    const pair = await TestClient.open(url, opts);
    clients.push(pair[0]);
    return pair;
  }

  async function join(c: TestClient, room: string): Promise<Record<string, unknown>> {
    c.send({ join_room: { room_id: room } });
    return c.next("room_joined", 5000, (j) => j["room_id"] === room);
  }

  async function publish(c: TestClient, room: string, n: number, prefix = "m"): Promise<string[]> {
    for (let i = 0; i < n; i++) c.send({ message: { target: room, content: `${prefix}${i}` } });
    const offsets = [];
    for (let i = 0; i < n; i++) offsets.push(String((await c.next("ack"))["offset"]));
    return offsets;
  }

  async function closeAndWait(c: TestClient): Promise<void> {
    c.close();
    await c.closed;
  }

  before(async () => {
    await backend.start();
    server = await startServer({
      ...(await backend.env("resume")),
      SESSION_REPLAY_LIMIT: "1000",
      ACK_FLUSH_INTERVAL: "100ms",
      // Publishes hundreds of messages in one go from one connection.
      ...RATE_LIMITS_OFF,
    });
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await server.stop();
    await backend.stop();
  });

  describe("resume - replay", () => {
    test("a member that missed 500 messages gets exactly those, in order, then live", async () => {
      const room = "r500";
      const [a, sa] = await open();
      const [b] = await open();
      await join(a, room);
      await join(b, room);
      await publish(b, room, 5, "early");
      for (let i = 1; i <= 5; i++) assert.equal((await a.next("message"))["offset"], String(i));
      a.send({ ack: { room_id: room, offset: "5" } });
      await closeAndWait(a);

      await publish(b, room, 500, "missed");
      const [a2, s2] = await open({ session: String(sa["token"]) });
      assert.equal(s2["resumed"], true);
      assert.equal(s2["member_id"], sa["member_id"]);
      assert.notEqual(s2["token"], sa["token"]);
      assert.deepEqual(s2["rooms"], [room]);
      const joined = await a2.next("room_joined");
      assert.deepEqual([joined["offset"], joined["recovered"]], ["505", true]);
      const replay = [];
      for (let i = 0; i < 500; i++) replay.push(await a2.next("message"));
      assert.deepEqual(
        replay.map((m) => m["offset"]),
        Array.from({ length: 500 }, (_, i) => String(i + 6)),
      );
      assert.deepEqual(
        replay.map((m) => m["content"]),
        Array.from({ length: 500 }, (_, i) => `missed${i}`),
      );
      await publish(b, room, 1, "live");
      const live = await a2.next("message");
      assert.deepEqual([live["offset"], live["content"]], ["506", "live0"]);
      assert.equal(a2.all("message").length, 501, "no duplicate between replay and live");
    });

    test("without acks, resume starts after the last offset sent", async () => {
      const room = "noack";
      const [a, sa] = await open();
      const [b] = await open();
      await join(a, room);
      await join(b, room);
      await publish(b, room, 3);
      for (let i = 1; i <= 3; i++) await a.next("message");
      await closeAndWait(a);
      await publish(b, room, 2, "gone");
      const [a2] = await open({ session: String(sa["token"]) });
      const joined = await a2.next("room_joined");
      assert.deepEqual([joined["offset"], joined["recovered"]], ["5", true]);
      const got = [await a2.next("message"), await a2.next("message")];
      assert.deepEqual(
        got.map((m) => m["offset"]),
        ["4", "5"],
      );
    });

    test("live messages published during the replay follow it with no gap and no duplicate", async () => {
      const room = "race";
      const [a, sa] = await open();
      const [b] = await open();
      await join(a, room);
      await join(b, room);
      await closeAndWait(a);
      await publish(b, room, 300, "before");
      const resumed = open({ session: String(sa["token"]) });
      // Keep publishing while the resume reads history.
      const during = publish(b, room, 100, "during");
      const [a2] = await resumed;
      await during;
      const got = [];
      for (let i = 0; i < 400; i++) got.push((await a2.next("message"))["offset"]);
      assert.deepEqual(
        got,
        Array.from({ length: 400 }, (_, i) => String(i + 1)),
      );
    });

    test("more missed than SESSION_REPLAY_LIMIT gives recovered: false and no replay", async () => {
      const s = await startServer({
        ...(await backend.env("limit")),
        SESSION_REPLAY_LIMIT: "5",
      });
      try {
        const [a, sa] = await open({}, s.wsUrl);
        const [b] = await open({}, s.wsUrl);
        await join(a, "lim");
        await join(b, "lim");
        await closeAndWait(a);
        await publish(b, "lim", 10);
        const [a2] = await open({ session: String(sa["token"]) }, s.wsUrl);
        const joined = await a2.next("room_joined");
        assert.deepEqual([joined["offset"], joined["recovered"]], ["10", false]);
        await publish(b, "lim", 1, "next");
        const m = await a2.next("message");
        assert.equal(
          m["offset"],
          "11",
          "live continues after room_joined.offset; nothing replayed",
        );
      } finally {
        await s.stop();
      }
    });

    test("join with since replays after the position; beyond the head is offset_out_of_range", async () => {
      const room = "since";
      const [b] = await open();
      await join(b, room);
      await publish(b, room, 8);
      const [a] = await open();
      const head = await join(a, "since-other");
      assert.equal(head["offset"], "0");
      a.send({ join_room: { room_id: room, since: { offset: "99" } } });
      const e = await a.next("error");
      assert.deepEqual([e["code"], e["ref"]], ["offset_out_of_range", room]);
      a.send({ join_room: { room_id: room, since: { offset: "6", epoch: "" } } });
      const joined = await a.next("room_joined", 5000, (j) => j["room_id"] === room);
      assert.deepEqual([joined["offset"], joined["recovered"]], ["8", true]);
      assert.deepEqual(
        [(await a.next("message"))["offset"], (await a.next("message"))["offset"]],
        ["7", "8"],
      );
      const [c] = await open();
      c.send({ join_room: { room_id: room, since: { offset: "3", epoch: "another-epoch" } } });
      const other = await c.next("room_joined");
      assert.equal(other["recovered"], false, "an offset of another epoch is meaningless");
    });
  });

  describe("resume - history trimming", () => {
    test("history trimmed past the position gives recovered: false; the head survives", async () => {
      const s = await startServer({
        ...(await backend.env("trim")),
        HISTORY_SIZE: "5",
        TRIM_INTERVAL: "100ms",
      });
      try {
        const [a, sa] = await open({}, s.wsUrl);
        const [b] = await open({}, s.wsUrl);
        await join(a, "trim");
        await join(b, "trim");
        await closeAndWait(a);
        await publish(b, "trim", 20);
        // Wait for the trim job: with 16..20 kept, a probe from 14 cannot recover
        // (15 is gone), while one from 15 still can.
        await eventually(async () => {
          const [probe] = await open({}, s.wsUrl);
          probe.send({ join_room: { room_id: "trim", since: { offset: "14" } } });
          const j = await probe.next("room_joined");
          probe.close();
          return j["recovered"] === false;
        });
        const [a2] = await open({ session: String(sa["token"]) }, s.wsUrl);
        const joined = await a2.next("room_joined");
        assert.deepEqual([joined["offset"], joined["recovered"]], ["20", false]);
        // Within the kept window a position still recovers.
        const [c] = await open({}, s.wsUrl);
        c.send({ join_room: { room_id: "trim", since: { offset: "15" } } });
        const kept = await c.next("room_joined");
        assert.deepEqual([kept["offset"], kept["recovered"]], ["20", true]);
        assert.deepEqual(
          [(await c.next("message"))["offset"], (await c.next("message"))["offset"]],
          ["16", "17"],
        );
      } finally {
        await s.stop();
      }
    });
  });

  describe("resume - sessions", () => {
    test("a reused token gives a fresh session", async () => {
      const [a, sa] = await open();
      await closeAndWait(a);
      const [a2, s2] = await open({ session: String(sa["token"]) });
      assert.equal(s2["resumed"], true);
      await closeAndWait(a2);
      const [, s3] = await open({ session: String(sa["token"]) });
      assert.equal(s3["resumed"], false);
      assert.notEqual(s3["member_id"], sa["member_id"]);
      const [, s4] = await open({ session: "not-a-token" });
      assert.equal(s4["resumed"], false);
    });

    test("resuming a session that is still connected takes it over with 4001", async () => {
      const [a, sa] = await open();
      await join(a, "takeover");
      const [a2, s2] = await open({ session: String(sa["token"]) });
      assert.equal(s2["resumed"], true);
      assert.equal((await a.closed).code, 4001);
      assert.equal((await a2.next("room_joined"))["room_id"], "takeover");
    });

    test("a duplicate publish across a reconnect is stored once", async () => {
      const room = "dup-reconnect";
      const [a, sa] = await open();
      const [b] = await open();
      await join(a, room);
      await join(b, room);
      a.send({ message: { target: room, content: "x", message_id: "once-only" } });
      const first = await a.next("ack");
      await closeAndWait(a);
      const [a2] = await open({ session: String(sa["token"]) });
      await a2.next("room_joined");
      a2.send({ message: { target: room, content: "x", message_id: "once-only" } });
      const again = await a2.next("ack");
      assert.deepEqual([again["offset"], again["duplicate"]], [first["offset"], true]);
      a2.send({ message: { target: room, content: "y", message_id: "marker" } });
      await a2.next("ack", 5000, (x) => x["message_id"] === "marker");
      await b.next("message", 5000, (m) => m["message_id"] === "marker");
      assert.equal(b.all("message").filter((m) => m["message_id"] === "once-only").length, 1);
    });
  });

  describe("resume - crash", () => {
    test("kill -9 of the node: sessions and history survive and offsets continue", async () => {
      const env = await backend.env("crash");
      const s1 = await startServer(env);
      const [a, sa] = await open({}, s1.wsUrl);
      const [b] = await open({}, s1.wsUrl);
      const joinedBefore = await join(a, "crash");
      await join(b, "crash");
      const offsets = await publish(b, "crash", 10);
      assert.deepEqual(
        offsets,
        Array.from({ length: 10 }, (_, i) => String(i + 1)),
      );
      await s1.kill9();
      await a.closed;

      const s2 = await startServer(env);
      try {
        const [a2, s] = await open({ session: String(sa["token"]) }, s2.wsUrl);
        assert.equal(s["resumed"], true);
        assert.deepEqual(s["rooms"], ["crash"]);
        const joined = await a2.next("room_joined");
        assert.deepEqual(
          [joined["epoch"], joined["offset"], joined["recovered"]],
          [joinedBefore["epoch"], "10", true],
        );
        const replay = [];
        for (let i = 0; i < 10; i++) replay.push((await a2.next("message"))["offset"]);
        assert.deepEqual(replay, offsets, "every acknowledged message survived");
        const [c] = await open({}, s2.wsUrl);
        await join(c, "crash");
        assert.deepEqual(await publish(c, "crash", 1), ["11"]);
      } finally {
        await s2.stop();
      }
    });
  });
}
