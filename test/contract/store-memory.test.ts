import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { storeContract } from "./store.contract.js";

storeContract("memory store", (settings) => Promise.resolve(new MemoryStore(settings)), {
  capabilities: { durable: false, shared: false },
  // Every MemoryStore is a backend of its own.
  sharedBackend: false,
  fresh: () => Promise.resolve((settings) => Promise.resolve(new MemoryStore(settings))),
});
