// The store guard is a Store too: wrapped around the memory store it must keep
// every guarantee of the port.
import { GuardedStore } from "../../src/adapters/store/guarded-store.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import { storeContract, type StoreSettings } from "./store.contract.js";

const guarded = (settings: StoreSettings) =>
  new GuardedStore(new MemoryStore(settings), { timeoutMs: 5000 });

storeContract("guarded memory store", (settings) => Promise.resolve(guarded(settings)), {
  capabilities: { durable: false, shared: false },
  sharedBackend: false,
  fresh: () => Promise.resolve((settings) => Promise.resolve(guarded(settings))),
});
