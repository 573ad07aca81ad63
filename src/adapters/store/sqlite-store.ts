// The embedded durable store: one SQLite file (better-sqlite3 v12), WAL mode.
// better-sqlite3 is synchronous, so each method runs start to finish without
// yielding; writes use BEGIN IMMEDIATE so several connections or processes on
// one file still assign offsets atomically.
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
  StoredMessage,
  TrimPolicy,
} from "../../ports/store.js";
import { decodeRooms, encodeRooms } from "./session-rooms.js";
import { sqliteMigrations } from "./sqlite-migrations.js";
import { StoreError } from "./store-error.js";

export interface SqliteStoreOptions {
  readonly path: string;
}

interface MessageRow {
  room: string;
  offset: bigint;
  message_id: string;
  sender_id: string;
  sent_at: string;
  content: string;
  traceparent: string | null;
  tracestate: string | null;
}

type Db = Database.Database;

export class SqliteStore implements Store {
  readonly capabilities: StoreCapabilities = { durable: true, shared: false };
  readonly #path: string;
  #db: Db | undefined;

  constructor({ path }: SqliteStoreOptions) {
    this.#path = path;
  }

  #open(): Db {
    if (this.#db === undefined) throw new StoreError("sqlite store is not open");
    return this.#db;
  }

  open(): Promise<void> {
    return run("open", () => {
      if (this.#path !== ":memory:") mkdirSync(dirname(this.#path), { recursive: true });
      const db = new Database(this.#path);
      db.defaultSafeIntegers(true);
      db.pragma("journal_mode = WAL");
      // NORMAL in WAL mode: a committed transaction survives a process crash
      // (kill -9); only an OS crash or power loss can lose the last commits.
      db.pragma("synchronous = NORMAL");
      db.pragma("busy_timeout = 5000");
      migrate(db);
      this.#db = db;
    });
  }

  /** Applies pending migrations (also used by `npm run migrate`). */
  migrate(): Promise<void> {
    return run("migrate", () => migrate(this.#open()));
  }

  append(room: string, message: NewMessage, dedupWindowMs: number): Promise<AppendResult> {
    return run("append", () => {
      const db = this.#open();
      const now = Date.now();
      const tx = db.transaction((): AppendResult => {
        const seen = db
          .prepare("SELECT offset FROM dedup WHERE room = ? AND message_id = ? AND expires_at > ?")
          .get(room, message.messageId, now) as { offset: bigint } | undefined;
        ensureRoom(db, room);
        if (seen !== undefined) {
          return { offset: seen.offset, duplicate: true, epoch: roomEpoch(db, room) };
        }
        const { head, epoch } = db
          .prepare("UPDATE rooms SET head = head + 1 WHERE room = ? RETURNING head, epoch")
          .get(room) as { head: bigint; epoch: string };
        db.prepare(
          `INSERT INTO messages (room, offset, message_id, sender_id, sent_at, content, traceparent, tracestate, stored_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          room,
          head,
          message.messageId,
          message.senderId,
          message.sentAt,
          message.content,
          message.traceparent ?? null,
          message.tracestate ?? null,
          now,
        );
        db.prepare(
          "INSERT OR REPLACE INTO dedup (room, message_id, offset, expires_at) VALUES (?, ?, ?, ?)",
        ).run(room, message.messageId, head, now + dedupWindowMs);
        return { offset: head, duplicate: false, epoch };
      });
      return tx.immediate();
    });
  }

  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    return run("read", () => {
      const db = this.#open();
      return db
        .transaction((): HistoryPage => {
          ensureRoom(db, room);
          const meta = db.prepare("SELECT head, epoch FROM rooms WHERE room = ?").get(room) as {
            head: bigint;
            epoch: string;
          };
          const oldest = (
            db.prepare("SELECT MIN(offset) AS o FROM messages WHERE room = ?").get(room) as {
              o: bigint | null;
            }
          ).o;
          const rows =
            limit > 0
              ? (db
                  .prepare(
                    "SELECT * FROM messages WHERE room = ? AND offset > ? ORDER BY offset LIMIT ?",
                  )
                  .all(room, afterOffset, limit) as MessageRow[])
              : [];
          return {
            messages: rows.map(toMessage),
            head: meta.head,
            epoch: meta.epoch,
            oldest: oldest ?? meta.head + 1n,
          };
        })
        .immediate();
    });
  }

  createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    return run("createSession", () => {
      this.#open()
        .prepare(
          "INSERT INTO sessions (member_id, user_id, token_hash, rooms, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .run(session.memberId, session.userId, tokenHash, encodeRooms(session.rooms), expiresAt);
    });
  }

  resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
  ): Promise<SessionRecord | undefined> {
    return run("resumeSession", () => {
      // One UPDATE ... RETURNING: the old hash matches at most once, ever.
      const row = this.#open()
        .prepare(
          `UPDATE sessions SET token_hash = ?, expires_at = ?
           WHERE token_hash = ? AND expires_at > ?
           RETURNING member_id, user_id, rooms`,
        )
        .get(newTokenHash, expiresAt, tokenHash, Date.now()) as
        { member_id: string; user_id: string; rooms: string } | undefined;
      if (row === undefined) return undefined;
      return { memberId: row.member_id, userId: row.user_id, rooms: decodeRooms(row.rooms) };
    });
  }

  saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number): Promise<void> {
    return run("saveSession", () => {
      this.#open()
        .prepare(
          "UPDATE sessions SET rooms = ?, expires_at = ? WHERE member_id = ? AND expires_at > ?",
        )
        .run(encodeRooms(rooms), expiresAt, memberId, Date.now());
    });
  }

  trim(policy: TrimPolicy, _dedupWindowMs: number): Promise<number> {
    return run("trim", () => {
      const db = this.#open();
      const now = Date.now();
      return db
        .transaction((): number => {
          let deleted = 0;
          const rooms = db.prepare("SELECT room, head FROM rooms").all() as {
            room: string;
            head: bigint;
          }[];
          const bySize = db.prepare("DELETE FROM messages WHERE room = ? AND offset <= ?");
          for (const r of rooms) {
            const cut = r.head - BigInt(policy.maxPerRoom);
            if (cut > 0n) deleted += bySize.run(r.room, cut).changes;
          }
          deleted += db
            .prepare("DELETE FROM messages WHERE stored_at <= ?")
            .run(now - policy.maxAgeMs).changes;
          db.prepare("DELETE FROM dedup WHERE expires_at <= ?").run(now);
          db.prepare("DELETE FROM sessions WHERE expires_at <= ?").run(now);
          return deleted;
        })
        .immediate();
    });
  }

  close(): Promise<void> {
    return run("close", () => {
      this.#db?.close();
      this.#db = undefined;
    });
  }
}

function ensureRoom(db: Db, room: string): void {
  db.prepare("INSERT OR IGNORE INTO rooms (room, head, epoch) VALUES (?, 0, ?)").run(
    room,
    randomUUID(),
  );
}

function roomEpoch(db: Db, room: string): string {
  return (db.prepare("SELECT epoch FROM rooms WHERE room = ?").get(room) as { epoch: string })
    .epoch;
}

function toMessage(r: MessageRow): StoredMessage {
  return {
    room: r.room,
    offset: r.offset,
    messageId: r.message_id,
    senderId: r.sender_id,
    sentAt: r.sent_at,
    content: r.content,
    ...(r.traceparent !== null && { traceparent: r.traceparent }),
    ...(r.tracestate !== null && { tracestate: r.tracestate }),
  };
}

function migrate(db: Db): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
  );
  db.transaction(() => {
    const applied = new Set(
      (db.prepare("SELECT version FROM schema_migrations").all() as { version: bigint }[]).map(
        (r) => Number(r.version),
      ),
    );
    for (const m of sqliteMigrations) {
      if (applied.has(m.version)) continue;
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    }
  }).immediate();
}

function run<T>(what: string, fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(
      err instanceof StoreError ? err : new StoreError(`sqlite ${what} failed`, { cause: err }),
    );
  }
}
