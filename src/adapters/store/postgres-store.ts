// The shared durable store: PostgreSQL through a `pg` pool. Every node of a
// cluster points at the same database, so offsets, dedup and sessions hold
// across nodes. Each method is one statement (one round trip); append is one
// call of roomcast_append_batch, grouping concurrent appends (see
// postgres-append-batcher.ts, and postgres-migrations.ts for why it
// is atomic). `pg` returns int8 as text, parsed here with BigInt.
import { randomUUID } from "node:crypto";
import pg from "pg";
import type {
  AppendResult,
  HistoryPage,
  NewMessage,
  SessionRecord,
  SessionRoom,
  Store,
  StoreCapabilities,
  StoredMessage,
  TrimPolicy,
} from "../../ports/store.js";
import { AppendBatcher } from "./postgres-append-batcher.js";
import { postgresMigrations } from "./postgres-migrations.js";
import { decodeRooms, encodeRooms } from "./session-rooms.js";
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";
import { messageFromRow, type MessageColumns } from "./message-row.js";
import { toStoreError } from "./postgres-errors.js";
import { PrimaryPool } from "./postgres-primary.js";

export interface PostgresStoreOptions {
  /** One host, or several with target_session_attrs for failover (see postgres-primary.ts). */
  readonly url: string;
  readonly poolSize: number;
  /** How long a (room, messageId) is remembered after its first append (DEDUP_WINDOW). */
  readonly dedupWindowMs: number;
  /**
   * Server-side statement_timeout, also the connect timeout; the client gives
   * up a second later in case the server stops answering. Default 5000 ms.
   */
  readonly statementTimeoutMs?: number;
}

// Any fixed key works; every Roomcast process migrating one database takes it.
const MIGRATION_LOCK_KEY = "7290345001";

export class PostgresStore implements Store {
  readonly capabilities: StoreCapabilities = { durable: true, shared: true };
  readonly #url: string;
  readonly #poolSize: number;
  readonly #timeoutMs: number;
  #pool: PrimaryPool | undefined;
  readonly #batcher: AppendBatcher;
  #closed = false;

