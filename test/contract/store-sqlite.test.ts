// SQLite on real files in a temp dir; several SqliteStore instances on one
// file are several connections, and the append worker is another process.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/adapters/store/sqlite-store.js";
import { appendInProcess } from "./store-append-process.js";
import { storeContract } from "./store.contract.js";

let dir = "";
let freshFiles = 0;
// Folders that do not exist yet: open() must create them.
const shared = (): string => join(dir, "nested", "data", "shared.db");

storeContract(
  "sqlite store",
  (settings) => Promise.resolve(new SqliteStore({ path: shared(), ...settings })),
  {
    capabilities: { durable: true, shared: false },
    sharedBackend: true,
    before: async () => {
      dir = await mkdtemp(join(tmpdir(), "roomcast-sqlite-"));
    },
    after: () => rm(dir, { recursive: true, force: true }),
    fresh: () => {
      freshFiles += 1;
      const path = join(dir, "fresh", `store-${freshFiles}.db`);
      return Promise.resolve((settings) => Promise.resolve(new SqliteStore({ path, ...settings })));
    },
    appendInProcess: (room, count, prefix) =>
      appendInProcess("sqlite", shared(), room, count, prefix),
  },
);
