// Applies the versioned Spanner schema (spanner-migrations.ts): creates the
// database when missing, then each pending version, recording it in
// SchemaMigrations. Spanner has no advisory lock and no transactional DDL, so
// safety with several nodes starting together comes from idempotence: every
// statement is IF NOT EXISTS, a version's record is an upsert, and a schema
// change refused because another one is running is retried. Two nodes may
// both submit version N; the second submission changes nothing.
import type { Database, Instance } from "@google-cloud/spanner";
import { setTimeout as delay } from "node:timers/promises";
import { spannerMigrations } from "./spanner-migrations.js";

export interface SpannerMigration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

const MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS SchemaMigrations (
  Version INT64 NOT NULL,
  Name STRING(MAX) NOT NULL,
  AppliedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
) PRIMARY KEY (Version)`;

// gRPC status codes the admin API answers with when the database exists
// already (6) or a concurrent schema change or transaction is in the way
// (9 FAILED_PRECONDITION, 10 ABORTED).
const ALREADY_EXISTS = 6;
const RETRYABLE = new Set([9, 10]);

function grpcCode(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "number"
    ? err.code
    : undefined;
}

/** Creates the database (with SchemaMigrations) unless it exists. */
async function ensureDatabase(instance: Instance, databaseId: string): Promise<void> {
  const [exists] = await instance.database(databaseId).exists();
  if (exists) return;
  try {
    const [, operation] = await instance.createDatabase(databaseId, {
      extraStatements: [MIGRATIONS_TABLE],
    });
    await operation.promise();
  } catch (err) {
    // Another node created it between our check and our request.
    if (grpcCode(err) !== ALREADY_EXISTS) throw err;
  }
}

/** Runs DDL, retrying while another schema change is in progress. */
async function updateSchema(database: Database, statements: readonly string[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const [operation] = await database.updateSchema([...statements]);
      await operation.promise();
      return;
    } catch (err) {
      const code = grpcCode(err);
      if (code === undefined || !RETRYABLE.has(code) || attempt >= 30) throw err;
      await delay(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
    }
  }
}

/** Applies pending migrations; returns the versions this call applied. */
export async function migrateSpanner(
  instance: Instance,
  databaseId: string,
  migrations: readonly SpannerMigration[] = spannerMigrations,
): Promise<number[]> {
  await ensureDatabase(instance, databaseId);
  const database = instance.database(databaseId);
  // A database created by someone else (e.g. an operator) may lack the table.
  // Checked first: even a no-op DDL is a schema change, which takes seconds
  // and, on the emulator, aborts every transaction running meanwhile.
  const [tables] = await database.run({
    sql: `SELECT table_name FROM information_schema.tables
          WHERE table_schema = '' AND table_name = 'SchemaMigrations'`,
    json: true,
  });
  if (tables.length === 0) await updateSchema(database, [MIGRATIONS_TABLE]);
  const [rows] = await database.run({
    sql: "SELECT CAST(Version AS STRING) AS Version FROM SchemaMigrations",
    json: true,
  });
  const done = new Set((rows as { Version: string }[]).map((r) => Number(r.Version)));
  const applied: number[] = [];
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    await updateSchema(database, m.statements);
    await database.table("SchemaMigrations").upsert({
      Version: String(m.version),
      Name: m.name,
      AppliedAt: "spanner.commit_timestamp()",
    });
    applied.push(m.version);
  }
  return applied;
}
