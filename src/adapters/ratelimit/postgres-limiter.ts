// GCRA in PostgreSQL: one INSERT … ON CONFLICT DO UPDATE … RETURNING per
// check, using the database's clock. The upsert locks the key's row and its
// SET reads the latest committed tat, so concurrent checks from any number of
// nodes serialise on the row and never overshoot.
//
// The table `roomcast_rate_limits` belongs to this adapter alone (not to the
// store's migrations: the limiter can point at a database of its own): open()
// creates it with idempotent DDL under an advisory lock, so nodes starting
// together do not race on CREATE TABLE. Rows at rest (tat in the past) are
// deleted by a sweep every minute.
import { PrimaryPool } from "../store/postgres-primary.js";
import type {
  Clock,
  Decision,
  Rate,
  RateLimiter,
  RateLimiterCapabilities,
} from "../../ports/rate-limiter.js";

const DDL_LOCK = 0x726c696d; // "rlim"

const CREATE = `CREATE TABLE IF NOT EXISTS roomcast_rate_limits (
  key text PRIMARY KEY,
  tat double precision NOT NULL,
  allowed boolean NOT NULL
)`;

// $1 key, $2 interval, $3 burst, $4 now (NULL: the database clock). SET
// expressions all read the row as it was, so `allowed` and `tat` agree.
const TAKE = `WITH c AS (
  SELECT coalesce($4::float8, extract(epoch FROM clock_timestamp()) * 1000) AS now
)
INSERT INTO roomcast_rate_limits AS r (key, tat, allowed)
SELECT $1, c.now + $2::float8, true FROM c
ON CONFLICT (key) DO UPDATE SET
  allowed = greatest(r.tat, excluded.tat - $2::float8) + $2::float8 * (1 - $3::float8)
            <= excluded.tat - $2::float8,
  tat = CASE
    WHEN greatest(r.tat, excluded.tat - $2::float8) + $2::float8 * (1 - $3::float8)
         <= excluded.tat - $2::float8
    THEN greatest(r.tat, excluded.tat - $2::float8) + $2::float8
    ELSE r.tat END
RETURNING allowed, tat, (SELECT now FROM c) AS now`;

const REFUND = `UPDATE roomcast_rate_limits SET tat = tat - $2::float8 WHERE key = $1`;

const SWEEP = `DELETE FROM roomcast_rate_limits
WHERE tat < coalesce($1::float8, extract(epoch FROM clock_timestamp()) * 1000)`;

export interface PostgresLimiterOptions {
  readonly url: string;
  readonly poolSize?: number;
  readonly timeoutMs?: number;
  readonly sweepIntervalMs?: number;
  /** Test only: send this clock's time instead of using the database clock. */
  readonly now?: Clock;
}

export class PostgresLimiter implements RateLimiter {
  readonly capabilities: RateLimiterCapabilities = { shared: true };
  readonly #opts: PostgresLimiterOptions;
  #pool: PrimaryPool | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(opts: PostgresLimiterOptions) {
    this.#opts = opts;
  }

  async open(): Promise<void> {
    if (this.#pool !== undefined) return;
    const timeout = this.#opts.timeoutMs ?? 2000;
    // Several hosts in POSTGRES_URL: the limiter follows the primary like the store.
    const pool = new PrimaryPool(this.#opts.url, {
      max: this.#opts.poolSize ?? 4,
      connectionTimeoutMillis: timeout,
      statement_timeout: timeout,
      query_timeout: timeout + 500,
      keepAlive: true,
      application_name: "roomcast-ratelimit",
    });
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock($1)", [DDL_LOCK]);
      await client.query(CREATE);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      client.release();
      await pool.end();
      throw err;
    }
    client.release();
    this.#pool = pool;
    this.#sweeper = setInterval(
      () => void this.sweep().catch(() => undefined),
      this.#opts.sweepIntervalMs ?? 60_000,
    );
    this.#sweeper.unref();
  }

  #conn(): PrimaryPool {
    if (this.#pool === undefined) throw new Error("postgres limiter is not open");
    return this.#pool;
  }

  #nowArg(): number | null {
    return this.#opts.now === undefined ? null : this.#opts.now();
  }

  async take(key: string, rate: Rate): Promise<Decision> {
    const { rows } = await this.#conn().query<{ allowed: boolean; tat: number; now: number }>(
      TAKE,
      [key, rate.intervalMs, rate.burst, this.#nowArg()],
    );
    const row = rows[0];
    if (row === undefined) throw new Error("rate limit upsert returned no row");
    if (row.allowed) return { allowed: true, retryAfterMs: 0 };
    const allowAt = Math.max(row.tat, row.now) + rate.intervalMs * (1 - rate.burst);
    return { allowed: false, retryAfterMs: Math.max(allowAt - row.now, Number.MIN_VALUE) };
  }

  async refund(key: string, rate: Rate): Promise<void> {
    await this.#conn().query(REFUND, [key, rate.intervalMs]);
  }

  /** Deletes keys at rest; returns how many. */
  async sweep(): Promise<number> {
    const result = await this.#conn().query(SWEEP, [this.#nowArg()]);
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }
}
