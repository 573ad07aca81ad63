// PostgreSQL on a private server the harness starts (or the one named by
// ROOMCAST_TEST_POSTGRES_URL). Several PostgresStore instances are several
// pools, the append worker is another process, and the private server is
// stopped and restarted for the outage test.
import assert from "node:assert/strict";
import { it } from "node:test";
import pg from "pg";
import { PostgresStore } from "../../src/adapters/store/postgres-store.js";
import { postgresMigrations } from "../../src/adapters/store/postgres-migrations.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { appendInProcess } from "./store-append-process.js";
import { storeContract, type StoreSettings } from "./store.contract.js";

const available = postgresAvailable();
let server: PostgresServer | undefined;
const running = (): PostgresServer => {
  if (server === undefined) throw new Error("PostgreSQL is not started");
  return server;
};

const store = (url: string, settings: StoreSettings = { dedupWindowMs: 60_000 }): PostgresStore =>
  new PostgresStore({ url, poolSize: 8, statementTimeoutMs: 2000, ...settings });

storeContract("postgres store", (settings) => Promise.resolve(store(running().url, settings)), {
  capabilities: { durable: true, shared: true },
  sharedBackend: true,
  skip: !available,
  before: async () => {
    server = await startPostgres();
  },
  after: async () => {
    await server?.close();
  },
  fresh: async () => {
    const url = await running().createDatabase("fresh");
    return (settings) => Promise.resolve(store(url, settings));
  },
  appendInProcess: (room, count, prefix) =>
    appendInProcess("postgres", running().url, room, count, prefix),
  ...(process.env["ROOMCAST_TEST_POSTGRES_URL"] === undefined && {
    server: {
      // A crash: connections are cut, nothing is flushed.
      stop: () => running().stop("immediate"),
      start: () => running().start(),
    },
  }),
});

async function appliedVersions(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ version: number }>(
      "SELECT version FROM schema_migrations ORDER BY version",
    );
    return rows.map((r) => r.version);
  } finally {
    await client.end();
  }
}

// PostgreSQL only: stores and processes starting together on an empty
// database apply each migration exactly once (the advisory lock).
void it(
  "store - concurrent first opens record each migration once",
  { skip: !available },
  async () => {
    const local = await startPostgres();
    try {
      const versions = postgresMigrations.map((m) => m.version);
      const url = await local.createDatabase("migrate");
      const stores = Array.from({ length: 6 }, () => store(url));
      await Promise.all(stores.map((s) => s.open()));
      await Promise.all(stores.map((s) => s.close()));
      assert.deepEqual(await appliedVersions(url), versions);
      assert.deepEqual(await store(url).migrate(), []);

      const fromProcesses = await local.createDatabase("migrate_procs");
      const offsets = await Promise.all(
        [0, 1, 2, 3].map((p) => appendInProcess("postgres", fromProcesses, "room", 5, `p${p}`)),
      );
      assert.equal(new Set(offsets.flat()).size, 20);
      assert.deepEqual(await appliedVersions(fromProcesses), versions);
    } finally {
      await local.close();
    }
  },
);

/** The plans PostgreSQL chose for the statements inside one append batch, via auto_explain. */
async function appendPlans(client: pg.Client, items: unknown[]): Promise<string> {
  const plans: string[] = [];
  const onNotice = (n: { message?: string | undefined }): void => void plans.push(n.message ?? "");
  client.on("notice", onNotice);
  try {
    await client.query("SET auto_explain.log_min_duration = 0");
    await client.query("SELECT * FROM roomcast_append_batch($1::jsonb, 60000)", [
      JSON.stringify(items),
    ]);
    await client.query("SET auto_explain.log_min_duration = -1");
  } finally {
    client.off("notice", onNotice);
  }
  return plans.join("\n");
}

// PostgreSQL only: a pool's connection lives for days, and PL/pgSQL would
// keep the plan it made for the append's statements while the tables were
// empty (sequential scans) long after they hold millions of rows
// (migration 6).
void it(
  "store - an append on a connection opened while the tables were empty plans for the tables as they are",
  { skip: !available },
  async () => {
    const local = await startPostgres();
    const url = await local.createDatabase("plans");
    const s = store(url);
    await s.open();
    await s.close();
    const early = new pg.Client({ connectionString: url });
    const filler = new pg.Client({ connectionString: url });
    await early.connect();
    await filler.connect();
    try {
      await early.query("LOAD 'auto_explain'");
      await early.query(
        "SET auto_explain.log_nested_statements = on; SET auto_explain.log_level = notice; SET client_min_messages = notice; SET auto_explain.log_min_duration = -1",
      );
      const item = (id: string): Record<string, unknown> => ({
        room: "room-1",
        id,
        sender: "s",
        sentAt: "2026-01-01T00:00:00.000Z",
        content: "x",
        epoch: "e",
      });
      for (let i = 0; i < 10; i++) {
        await early.query("SELECT * FROM roomcast_append_batch($1::jsonb, 60000)", [
          JSON.stringify([item(`early-${i}`)]),
        ]);
      }
      // What a busy room leaves behind: 200,000 unexpired dedup keys.
      await filler.query(
        `INSERT INTO dedup (room, message_id, seq, expires_at)
         SELECT 'room-' || (g % 100), 'fill-' || g, g, now() + interval '1 hour'
         FROM generate_series(1, 200000) g`,
      );
      const plans = await appendPlans(early, [item("late")]);
      assert.match(plans, /dedup/, "auto_explain reported the batch's statements");
      // The dedup lookup goes by key, not through every unexpired key.
      assert.match(plans, /Index (Only )?Scan using dedup_pkey on dedup/, plans);
      assert.doesNotMatch(plans, /(Seq|Bitmap Heap) Scan on dedup/, plans);
    } finally {
      await early.end();
      await filler.end();
      await local.close();
    }
  },
);
