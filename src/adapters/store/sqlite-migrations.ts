// Versioned SQLite schema. Append new versions; never edit an applied one.
import type { Migration } from "./migration.js";

export type { Migration };

export const sqliteMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "rooms, messages, dedup, sessions",
    sql: `
      -- One row per room: its head and epoch outlive trimmed messages.
      CREATE TABLE rooms (
        room       TEXT PRIMARY KEY,
        head       INTEGER NOT NULL,
        epoch      TEXT NOT NULL
      ) WITHOUT ROWID;

      -- The primary key (room, offset) serves every history read
      -- ("offset > ? ORDER BY offset LIMIT ?"), MIN(offset) for "oldest", and
      -- the per-room size trim ("offset <= ?").
      CREATE TABLE messages (
        room        TEXT NOT NULL,
        offset      INTEGER NOT NULL,
        message_id  TEXT NOT NULL,
        sender_id   TEXT NOT NULL,
        sent_at     TEXT NOT NULL,
        content     TEXT NOT NULL,
        traceparent TEXT,
        tracestate  TEXT,
        stored_at   INTEGER NOT NULL,
        PRIMARY KEY (room, offset)
      ) WITHOUT ROWID;
      -- Serves the age trim ("stored_at <= ?") without scanning every room.
      CREATE INDEX messages_stored_at ON messages (stored_at);

      -- Dedup keys live apart from history so trimming never reopens the window.
      CREATE TABLE dedup (
        room       TEXT NOT NULL,
        message_id TEXT NOT NULL,
        offset     INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (room, message_id)
      ) WITHOUT ROWID;
      -- Serves the expiry sweep ("expires_at <= ?").
      CREATE INDEX dedup_expires_at ON dedup (expires_at);

      CREATE TABLE sessions (
        member_id  TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        rooms      TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Serves resume ("WHERE token_hash = ?") and keeps hashes unique.
      CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
      -- Serves the expiry sweep.
      CREATE INDEX sessions_expires_at ON sessions (expires_at);
    `,
  },
  {
    version: 2,
    name: "messages.user_id",
    sql: `
      -- The publisher's authenticated user, replayed with the message.
      ALTER TABLE messages ADD COLUMN user_id TEXT;
    `,
  },
  {
    version: 3,
    name: "sessions_user_id index",
    sql: `
      -- Serves the server API's disconnect ("DELETE ... WHERE user_id = ?").
      CREATE INDEX sessions_user_id ON sessions (user_id);
    `,
  },
];
