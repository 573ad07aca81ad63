// The embedded durable store: one SQLite file (better-sqlite3 v12), WAL mode.
// better-sqlite3 is synchronous, so each method runs start to finish without
// yielding; writes use BEGIN IMMEDIATE so several connections or processes on
// one file still assign offsets atomically. Appends made in one event-loop
// turn commit together (see append).
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import type {
  AppendResult,
  HistoryPage,
  NewMessage,
  SessionRecord,
  SessionRoom,
  Store,
  StoreCapabilities,
  TrimPolicy,
} from "../../ports/store.js";
import { decodeRooms, encodeRooms } from "./session-rooms.js";
import { sqliteMigrations } from "./sqlite-migrations.js";
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";
import { messageFromRow, type MessageColumns } from "./message-row.js";
import type { PendingAppend } from "./group-commit.js";

export interface SqliteStoreOptions {
  /** The database file; missing folders are created. `:memory:` for a private in-memory database. */
  readonly path: string;
  /** How long a (room, messageId) is remembered after its first append (DEDUP_WINDOW). */
  readonly dedupWindowMs: number;
}

interface MessageRow extends MessageColumns {
  room: string;
  offset: bigint;
}

type Db = Database.Database;

/** Every statement the store runs, prepared once per connection. */
class Statements {
  readonly dedup;
  readonly ensureRoom;
  readonly meta;
  readonly bump;
  readonly insertMessage;
  readonly upsertDedup;
  readonly oldest;
  readonly page;
  readonly createSession;
  readonly resumeSession;
  readonly saveSession;
  readonly revokeUserSessions;
  readonly roomsToCut;
  readonly roomsAged;
  readonly cutRoom;
  readonly sweepDedup;
  readonly sweepSessions;

