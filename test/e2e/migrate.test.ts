// `npm run migrate` (dist/src/migrate.js) applies the schema and exits; a bad
// configuration stops it with a message naming the variable.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { Spanner } from "@google-cloud/spanner";
import { useEmulator } from "../../src/adapters/store/spanner-store.js";
import { spannerMigrations } from "../../src/adapters/store/spanner-migrations.js";
import { spannerEmulatorAvailable, startSpannerEmulator } from "../helpers/spanner.js";

const run = promisify(execFile);
const MIGRATE = fileURLToPath(new URL("../../src/migrate.js", import.meta.url));

test("migrate - applies every SQLite migration to a new file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "roomcast-migrate-"));
  try {
    const path = join(dir, "sub", "m.db");
    await run(process.execPath, [MIGRATE], {
      env: {
        PATH: process.env["PATH"] ?? "",
        STORE: "sqlite",
        SQLITE_PATH: path,
        LOG_LEVEL: "silent",
      },
    });
    const db = new Database(path, { readonly: true });
    const versions = db.prepare("SELECT version FROM schema_migrations ORDER BY version").all() as {
      version: number;
    }[];
    db.close();
    assert.ok(versions.length >= 1);
    assert.equal(versions[0]?.version, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("migrate - a bad configuration exits 1 naming the variable", async () => {
  await assert.rejects(
    run(process.execPath, [MIGRATE], {
      env: { PATH: process.env["PATH"] ?? "", STORE: "postgres" },
    }),
    (err: { code?: number; stderr?: string }) =>
      err.code === 1 && (err.stderr ?? "").includes("POSTGRES_URL"),
  );
});

test(
  "migrate - two Spanner migrations at once create the missing database and apply each version once",
  { skip: !spannerEmulatorAvailable() },
  async () => {
    const emulator = await startSpannerEmulator();
    try {
      const id = emulator.databaseId("migrate");
      const env = {
        PATH: process.env["PATH"] ?? "",
        LOG_LEVEL: "silent",
        // Only the contract's names: the node sets the emulator's own settings itself.
        ...emulator.env(id),
      };
      await Promise.all([
        run(process.execPath, [MIGRATE], { env }),
        run(process.execPath, [MIGRATE], { env }),
      ]);
      await run(process.execPath, [MIGRATE], { env });
      useEmulator(emulator.host);
      const spanner = new Spanner({ projectId: emulator.projectId });
      try {
        const db = spanner.instance(emulator.instanceId).database(id);
        const [rows] = await db.run({
          sql: "SELECT CAST(Version AS STRING) AS Version FROM SchemaMigrations ORDER BY Version",
          json: true,
        });
        assert.deepEqual(
          (rows as { Version: string }[]).map((r) => Number(r.Version)),
          spannerMigrations.map((m) => m.version),
        );
        await db.close();
      } finally {
        await spanner.close();
      }
    } finally {
      await emulator.close();
    }
  },
);

test("migrate - STORE=spanner without its settings exits 1 naming them", async () => {
  await assert.rejects(
    run(process.execPath, [MIGRATE], {
      env: { PATH: process.env["PATH"] ?? "", STORE: "spanner", SPANNER_PROJECT: "p" },
    }),
    (err: { code?: number; stderr?: string }) =>
      err.code === 1 &&
      (err.stderr ?? "").includes("SPANNER_INSTANCE") &&
      (err.stderr ?? "").includes("SPANNER_DATABASE"),
  );
});
