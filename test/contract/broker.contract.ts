// The one contract suite every Broker adapter passes, run unchanged against
// each: two broker instances on one server stand for two nodes.
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import type { Broker, PayloadHandler, Subscription } from "../../src/ports/broker.js";
import { eventually } from "../helpers/eventually.js";

export interface BrokerContractOptions {
  /** Expected `capabilities.distributed`. */
  readonly distributed: boolean;
  /** Skip the whole suite (e.g. the server binary is missing outside CI). */
  readonly skip?: boolean;
  /** Runs before the suite (start the server). */
  readonly before?: () => Promise<void>;
  /** Runs after the suite (stop the server). */
  readonly after?: () => Promise<void>;
  /** Counts the server's subscriptions on a room, over all connections (e.g. PUBSUB NUMSUB). */
  readonly interest: (room: string) => Promise<number>;
  /** A broker pointed at an address where no server listens; distributed adapters only. */
  readonly unreachable?: () => Promise<Broker>;
  /** Stops and restarts the broker server on the same address; distributed adapters only. */
  readonly server?: { stop(): Promise<void>; start(): Promise<void> };
}

let rooms = 0;
/** A room id no other test uses, so tests on one server never see each other's traffic. */
function freshRoom(name: string): string {
  rooms += 1;
  return `${name}-${rooms}`;
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function text(payload: Uint8Array): string {
  return new TextDecoder().decode(payload);
}

function seq(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function readSeq(payload: Uint8Array): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0);
}

/** Subscribes a handler that records every payload. */
async function collect(
  broker: Broker,
  room: string,
): Promise<{ readonly got: Uint8Array[]; readonly sub: Subscription }> {
  const got: Uint8Array[] = [];
  const sub = await broker.subscribe(room, (p) => got.push(p));
  return { got, sub };
}