  constructor({ url, poolSize, dedupWindowMs, statementTimeoutMs = 5000 }: PostgresStoreOptions) {
    this.#url = url;
    this.#poolSize = poolSize;
    this.#timeoutMs = statementTimeoutMs;
    this.#batcher = new AppendBatcher(
      (text, params) => this.#query("append", text, params),
      dedupWindowMs,
    );
  }

  #ready(): PrimaryPool {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "postgres store is closed");
    if (this.#pool === undefined)
      throw new StoreError(StoreErrorCode.Unavailable, "postgres store is not open");
    return this.#pool;
  }

  async open(): Promise<void> {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "postgres store is closed");
    if (this.#pool !== undefined) return;
    const pool = this.#primaryPool({
      max: this.#poolSize,
      statement_timeout: this.#timeoutMs,
      query_timeout: this.#timeoutMs + 1000,
      keepAlive: true,
      application_name: "roomcast",
    });
    try {
      await this.#migrate(await pool.url());
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw toStoreError("migrate", err);
    }
    this.#pool = pool;
  }

  #primaryPool(config: Omit<pg.PoolConfig, "connectionString">): PrimaryPool {
    try {
      return new PrimaryPool(this.#url, { connectionTimeoutMillis: this.#timeoutMs, ...config });
    } catch (err) {
      throw new StoreError(StoreErrorCode.Failed, "POSTGRES_URL is not a PostgreSQL URL", {
        cause: err,
      });
    }
  }

  /**
   * Applies pending migrations on a connection of its own (no query timeout:
   * a migration may wait for another process's lock or take long). Used by
   * open() and by `npm run migrate`.
   */
  async migrate(): Promise<number[]> {
    const locator = this.#primaryPool({ max: 1 });
    try {
      return await this.#migrate(await locator.url());
    } catch (err) {
      throw toStoreError("migrate", err);
    } finally {
      await locator.end().catch(() => undefined);
    }
  }

  async #migrate(url: string): Promise<number[]> {
    const client = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: this.#timeoutMs,
      application_name: "roomcast-migrate",
    });
    client.on("error", () => undefined); // surfaced by the failing query instead
    try {
      await client.connect();
      return await migratePostgres(client);
    } catch (err) {
      throw toStoreError("migrate", err);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  append(room: string, message: NewMessage): Promise<AppendResult> {
    try {
      this.#ready();
    } catch (err) {
      return Promise.reject(toStoreError("append", err));
    }
    return this.#batcher.append(room, message);
  }

  async read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    // One statement, so head, oldest and the page come from one snapshot.
    const text = `
      SELECT r.head, r.epoch,
             (SELECT min(seq) FROM messages WHERE room = $1) AS oldest,
             m.seq, m.message_id, m.sender_id, m.sent_at, m.content, m.traceparent, m.tracestate,
             m.user_id
      FROM rooms r
      LEFT JOIN LATERAL (
        SELECT * FROM messages WHERE room = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3::int
      ) m ON true
      WHERE r.room = $1
      ORDER BY m.seq`;
    const params = [room, afterOffset.toString(), Math.max(0, Math.trunc(limit))];
    let { rows } = await this.#query<ReadRow>("read", text, params);
    if (rows.length === 0) {
      // First sight of the room: create its metadata so the epoch returned is
      // the one later appends use (a concurrent creator wins harmlessly).
      await this.#query(
        "read",
        "INSERT INTO rooms (room, head, epoch) VALUES ($1, 0, $2) ON CONFLICT (room) DO NOTHING",
        [room, randomUUID()],
      );
      ({ rows } = await this.#query<ReadRow>("read", text, params));
    }
    const first = rows[0];
    if (first === undefined)
      throw new StoreError(StoreErrorCode.Conflict, "postgres read found no room row");
    const head = BigInt(first.head);
    const messages: StoredMessage[] = [];
    for (const r of rows)
      if (r.seq !== null) messages.push(messageFromRow(room, BigInt(r.seq ?? "0"), r));
    return {
      messages,
      head,
      epoch: first.epoch,
      oldest: first.oldest === null ? head + 1n : BigInt(first.oldest),
    };
  }

  async createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    await this.#query(
      "createSession",
      `INSERT INTO sessions (member_id, user_id, token_hash, rooms, expires_at)
       VALUES ($1, $2, $3, $4::jsonb, $5)
       ON CONFLICT (member_id) DO UPDATE SET user_id = EXCLUDED.user_id,
         token_hash = EXCLUDED.token_hash, rooms = EXCLUDED.rooms, expires_at = EXCLUDED.expires_at`,
      [session.memberId, session.userId, tokenHash, encodeRooms(session.rooms), ms(expiresAt)],
    );
  }

  async resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined> {
    // Single use: the UPDATE locks the row; a concurrent resume of the same
    // hash waits, then re-checks `token_hash = $3` on the new row version,
    // which no longer matches, and updates nothing. Another user's row is
    // not touched.
    const { rows } = await this.#query<{ member_id: string; user_id: string; rooms: string }>(
      "resumeSession",
      `UPDATE sessions SET token_hash = $1, expires_at = $2
       WHERE token_hash = $3 AND expires_at > $4 AND user_id = $5
       RETURNING member_id, user_id, rooms::text AS rooms`,
      [newTokenHash, ms(expiresAt), tokenHash, ms(Date.now()), userId],
    );
    const row = rows[0];
    if (row === undefined) return undefined;
    try {
      return { memberId: row.member_id, userId: row.user_id, rooms: decodeRooms(row.rooms) };
    } catch (err) {
      throw toStoreError("resumeSession", err);
    }
  }

  async saveSession(
    memberId: string,
    rooms: readonly SessionRoom[],
    expiresAt: number,
  ): Promise<void> {
    await this.#query(
      "saveSession",
      `UPDATE sessions SET rooms = $1::jsonb, expires_at = $2
       WHERE member_id = $3 AND expires_at > $4`,
      [encodeRooms(rooms), ms(expiresAt), memberId, ms(Date.now())],
    );
  }

  async revokeUserSessions(userId: string): Promise<void> {
    await this.#query("revokeUserSessions", "DELETE FROM sessions WHERE user_id = $1", [userId]);
  }

  async trim(policy: TrimPolicy): Promise<number> {
    // Both trims cut a prefix of each room's history, so what is kept stays
    // contiguous (oldest..head) whatever the timestamps say.
    const bySize = await this.#query(
      "trim",
      `DELETE FROM messages m USING rooms r
       WHERE m.room = r.room AND m.seq <= r.head - $1::bigint`,
      [String(Math.max(0, Math.trunc(policy.maxPerRoom)))],
    );
    const byAge = await this.#query(
      "trim",
      `DELETE FROM messages m USING (
         SELECT room, max(seq) AS upto FROM messages
         WHERE stored_at <= now() - $1::bigint * interval '1 millisecond'
         GROUP BY room
       ) old
       WHERE m.room = old.room AND m.seq <= old.upto`,
      [String(Math.max(0, Math.trunc(policy.maxAgeMs)))],
    );
    await this.#query("trim", "DELETE FROM dedup WHERE expires_at <= now()", []);
    await this.#query("trim", "DELETE FROM sessions WHERE expires_at <= $1", [ms(Date.now())]);
    return (bySize.rowCount ?? 0) + (byAge.rowCount ?? 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pool = this.#pool;
    this.#pool = undefined;
    try {
      await pool?.end();
    } catch (err) {
      throw toStoreError("close", err);
    }
  }

  async #query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    what: string,
    text: string,
    params: readonly unknown[],
  ): Promise<pg.QueryResult<R>> {
    const pool = this.#ready();
    try {
      return await pool.query<R>(text, params as unknown[]);
    } catch (err) {
      throw toStoreError(what, err);
    }
  }
}

/** Applies pending migrations, one transaction under an advisory lock; returns the versions applied. */
export async function migratePostgres(client: pg.ClientBase): Promise<number[]> {
  const applied: number[] = [];
  await client.query("BEGIN");
  try {
    // Several processes starting together queue here; the later ones then see
    // the versions the first one recorded and apply nothing.
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>(
      "SELECT version FROM schema_migrations",
    );
    const done = new Set(rows.map((r) => r.version));
    for (const m of postgresMigrations) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

interface ReadRow extends MessageColumns {
  head: string;
  epoch: string;
  oldest: string | null;
  seq: string | null;
}

/** ms timestamps as int8 text: exact, whatever their size. */
function ms(value: number): string {
  return String(Math.trunc(value));
}
