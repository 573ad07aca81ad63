// A `pg` pool on whichever host of POSTGRES_URL is the primary, for failover
// without a proxy (see postgres-hosts.ts for why it is done here). With one
// host it is a plain pool. With several it finds a host that matches
// target_session_attrs (tried in order, like libpq), pools connections to it,
// and looks again after a failure that says the primary may have moved: the
// connection refused or cut, the server shutting down or starting, or a
// write refused as read-only (25006: an old primary back as a standby).
//
// A failed call is not retried here: the caller sees the error (the store
// guard counts it, a client retries its publish with the same message id,
// which the store de-duplicates), and the next call goes to the new primary.
// Nothing is lost by this step itself; what a promotion can lose depends on
// replication (synchronous_standby_names, see docs/operations.md).
import pg from "pg";
import { parsePostgresHosts, type SessionAttrs } from "./postgres-hosts.js";
import { postgresErrorCode } from "./postgres-errors.js";
import { StoreErrorCode } from "../../ports/store-error.js";

export type PrimaryPoolConfig = Omit<pg.PoolConfig, "connectionString">;

export class PrimaryNotFoundError extends Error {
  override readonly name = "PrimaryNotFoundError";
}

export class PrimaryPool {
  readonly #urls: readonly string[];
  readonly #attrs: SessionAttrs;
  readonly #config: PrimaryPoolConfig;
  readonly #onSwitch: ((url: string) => void) | undefined;
  #pool: pg.Pool | undefined;
  #poolUrl: string | undefined;
  #locating: Promise<pg.Pool> | undefined;
  #stale = false;
  #ended = false;

  constructor(url: string, config: PrimaryPoolConfig, onSwitch?: (url: string) => void) {
    const { urls, targetSessionAttrs } = parsePostgresHosts(url);
    this.#urls = urls;
    this.#attrs = targetSessionAttrs;
    this.#config = config;
    this.#onSwitch = onSwitch;
  }

  /** Whether more than one host was given (failover is possible). */
  get multiHost(): boolean {
    return this.#urls.length > 1;
  }

  /** The single-host URL of the current primary, found first when needed (e.g. for migrations). */
  async url(): Promise<string> {
    await this.#current();
    return this.#poolUrl ?? this.#urls[0] ?? "";
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const pool = await this.#current();
    try {
      return await pool.query<R>(text, params);
    } catch (err) {
      this.#suspect(pool, err);
      throw err;
    }
  }

  async connect(): Promise<pg.PoolClient> {
    const pool = await this.#current();
    try {
      return await pool.connect();
    } catch (err) {
      this.#suspect(pool, err);
      throw err;
    }
  }

  async end(): Promise<void> {
    this.#ended = true;
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  #current(): Promise<pg.Pool> {
    if (this.#ended) return Promise.reject(new Error("Cannot use a pool after calling end"));
    if (this.#pool !== undefined && !this.#stale) return Promise.resolve(this.#pool);
    this.#locating ??= this.#locate().finally(() => {
      this.#locating = undefined;
    });
    return this.#locating;
  }

  /** After a failure: when it may mean the primary moved, the next call looks again. */
  #suspect(pool: pg.Pool, err: unknown): void {
    if (!this.multiHost || pool !== this.#pool) return;
    const readOnly = err instanceof pg.DatabaseError && err.code === "25006";
    if (readOnly || postgresErrorCode(err) === StoreErrorCode.Unavailable) this.#stale = true;
  }

  async #locate(): Promise<pg.Pool> {
    let url = this.#urls[0] ?? "";
    if (this.multiHost) {
      url = await this.#find();
    }
    const old = this.#pool;
    if (old !== undefined && url === this.#poolUrl) {
      this.#stale = false;
      return old;
    }
    const pool = new pg.Pool({ ...this.#config, connectionString: url });
    // An idle client whose server went away emits here; without a listener
    // the process would crash. The pool drops it and the next call reconnects.
    pool.on("error", () => undefined);
    this.#pool = pool;
    this.#poolUrl = url;
    this.#stale = false;
    if (old !== undefined) {
      this.#onSwitch?.(url);
      old.end().catch(() => undefined);
    }
    return pool;
  }

  /** The first host, in order, that accepts a connection and matches target_session_attrs. */
  async #find(): Promise<string> {
    const failures: unknown[] = [];
    for (const url of this.#urls) {
      const client = new pg.Client({
        connectionString: url,
        connectionTimeoutMillis: this.#config.connectionTimeoutMillis ?? 5000,
        query_timeout: this.#config.connectionTimeoutMillis ?? 5000,
        application_name: "roomcast-locate",
      });
      client.on("error", () => undefined);
      try {
        await client.connect();
        if (await matches(client, this.#attrs)) return url;
        failures.push(new Error(`${hostOf(url)} is not ${this.#attrs}`));
      } catch (err) {
        failures.push(err);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    // postgresErrorCode maps it to unavailable, like a refused connection.
    throw new PrimaryNotFoundError(`no host of POSTGRES_URL is ${this.#attrs}`, {
      cause: new AggregateError(failures),
    });
  }
}

async function matches(client: pg.Client, attrs: SessionAttrs): Promise<boolean> {
  if (attrs === "any") return true;
  const { rows } = await client.query<{ recovery: boolean; read_only: string }>(
    "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS read_only",
  );
  const row = rows[0];
  if (row === undefined || row.recovery) return false;
  return attrs === "primary" || row.read_only === "off";
}

function hostOf(url: string): string {
  return new URL(url).host;
}
