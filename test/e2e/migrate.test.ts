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
