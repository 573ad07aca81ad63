// Cloud Spanner on a private emulator the harness starts. Several
// SpannerStore instances on one database stand for several nodes; the append
// worker is another process. The emulator keeps data in memory and cannot be
// restarted with it, so the outage case does not run here. (Cut off by the
// TCP proxy instead, a bare SpannerStore's calls did not reject within two
// minutes, its 60 s transaction timeout notwithstanding; a node's guard answers
// in STORE_TIMEOUT all the same: test/chaos/store-outage.test.ts.)
import assert from "node:assert/strict";
import { it } from "node:test";
import { SpannerStore } from "../../src/adapters/store/spanner-store.js";
import { spannerMigrations } from "../../src/adapters/store/spanner-migrations.js";
import {
  spannerEmulatorAvailable,
  startSpannerEmulator,
  type SpannerEmulator,
} from "../helpers/spanner.js";
import { appendInProcess } from "./store-append-process.js";
import { storeContract, type StoreSettings } from "./store.contract.js";

const available = spannerEmulatorAvailable();
let emulator: SpannerEmulator | undefined;
let shared = "";
const running = (): SpannerEmulator => {
  if (emulator === undefined) throw new Error("the Spanner emulator is not started");
  return emulator;
};

const store = (databaseId: string, settings: StoreSettings = { dedupWindowMs: 60_000 }) => {
  const e = running();
  return new SpannerStore({
    projectId: e.projectId,
    instanceId: e.instanceId,
    databaseId,
    emulatorHost: e.host,
    // The emulator aborts a transaction that meets another process's, and
    // the client retries after a back-off; with five processes appending at
    // once a loser can lose several times, past the default 10 s budget.
    timeoutMs: 60_000,
    ...settings,
  });
};

storeContract("spanner store", (settings) => Promise.resolve(store(shared, settings)), {
  capabilities: { durable: true, shared: true },
  sharedBackend: true,
  skip: !available,
  before: async () => {
    emulator = await startSpannerEmulator();
    shared = running().databaseId("shared");
  },
  after: async () => {
    await emulator?.close();
  },
  fresh: () => {
    const id = running().databaseId("fresh");
    return Promise.resolve((settings) => Promise.resolve(store(id, settings)));
  },
  appendInProcess: (room, count, prefix) => {
    const e = running();
    const target = [e.host, e.projectId, e.instanceId, shared].join("/");
    return appendInProcess("spanner", target, room, count, prefix);
  },
});

// Spanner only: stores starting together on a missing database create it and
// record each migration once, and a later migrate applies nothing. On an
// emulator of its own: the suite's is stopped by the time this runs.
void it(
  "store - concurrent first opens create the database and migrate it once",
  { skip: !available, timeout: 60_000 },
  async () => {
    const local = await startSpannerEmulator();
    try {
      const make = () =>
        new SpannerStore({
          projectId: local.projectId,
          instanceId: local.instanceId,
          databaseId: "migrate",
          emulatorHost: local.host,
          dedupWindowMs: 60_000,
        });
      const stores = Array.from({ length: 3 }, make);
      await Promise.all(stores.map((s) => s.open()));
      const again = make();
      assert.deepEqual(await again.migrate(), []);
      await again.open();
      assert.equal((await again.append("room", message())).offset, 1n);
      await Promise.all([...stores, again].map((s) => s.close()));
      assert.ok(spannerMigrations.length > 0);
    } finally {
      await local.close();
    }
  },
);

function message() {
  return { messageId: "m", senderId: "s", sentAt: "2026-01-01T00:00:00Z", content: "c" };
}
