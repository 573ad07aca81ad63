// A private PostgreSQL primary with a streaming standby, for failover tests:
// initdb for the primary, pg_basebackup -R from it for the standby, both with
// the harness's pg_ctl (binaries from `pg_config --bindir`). With `synchronous`
// the primary waits for the standby to have each commit before it answers
// (synchronous_standby_names = '*'), so whatever was acknowledged before the
// primary dies is on the standby that gets promoted.
import pg from "pg";
import { binDir, PrivatePostgres } from "./postgres.js";
import { eventually } from "./eventually.js";

export interface ReplicatedPostgres {
  readonly primary: PrivatePostgres;
  readonly standby: PrivatePostgres;
  /** postgres://…@primary,standby/roomcast?target_session_attrs=read-write */
  readonly url: string;
  /** Kills the primary (immediate stop, no checkpoint) and promotes the standby. */
  failover(): Promise<void>;
  close(): Promise<void>;
}

/** Whether a replicated pair can be made: private binaries (an external server cannot). */
export function replicatedPostgresAvailable(): boolean {
  return process.env["ROOMCAST_TEST_POSTGRES_URL"] === undefined && binDir() !== undefined;
}

export async function startReplicatedPostgres({
  synchronous = true,
}: { synchronous?: boolean } = {}): Promise<ReplicatedPostgres> {
  const bin = binDir();
  if (bin === undefined) throw new Error("PostgreSQL binaries (initdb, pg_ctl) not found");
  const primary = new PrivatePostgres(bin);
  const standby = new PrivatePostgres(bin);
  try {
    await primary.init();
    await standby.initStandby(primary);
    if (synchronous) {
      // Set after the copy, so it applies to the primary only: the promoted
      // standby, alone then, must not wait for a standby of its own.
      await primary.admin("ALTER SYSTEM SET synchronous_standby_names = '*'");
      await primary.admin("SELECT pg_reload_conf()");
    }
    await eventually(
      async () => {
        const state = await replicationState(primary.port);
        return state === (synchronous ? "sync" : "async");
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
  } catch (err) {
    await standby.close();
    await primary.close();
    throw err;
  }
  return {
    primary,
    standby,
    url:
      `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/roomcast` +
      "?target_session_attrs=read-write",
    async failover() {
      await primary.stop("immediate");
      await standby.promote();
    },
    async close() {
      await standby.close();
      await primary.close();
    },
  };
}

/** The standby's sync_state as the primary reports it ("sync", "async"), if it is streaming. */
async function replicationState(port: number): Promise<string | undefined> {
  const client = new pg.Client({
    connectionString: `postgres://postgres@127.0.0.1:${port}/postgres`,
  });
  await client.connect();
  try {
    const { rows } = await client.query<{ sync_state: string }>(
      "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'",
    );
    return rows[0]?.sync_state;
  } finally {
    await client.end();
  }
}
