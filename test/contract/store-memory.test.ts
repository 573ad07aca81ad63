import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { storeContract } from "./store.contract.js";

storeContract("memory store", () => Promise.resolve(new MemoryStore()), {
  capabilities: { durable: false, shared: false },
  // Every MemoryStore is a backend of its own.
  sharedBackend: false,
  fresh: () => Promise.resolve(() => Promise.resolve(new MemoryStore())),
});
