// The store guard is a Store too: wrapped around the memory store it must keep
// every guarantee of the port.
import { GuardedStore } from "../../src/adapters/store/guarded-store.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { storeContract } from "./store.contract.js";

const guarded = () => new GuardedStore(new MemoryStore(), { timeoutMs: 5000 });

storeContract("guarded memory store", () => Promise.resolve(guarded()), {
  capabilities: { durable: false, shared: false },
  sharedBackend: false,
  fresh: () => Promise.resolve(() => Promise.resolve(guarded())),
});
