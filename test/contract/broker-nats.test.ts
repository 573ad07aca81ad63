import { NatsBroker } from "../../src/adapters/broker/nats-broker.js";
import { roomSubject } from "../../src/adapters/broker/room-subject.js";
import { freePort } from "../../tools/process-harness.js";
import { natsServerAvailable, startNatsServer, type NatsServer } from "../helpers/nats.js";
import { brokerContract } from "./broker.contract.js";

let server: NatsServer | undefined;

function running(): NatsServer {
  if (server === undefined) throw new Error("nats-server is not started");
  return server;
}

interface Subsz {
  subscriptions_list?: { subject: string }[];
}

brokerContract(
  "nats broker",
  () => Promise.resolve(new NatsBroker({ url: running().url, reconnectTimeWaitMs: 100 })),
  {
    distributed: true,
    skip: !natsServerAvailable(),
    before: async () => {
      server = await startNatsServer();
    },
    after: async () => {
      await server?.close();
    },
    interest: async (room) => {
      const subject = roomSubject("roomcast", room);
      const res = await fetch(`${running().monitorUrl}/subsz?subs=1&limit=100000`);
      const body = (await res.json()) as Subsz;
      return (body.subscriptions_list ?? []).filter((s) => s.subject === subject).length;
    },
    unreachable: async () => new NatsBroker({ url: `nats://127.0.0.1:${await freePort()}` }),
    server: {
      stop: () => running().stop("SIGKILL"),
      start: () => running().start(),
    },
  },
);