export function brokerContract(
  name: string,
  make: () => Promise<Broker>,
  opts: BrokerContractOptions,
): void {
  /** Two opened brokers ("nodes"), closed when the test ends. */
  async function twoNodes(t: TestContext): Promise<[Broker, Broker]> {
    const a = await make();
    const b = await make();
    t.after(() => Promise.all([a.close(), b.close()]));
    await Promise.all([a.open(), b.open()]);
    return [a, b];
  }

  void describe(name, { skip: opts.skip === true }, () => {
    if (opts.before !== undefined) before(opts.before);
    if (opts.after !== undefined) after(opts.after);

    void it("broker - open connects and states its capabilities", async (t) => {
      const [a] = await twoNodes(t);
      assert.equal(a.connected, true);
      assert.equal(a.capabilities.distributed, opts.distributed);
    });

    void it("broker - a publish reaches subscribers on every node, complete and in order", async (t) => {
      const [a, b] = await twoNodes(t);
      const room = freshRoom("order");
      const onA = await collect(a, room);
      const onB = await collect(b, room);
      const count = 2000;
      // Issued back to back without waiting, as a busy router would.
      const sent: Promise<void>[] = [];
      for (let i = 0; i < count; i++) sent.push(a.publish(room, seq(i)));
      await Promise.all(sent);
      await eventually(() => onA.got.length >= count && onB.got.length >= count);
      const expected = Array.from({ length: count }, (_, i) => i);
      assert.deepEqual(onA.got.map(readSeq), expected);
      assert.deepEqual(onB.got.map(readSeq), expected);
    });

    void it("broker - a publisher never runs its own handler synchronously", async (t) => {
      const [a] = await twoNodes(t);
      const room = freshRoom("reentry");
      let inside = false;
      let reentered = false;
      const got = await collect(a, room);
      await a.subscribe(room, () => {
        if (inside) reentered = true;
      });
      inside = true;
      const published = a.publish(room, bytes("x"));
      inside = false;
      await published;
      await eventually(() => got.got.length === 1);
      assert.equal(reentered, false);
    });

    void it("broker - binary payloads arrive intact", async (t) => {
      const [a, b] = await twoNodes(t);
      const room = freshRoom("binary");
      const onB = await collect(b, room);
      const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
      const large = Uint8Array.from({ length: 256 * 1024 }, (_, i) => (i * 7919) % 251);
      const backing = Uint8Array.from([9, 9, 1, 2, 3, 9, 9]);
      const payloads = [
        allBytes,
        new Uint8Array(0),
        bytes("line\r\nbreaks\r\n$3\r\n*1\r\n"), // Redis protocol lookalikes
        bytes("MSG a 1 5\r\nPING\r\n"), // NATS protocol lookalikes
        large,
        backing.subarray(2, 5), // a view with an offset: only [1,2,3] is the payload
      ];
      const copies = payloads.map((p) => p.slice());
      for (const p of payloads) await a.publish(room, p);
      // The caller may reuse its buffer once publish resolves.
      allBytes.fill(0);
      backing.fill(0);
      await eventually(() => onB.got.length >= payloads.length);
      assert.equal(onB.got.length, copies.length);
      onB.got.forEach((got, i) => {
        assert.ok(Buffer.from(got).equals(Buffer.from(copies[i] ?? [])), `payload ${i} differs`);
      });
    });

    void it("broker - rooms are isolated, separator and wildcard lookalikes included", async (t) => {
      const [a, b] = await twoNodes(t);
      const tag = freshRoom("iso");
      const ids = [
        "a",
        "b",
        "A",
        "a.b",
        "a_b",
        "a_db",
        "a__b",
        "a:b",
        "a@b",
        "a_cb",
        "a_ab",
        "@x",
        "x@",
        ".",
        "..",
        "a.",
        ".a",
        "_",
        "__",
        "_d",
        "-",
        ":",
        "@",
        "a-b",
        "x".repeat(128),
        "x".repeat(127) + "y",
        "a.".repeat(64),
      ];
      // Prefix each with the test's tag, keeping ids within 128 characters.
      const roomsUnderTest = ids.map((id) => (id.length > 100 ? id : `${tag}${id}`));
      const received = new Map<string, string[]>();
      for (const room of roomsUnderTest) {
        const got: string[] = [];
        received.set(room, got);
        await b.subscribe(room, (p) => got.push(text(p)));
      }
      const control: string[] = [];
      await b.subscribeControl((p) => control.push(text(p)));
      for (const room of roomsUnderTest) await a.publish(room, bytes(room));
      // Markers last, on the same path (a -> b): anything leaked arrives before them.
      for (const room of roomsUnderTest) await a.publish(room, bytes("marker"));
      await eventually(() => [...received.values()].every((got) => got.includes("marker")));
      for (const [room, got] of received) assert.deepEqual(got, [room, "marker"], `room ${room}`);
      assert.deepEqual(control, []);
    });

    void it("broker - invalid room ids are refused", async (t) => {
      const [a] = await twoNodes(t);
      for (const bad of ["", "a b", "a*", "a>", "a.*", ">", "x".repeat(129), "é"]) {
        await assert.rejects(a.publish(bad, bytes("x")), {
          name: "BrokerError",
          code: "invalid_name",
        });
        await assert.rejects(
          a.subscribe(bad, () => undefined),
          { name: "BrokerError", code: "invalid_name" },
        );
      }
    });

    void it("broker - unsubscribe stops delivery and the last one drops the interest", async (t) => {
      const [a, b] = await twoNodes(t);
      const room = freshRoom("unsub");
      const markerRoom = freshRoom("unsub-marker");
      const onA = await collect(a, room);
      const first = await collect(b, room);
      const second = await collect(b, room);
      const markers = await collect(b, markerRoom);
      assert.equal(await opts.interest(room), 2, "one interest per node, however many handlers");

      await a.publish(room, bytes("1"));
      await eventually(() => second.got.length === 1);
      assert.deepEqual(first.got.map(text), ["1"]);

      await first.sub.unsubscribe();
      await first.sub.unsubscribe(); // a second call is a no-op
      assert.equal(await opts.interest(room), 2, "b still has a handler");
      await a.publish(room, bytes("2"));
      await eventually(() => second.got.length === 2);
      assert.deepEqual(first.got.map(text), ["1"]);

      await second.sub.unsubscribe();
      assert.equal(await opts.interest(room), 1, "b dropped its interest with its last handler");
      await a.publish(room, bytes("3"));
      await a.publish(markerRoom, bytes("marker"));
      await eventually(() => markers.got.length === 1 && onA.got.length === 3);
      assert.deepEqual(second.got.map(text), ["1", "2"]);

      // Subscribing again after dropping the interest takes it again.
      const again = await collect(b, room);
      assert.equal(await opts.interest(room), 2);
      await a.publish(room, bytes("4"));
      await eventually(() => again.got.length === 1);

      await onA.sub.unsubscribe();
      await again.sub.unsubscribe();
      assert.equal(await opts.interest(room), 0);
    });

    void it("broker - the same handler subscribed twice is called twice and unsubscribed once per subscription", async (t) => {
      const [a] = await twoNodes(t);
      const room = freshRoom("twice");
      const got: string[] = [];
      const handler: PayloadHandler = (p) => got.push(text(p));
      const one = await a.subscribe(room, handler);
      await a.subscribe(room, handler);
      await a.publish(room, bytes("x"));
      await eventually(() => got.length === 2);
      await one.unsubscribe();
      await a.publish(room, bytes("y"));
      await eventually(() => got.length === 3);
      assert.deepEqual(got, ["x", "x", "y"]);
    });

    void it("broker - the control channel reaches every node, the sender included", async (t) => {
      const [a, b] = await twoNodes(t);
      const onA: string[] = [];
      const onB: string[] = [];
      await a.subscribeControl((p) => onA.push(text(p)));
      await b.subscribeControl((p) => onB.push(text(p)));
      for (const m of ["close-user:u1", "takeover:s2", "close-user:u3"]) {
        await a.publishControl(bytes(m));
      }
      await eventually(() => onA.length === 3 && onB.length === 3);
      assert.deepEqual(onA, ["close-user:u1", "takeover:s2", "close-user:u3"]);
      assert.deepEqual(onB, onA);
    });

    void it("broker - a handler that throws does not stop delivery to the others", async (t) => {
      const [a] = await twoNodes(t);
      const room = freshRoom("throws");
      await a.subscribe(room, () => {
        throw new Error("handler failure");
      });
      const good = await collect(a, room);
      await a.publish(room, bytes("1"));
      await a.publish(room, bytes("2"));
      await eventually(() => good.got.length === 2);
    });

    void it("broker - close ends cleanly", async () => {
      const broker = await make();
      const other = await make();
      await Promise.all([broker.open(), other.open()]);
      const room = freshRoom("close");
      const heard: boolean[] = [];
      broker.onStatus((connected) => heard.push(connected));
      await broker.subscribe(room, () => undefined);
      await broker.subscribeControl(() => undefined);
      const onOther = await collect(other, room);
      assert.equal(await opts.interest(room), 2);

      await broker.close();
      assert.equal(broker.connected, false);
      assert.deepEqual(heard, [false]);
      await broker.close(); // idempotent
      await assert.rejects(broker.publish(room, bytes("x")), {
        name: "BrokerError",
        code: "not_open",
      });
      await assert.rejects(
        broker.subscribe(room, () => undefined),
        { name: "BrokerError", code: "not_open" },
      );
      await assert.rejects(broker.publishControl(bytes("x")), { name: "BrokerError" });
      // The server drops a closed connection's interest (when it notices the socket close).
      await eventually(async () => (await opts.interest(room)) === 1);

      await other.publish(room, bytes("still works"));
      await eventually(() => onOther.got.length === 1);
      await other.close();
      await eventually(async () => (await opts.interest(room)) === 0);
    });

    const unreachable = opts.unreachable;
    if (unreachable !== undefined) {
      void it("broker - open fails with a BrokerError when no server answers", async () => {
        const broker = await unreachable();
        await assert.rejects(broker.open(), { name: "BrokerError", code: "connect_failed" });
        assert.equal(broker.connected, false);
        await broker.close();
      });
    }

    const server = opts.server;
    if (server !== undefined) {
      void it("broker - reconnects after the server restarts, and subscriptions survive", async (t) => {
        const [a, b] = await twoNodes(t);
        const room = freshRoom("restart");
        const onA = await collect(a, room);
        const onB = await collect(b, room);
        const controlOnB: string[] = [];
        await b.subscribeControl((p) => controlOnB.push(text(p)));
        const heardA: boolean[] = [];
        const heardB: boolean[] = [];
        a.onStatus((c) => heardA.push(c));
        b.onStatus((c) => heardB.push(c));
        // The server must be running again when this test ends, whatever happens.
        t.after(() => server.start());

        await server.stop();
        await eventually(() => !a.connected && !b.connected);
        assert.deepEqual(heardA, [false]);
        assert.deepEqual(heardB, [false]);
        await assert.rejects(a.publish(room, bytes("while down")), {
          name: "BrokerError",
          code: "disconnected",
        });

        await server.start();
        await eventually(() => a.connected && b.connected, { timeoutMs: 20_000 });
        assert.deepEqual(heardA, [false, true]);
        assert.deepEqual(heardB, [false, true]);

        // Resubscription happens in the background right after the reconnect,
        // so keep publishing fresh markers until one gets through to both nodes.
        // A restarted Redis Cluster can take longer than the default 10 s to
        // serve its slots again (seen once in a full run), as long as the
        // reconnect itself is given.
        let n = 0;
        await eventually(
          async () => {
            await a.publish(room, bytes(`after-${++n}`));
            return onA.got.length > 0 && onB.got.length > 0;
          },
          { timeoutMs: 20_000 },
        );
        await eventually(
          async () => {
            await a.publishControl(bytes(`control-${++n}`));
            return controlOnB.length > 0;
          },
          { timeoutMs: 20_000 },
        );
        assert.ok(onB.got.map(text).every((m) => m.startsWith("after-")));
        assert.equal(await opts.interest(room), 2);
      });
    }
  });
}
