// A message the broker lost, in a room that then goes quiet, on two real
// nodes (NATS, PostgreSQL): node A reaches NATS through a small TCP proxy
// that swallows what A sends for a moment and then cuts the connection, as a
// network path that dies with bytes in flight does. NATS never sees the
// message, so node B's member cannot learn of it from the broker, and no
// later message follows. With head announcements (HEAD_ANNOUNCE_AFTER) B
// still delivers it; without them (the control) B does not until the room's
// next message.
import assert from "node:assert/strict";
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { TestClient } from "../helpers/client.js";
import { postgresBackend } from "../helpers/durable-stores.js";
import { natsServerAvailable, startNatsServer, type NatsServer } from "../helpers/nats.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

/** A TCP proxy that can swallow the client's bytes and then cut every connection. */
class SwallowingProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #swallowing = false;
  swallowed = 0;

  private constructor(targetPort: number) {
    this.#server = createServer((client) => {
      const upstream = tcpConnect(targetPort, "127.0.0.1");
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      client.on("data", (chunk: Buffer) => {
        if (this.#swallowing) this.swallowed += chunk.length;
        else upstream.write(chunk);
      });
      upstream.pipe(client);
      const end = () => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
  }

  static async start(targetPort: number): Promise<SwallowingProxy> {
    const proxy = new SwallowingProxy(targetPort);
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  swallow(): void {
    this.#swallowing = true;
  }

  /** Cuts every connection (the swallowed bytes are gone) and forwards again. */
  cut(): void {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    this.#swallowing = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const backend = postgresBackend();
const skip = !natsServerAvailable() || !backend.available();

for (const announceAfter of ["1s", "0"]) {
  const on = announceAfter !== "0";
  describe(`lost message - HEAD_ANNOUNCE_AFTER=${announceAfter}`, { skip }, () => {
    let nats: NatsServer;
    let proxy: SwallowingProxy;
    const nodes: ServerProcess[] = [];
    const clients: TestClient[] = [];

    before(async () => {
      nats = await startNatsServer();
      proxy = await SwallowingProxy.start(Number(new URL(nats.url).port));
      await backend.start();
      const store = await backend.env(`lost_${on ? "on" : "off"}`);
      const env = {
        ...store,
        BROKER: "nats",
        HEAD_ANNOUNCE_AFTER: announceAfter,
        GAP_WAIT: "30ms",
      };
      nodes.push(await startServer({ ...env, NATS_URL: proxy.url }));
      nodes.push(await startServer({ ...env, NATS_URL: nats.url }));
    });

    after(async () => {
      for (const c of clients) c.ws.terminate();
      for (const n of nodes) await n.stop();
      await proxy.close();
      await nats.close();
      await backend.stop();
    });

    async function member(node: ServerProcess): Promise<TestClient> {
      const [c] = await TestClient.open(node.wsUrl);
      clients.push(c);
      c.send({ join_room: { room_id: "quiet" } });
      await c.next("room_joined");
      return c;
    }

    test(
      on
        ? "a message lost between node A and NATS reaches B's member though nothing follows it"
        : "control: without announcements the lost message waits for the room's next one",
      async () => {
        const [a, b] = [nodes[0]!, nodes[1]!];
        const publisher = await member(a);
        const watcher = await member(b);
        publisher.send({ message: { target: "quiet", content: "one" } });
        assert.equal((await publisher.next("ack"))["offset"], "1");
        assert.equal((await watcher.next("message", 10_000))["offset"], "1");

        proxy.swallow();
        publisher.send({ message: { target: "quiet", content: "two" } });
        assert.equal((await publisher.next("ack"))["offset"], "2"); // stored and acked
        const sentAt = Date.now();
        // Let A's client write it into the swallowing proxy, then cut.
        const deadline = Date.now() + 5000;
        while (proxy.swallowed === 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assert.ok(proxy.swallowed > 0, "the publish was lost on its way to NATS");
        proxy.cut();

        if (on) {
          const two = await watcher.next("message", 15_000);
          assert.equal(two["offset"], "2");
          assert.equal(two["content"], "two");
          console.log(JSON.stringify({ lostMessageDeliveredAfterMs: Date.now() - sentAt }));
        } else {
          // A bounded wait for a negative, several times the bound the
          // announcement would give (and A has reconnected meanwhile).
          await assert.rejects(watcher.next("message", 5000));
          publisher.send({ message: { target: "quiet", content: "three" } });
          assert.equal((await watcher.next("message", 10_000))["offset"], "2");
          assert.equal((await watcher.next("message", 10_000))["offset"], "3");
        }
      },
    );
  });
}
