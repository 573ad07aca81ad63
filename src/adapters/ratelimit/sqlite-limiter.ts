// GCRA in SQLite: the same single upsert as PostgreSQL, on a connection of
// its own to the store's database file, so processes sharing the file (one
// host) share the limits. SQLite runs one write at a time per file, so the
// upsert is atomic across connections and processes. The database's clock
// is the host's, which every process sharing the file shares: `now` is read
// from it (Date.now()) and bound into the statement.
//
// The table `roomcast_rate_limits` belongs to this adapter and is created by
// open() (CREATE TABLE IF NOT EXISTS; idempotent, safe to race). Rows at rest
// are deleted by a sweep every minute.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type {
  Clock,
  Decision,
  Rate,
  RateLimiter,
  RateLimiterCapabilities,
} from "../../ports/rate-limiter.js";

const CREATE = `CREATE TABLE IF NOT EXISTS roomcast_rate_limits (
  key TEXT PRIMARY KEY,
  tat REAL NOT NULL,
  allowed INTEGER NOT NULL
) WITHOUT ROWID`;

// SET expressions all read the row as it was, so `allowed` and `tat` agree.
const TAKE = `INSERT INTO roomcast_rate_limits AS r (key, tat, allowed)
VALUES (@key, @now + @interval, 1)
ON CONFLICT (key) DO UPDATE SET
  allowed = max(r.tat, @now) + @interval * (1 - @burst) <= @now,
  tat = CASE
    WHEN max(r.tat, @now) + @interval * (1 - @burst) <= @now
    THEN max(r.tat, @now) + @interval
    ELSE r.tat END
RETURNING allowed, tat`;

export interface SqliteLimiterOptions {
  readonly path: string;
  readonly sweepIntervalMs?: number;
  /** Test only: use this clock instead of the host's. */
  readonly now?: Clock;
}

interface TakeRow {
  allowed: number;
  tat: number;
}

export class SqliteLimiter implements RateLimiter {
  readonly capabilities: RateLimiterCapabilities = { shared: false };
  readonly #opts: SqliteLimiterOptions;
  #db: Database.Database | undefined;
  #take: Database.Statement | undefined;
  #refund: Database.Statement | undefined;
  #sweep: Database.Statement | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(opts: SqliteLimiterOptions) {
    this.#opts = opts;
  }

  open(): Promise<void> {
    if (this.#db !== undefined) return Promise.resolve();
    const path = this.#opts.path;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = NORMAL");
      db.pragma("busy_timeout = 5000");
      db.exec(CREATE);
      this.#take = db.prepare(TAKE);
      this.#refund = db.prepare(
        "UPDATE roomcast_rate_limits SET tat = tat - @interval WHERE key = @key",
      );
      this.#sweep = db.prepare("DELETE FROM roomcast_rate_limits WHERE tat < @now");
    } catch (err) {
      db.close();
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.#db = db;
    this.#sweeper = setInterval(() => {
      try {
        this.sweep();
      } catch {
        // a busy database: the next sweep catches up
      }
    }, this.#opts.sweepIntervalMs ?? 60_000);
    this.#sweeper.unref();
    return Promise.resolve();
  }

  #stmt(s: Database.Statement | undefined): Database.Statement {
    if (s === undefined) throw new Error("sqlite limiter is not open");
    return s;
  }

  take(key: string, rate: Rate): Promise<Decision> {
    try {
      const now = this.now();
      const row = this.#stmt(this.#take).get({
        key,
        interval: rate.intervalMs,
        burst: rate.burst,
        now,
      }) as TakeRow | undefined;
      if (row === undefined) throw new Error("rate limit upsert returned no row");
      if (row.allowed === 1) return Promise.resolve({ allowed: true, retryAfterMs: 0 });
      const allowAt = Math.max(row.tat, now) + rate.intervalMs * (1 - rate.burst);
      return Promise.resolve({
        allowed: false,
        retryAfterMs: Math.max(allowAt - now, Number.MIN_VALUE),
      });
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  refund(key: string, rate: Rate): Promise<void> {
    try {
      this.#stmt(this.#refund).run({ key, interval: rate.intervalMs });
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Deletes keys at rest; returns how many. */
  sweep(): number {
    return this.#stmt(this.#sweep).run({ now: this.now() }).changes;
  }

  /** The limiter's clock (the host's, or the test clock). */
  now(): number {
    return this.#opts.now?.() ?? Date.now();
  }

  close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}
