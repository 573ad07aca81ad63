import { MemoryBroker, MemoryBus } from "../../src/adapters/broker/memory-broker.js";
import { roomSubject } from "../../src/adapters/broker/room-subject.js";
import { brokerContract } from "./broker.contract.js";

// One bus stands for the server both "nodes" of each test share.
const bus = new MemoryBus();

brokerContract("memory broker", () => Promise.resolve(new MemoryBroker({ bus })), {
  distributed: false,
  interest: (room) => Promise.resolve(bus.interestCount(roomSubject("roomcast", room))),
});
