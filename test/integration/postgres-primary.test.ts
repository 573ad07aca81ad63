// The multi-host pool on a real primary and streaming standby: hosts tried in
// order, target_session_attrs deciding which one is taken, and the pool
// moving to the promoted standby after the primary dies.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PrimaryPool } from "../../src/adapters/store/postgres-primary.js";
import { postgresErrorCode } from "../../src/adapters/store/postgres-errors.js";
import { StoreErrorCode } from "../../src/ports/store-error.js";
import { eventually } from "../helpers/eventually.js";
import {
  replicatedPostgresAvailable,
  startReplicatedPostgres,
  type ReplicatedPostgres,
} from "../helpers/postgres-replicated.js";

const skip = !replicatedPostgresAvailable();

describe("postgres primary pool", { skip }, () => {
  let pair: ReplicatedPostgres;
  const pools: PrimaryPool[] = [];
  before(async () => {
    // Synchronous, so the table made before the failover is on the standby.
    pair = await startReplicatedPostgres({ synchronous: true });
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    await pair?.close();
  });

  const hosts = (...ports: number[]) => ports.map((p) => `127.0.0.1:${p}`).join(",");
  const pool = (url: string) => {
    const p = new PrimaryPool(url, { max: 2, connectionTimeoutMillis: 1000 });
    pools.push(p);
    return p;
  };
  const inRecovery = async (p: PrimaryPool) =>
    (await p.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r")).rows[0]?.r;

  test("postgres primary pool - read-write skips a standby listed first", async () => {
    const p = pool(
      `postgres://postgres@${hosts(pair.standby.port, pair.primary.port)}/roomcast?target_session_attrs=read-write`,
    );
    assert.equal(await inRecovery(p), false);
    assert.equal(await p.url(), `postgres://postgres@127.0.0.1:${pair.primary.port}/roomcast`);
  });

  test("postgres primary pool - any takes the first host that answers", async () => {
    const p = pool(`postgres://postgres@${hosts(pair.standby.port, pair.primary.port)}/roomcast`);
    assert.equal(await inRecovery(p), true);
  });

  test("postgres primary pool - follows the promoted standby after the primary dies", async () => {
    const p = pool(pair.url);
    await p.query("CREATE TABLE IF NOT EXISTS t (x int)");
    await pair.failover();
    // The first call after the kill fails as unavailable; a later one reaches the new primary.
    const failure = await p.query("INSERT INTO t VALUES (1)").then(
      () => undefined,
      (err: unknown) => err,
    );
    if (failure !== undefined) assert.equal(postgresErrorCode(failure), StoreErrorCode.Unavailable);
    await eventually(
      async () => {
        await p.query("INSERT INTO t VALUES (2)");
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    assert.equal(await p.url(), `postgres://postgres@127.0.0.1:${pair.standby.port}/roomcast`);
    assert.equal(await inRecovery(p), false);
  });
});