  constructor(db: Db) {
    // Primary key (room, message_id) of dedup.
    this.dedup = db.prepare<[string, string, number], { offset: bigint }>(
      "SELECT offset FROM dedup WHERE room = ? AND message_id = ? AND expires_at > ?",
    );
    this.ensureRoom = db.prepare<[string, string]>(
      "INSERT OR IGNORE INTO rooms (room, head, epoch) VALUES (?, 0, ?)",
    );
    this.meta = db.prepare<[string], { head: bigint; epoch: string }>(
      "SELECT head, epoch FROM rooms WHERE room = ?",
    );
    this.bump = db.prepare<[string], { head: bigint; epoch: string }>(
      "UPDATE rooms SET head = head + 1 WHERE room = ? RETURNING head, epoch",
    );
    this.insertMessage = db.prepare<
      [
        string,
        bigint,
        string,
        string,
        string,
        string,
        string | null,
        string | null,
        string | null,
        number,
      ]
    >(
      `INSERT INTO messages (room, offset, message_id, sender_id, sent_at, content, traceparent, tracestate, user_id, stored_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    // Replaces an expired key for the same id: its window has passed.
    this.upsertDedup = db.prepare<[string, string, bigint, number]>(
      "INSERT OR REPLACE INTO dedup (room, message_id, offset, expires_at) VALUES (?, ?, ?, ?)",
    );
    // Primary key (room, offset) of messages, for these two.
    this.oldest = db.prepare<[string], { o: bigint | null }>(
      "SELECT MIN(offset) AS o FROM messages WHERE room = ?",
    );
    this.page = db.prepare<[string, bigint, number], MessageRow>(
      "SELECT * FROM messages WHERE room = ? AND offset > ? ORDER BY offset LIMIT ?",
    );
    this.createSession = db.prepare<[string, string, string, string, number]>(
      `INSERT INTO sessions (member_id, user_id, token_hash, rooms, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (member_id) DO UPDATE SET user_id = excluded.user_id,
         token_hash = excluded.token_hash, rooms = excluded.rooms, expires_at = excluded.expires_at`,
    );
    // One UPDATE ... RETURNING under the write lock: the old hash matches at most once, ever.
    this.resumeSession = db.prepare<
      [string, number, string, number, string],
      { member_id: string; user_id: string; rooms: string }
    >(
      `UPDATE sessions SET token_hash = ?, expires_at = ?
       WHERE token_hash = ? AND expires_at > ? AND user_id = ?
       RETURNING member_id, user_id, rooms`,
    );
    this.saveSession = db.prepare<[string, number, string, number]>(
      "UPDATE sessions SET rooms = ?, expires_at = ? WHERE member_id = ? AND expires_at > ?",
    );
    // Index sessions_user_id.
    this.revokeUserSessions = db.prepare<[string]>("DELETE FROM sessions WHERE user_id = ?");
    // Rooms holding more than maxPerRoom messages (one primary-key probe per room).
    this.roomsToCut = db.prepare<[bigint, bigint], { room: string; upto: bigint }>(
      `SELECT r.room, r.head - ? AS upto FROM rooms r
       WHERE r.head - ? >= (SELECT MIN(offset) FROM messages m WHERE m.room = r.room)`,
    );
    // Index messages_stored_at: the newest expired message of each room.
    this.roomsAged = db.prepare<[number], { room: string; upto: bigint }>(
      "SELECT room, MAX(offset) AS upto FROM messages WHERE stored_at <= ? GROUP BY room",
    );
    this.cutRoom = db.prepare<[string, bigint]>(
      "DELETE FROM messages WHERE room = ? AND offset <= ?",
    );
    this.sweepDedup = db.prepare<[number]>("DELETE FROM dedup WHERE expires_at <= ?");
    this.sweepSessions = db.prepare<[number]>("DELETE FROM sessions WHERE expires_at <= ?");
  }
}

export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { durable: true, shared: false };
  readonly #path: string;
  readonly #dedupWindowMs: number;
  #db: Db | undefined;
  #stmts: Statements | undefined;
  #closed = false;
  /** Appends waiting for the end of this turn (see append). */
  #pending: PendingAppend[] = [];

  constructor({ path, dedupWindowMs }: SqliteStoreOptions) {
    this.#path = path;
    this.#dedupWindowMs = dedupWindowMs;
  }

  #ready(): [Db, Statements] {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "sqlite store is closed");
    if (this.#db === undefined || this.#stmts === undefined)
      throw new StoreError(StoreErrorCode.Unavailable, "sqlite store is not open");
    return [this.#db, this.#stmts];
  }

  open(): Promise<void> {
    return run("open", () => {
      if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "sqlite store is closed");
      if (this.#db !== undefined) return;
      const db = connect(this.#path);
      try {
        migrate(db);
        this.#stmts = new Statements(db);
      } catch (err) {
        db.close();
        throw err;
      }
      this.#db = db;
    });
  }

  /**
   * Appends wait for the end of the event-loop turn and commit together, in
   * call order, as one transaction: one write-lock round and one WAL commit
   * for every append made in that turn. One transaction per append wrote its
   * pages to the WAL each time, which is what bounded a room at about 5,000
   * appends/s of server CPU (docs/benchmarks.md).
   */
  append(room: string, message: NewMessage): Promise<AppendResult> {
    try {
      this.#ready();
    } catch (err) {
      return Promise.reject(wrap("append", err));
    }
    return new Promise((resolve, reject) => {
      this.#pending.push({ room, message, resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#commitPending());
    });
  }

  #commitPending(): void {
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let results: AppendResult[];
    try {
      results = this.#appendAll(batch);
    } catch (err) {
      // The whole group rolled back: each append on its own, so one that
      // cannot be stored does not fail the others.
      if (batch.length === 1) {
        batch[0]!.reject(wrap("append", err));
        return;
      }
      for (const p of batch) {
        try {
          p.resolve(this.#appendAll([p])[0]!);
        } catch (e) {
          p.reject(wrap("append", e));
        }
      }
      return;
    }
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(results[i]!);
  }

  #appendAll(batch: readonly PendingAppend[]): AppendResult[] {
    const [db, s] = this.#ready();
    const now = Date.now();
    // BEGIN IMMEDIATE takes the file's write lock before the dedup checks, so
    // check, head + 1 and inserts are one step for every connection and
    // process on the file; others wait (busy_timeout) for the lock. Within
    // the group each append sees the ones before it (a repeated id is a
    // duplicate of the first).
    return db
      .transaction((): AppendResult[] =>
        batch.map(({ room, message }): AppendResult => {
          const seen = s.dedup.get(room, message.messageId, now);
          s.ensureRoom.run(room, randomUUID());
          if (seen !== undefined) {
            const meta = s.meta.get(room);
            return { offset: seen.offset, duplicate: true, epoch: meta?.epoch ?? "" };
          }
          const bumped = s.bump.get(room);
          if (bumped === undefined)
            throw new StoreError(StoreErrorCode.Conflict, "sqlite append found no room row");
          s.insertMessage.run(
            room,
            bumped.head,
            message.messageId,
            message.senderId,
            message.sentAt,
            message.content,
            message.traceparent ?? null,
            message.tracestate ?? null,
            message.userId ?? null,
            now,
          );
          s.upsertDedup.run(room, message.messageId, bumped.head, now + this.#dedupWindowMs);
          return { offset: bumped.head, duplicate: false, epoch: bumped.epoch };
        }),
      )
      .immediate();
  }

  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    return run("read", () => {
      const [db, s] = this.#ready();
      // Creating a missing room is the only write; it needs no snapshot.
      if (s.meta.get(room) === undefined) s.ensureRoom.run(room, randomUUID());
      // A deferred (read) transaction: head, oldest and the page from one WAL
      // snapshot, without taking the write lock from appenders.
      return db.transaction((): HistoryPage => {
        const meta = s.meta.get(room);
        if (meta === undefined)
          throw new StoreError(StoreErrorCode.Conflict, "sqlite read found no room row");
        const oldest = s.oldest.get(room)?.o ?? null;
        const rows = limit > 0 ? s.page.all(room, afterOffset, limit) : [];
        return {
          messages: rows.map((r) => messageFromRow(r.room, r.offset, r)),
          head: meta.head,
          epoch: meta.epoch,
          oldest: oldest ?? meta.head + 1n,
        };
      })();
    });
  }

  createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    return run("createSession", () => {
      const [, s] = this.#ready();
      s.createSession.run(
        session.memberId,
        session.userId,
        tokenHash,
        encodeRooms(session.rooms),
        expiresAt,
      );
    });
  }

  resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined> {
    return run("resumeSession", () => {
      const [, s] = this.#ready();
      const row = s.resumeSession.get(newTokenHash, expiresAt, tokenHash, Date.now(), userId);
      if (row === undefined) return undefined;
      return { memberId: row.member_id, userId: row.user_id, rooms: decodeRooms(row.rooms) };
    });
  }

  saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number): Promise<void> {
    return run("saveSession", () => {
      const [, s] = this.#ready();
      s.saveSession.run(encodeRooms(rooms), expiresAt, memberId, Date.now());
    });
  }

  revokeUserSessions(userId: string): Promise<void> {
    return run("revokeUserSessions", () => {
      const [, s] = this.#ready();
      s.revokeUserSessions.run(userId);
    });
  }

  trim(policy: TrimPolicy): Promise<number> {
    return run("trim", () => {
      const [db, s] = this.#ready();
      const now = Date.now();
      return db
        .transaction((): number => {
          let deleted = 0;
          // Both trims cut a prefix of each room's history, so what is kept
          // stays contiguous (oldest..head) whatever the timestamps say.
          const keep = BigInt(Math.max(0, Math.trunc(policy.maxPerRoom)));
          for (const r of s.roomsToCut.all(keep, keep)) {
            deleted += s.cutRoom.run(r.room, r.upto).changes;
          }
          for (const r of s.roomsAged.all(now - policy.maxAgeMs)) {
            deleted += s.cutRoom.run(r.room, r.upto).changes;
          }
          s.sweepDedup.run(now);
          s.sweepSessions.run(now);
          return deleted;
        })
        .immediate();
    });
  }

  close(): Promise<void> {
    return run("close", () => {
      // Appends already made are committed (or fail) before the file closes.
      if (!this.#closed && this.#db !== undefined) this.#commitPending();
      this.#closed = true;
      this.#stmts = undefined;
      this.#db?.close();
      this.#db = undefined;
    });
  }
}

function connect(path: string): Db {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.defaultSafeIntegers(true);
    db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode: a committed transaction survives a process crash
    // (kill -9); only an OS crash or power loss can lose the last commits.
    db.pragma("synchronous = NORMAL");
    // Other connections (stores, processes) hold the write lock for
    // microseconds per append; wait for it instead of failing with SQLITE_BUSY.
    db.pragma("busy_timeout = 5000");
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Applies pending migrations in one write transaction; returns the versions applied. */
function migrate(db: Db): number[] {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
  );
  // IMMEDIATE: two processes opening a new file together apply each version once.
  return db
    .transaction((): number[] => {
      const applied = new Set(
        (db.prepare("SELECT version FROM schema_migrations").all() as { version: bigint }[]).map(
          (r) => Number(r.version),
        ),
      );
      const done: number[] = [];
      for (const m of sqliteMigrations) {
        if (applied.has(m.version)) continue;
        db.exec(m.sql);
        db.prepare(
          "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        ).run(m.version, m.name, new Date().toISOString());
        done.push(m.version);
      }
      return done;
    })
    .immediate();
}

function run<T>(what: string, fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(wrap(what, err));
  }
}

/** The driver's error as a StoreError, coded by SQLite's (extended) result code. */
function wrap(what: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = err instanceof Database.SqliteError ? err.code : "";
  return new StoreError(
    sqliteErrorCode(code),
    `sqlite ${what} failed${code === "" ? "" : ` (${code})`}`,
    { cause: err },
  );
}

function sqliteErrorCode(code: string): StoreErrorCode {
  // Another connection held the write lock past busy_timeout, or the file
  // can't be opened (folder gone, permissions): retrying later may work.
  if (/^SQLITE_(BUSY|LOCKED|CANTOPEN)/.test(code)) return StoreErrorCode.Unavailable;
  // A constraint the statements expected to hold did not (e.g. a unique key).
  if (code.startsWith("SQLITE_CONSTRAINT")) return StoreErrorCode.Conflict;
  return StoreErrorCode.Failed;
}
