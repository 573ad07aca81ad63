// Versioned PostgreSQL schema, applied at start under an advisory lock (see
// migratePostgres). Append new versions; never edit an applied one.
import type { Migration } from "./migration.js";

export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "rooms, messages, dedup, sessions, roomcast_append",
    sql: `
      -- One row per room: head and epoch outlive trimmed messages, and the
      -- row lock serializes appends to the room.
      CREATE TABLE rooms (
        room  text   PRIMARY KEY,
        head  bigint NOT NULL,
        epoch text   NOT NULL
      );

      -- The primary key (room, seq) serves history reads (seq > $2 ORDER BY
      -- seq LIMIT $3), min(seq) for the oldest kept offset, and the size trim.
      CREATE TABLE messages (
        room        text        NOT NULL,
        seq         bigint      NOT NULL,
        message_id  text        NOT NULL,
        sender_id   text        NOT NULL,
        sent_at     text        NOT NULL,
        content     text        NOT NULL,
        traceparent text,
        tracestate  text,
        stored_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (room, seq)
      );
      -- Serves the age trim (stored_at <= cutoff) without visiting every room.
      CREATE INDEX messages_stored_at ON messages (stored_at);

      -- Dedup keys live apart from history so trimming never reopens the window.
      CREATE TABLE dedup (
        room       text        NOT NULL,
        message_id text        NOT NULL,
        seq        bigint      NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (room, message_id)
      );
      -- Serves the expiry sweep (expires_at <= now()).
      CREATE INDEX dedup_expires_at ON dedup (expires_at);

      CREATE TABLE sessions (
        member_id  text   PRIMARY KEY,
        user_id    text   NOT NULL,
        token_hash text   NOT NULL,
        rooms      jsonb  NOT NULL,
        expires_at bigint NOT NULL
      );
      -- Serves resume (WHERE token_hash = $3) and keeps hashes unique.
      CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
      -- Serves the expiry sweep.
      CREATE INDEX sessions_expires_at ON sessions (expires_at);

      -- One append in one round trip. Atomic: the room row is created if
      -- missing and locked (FOR UPDATE) before the dedup check; in READ
      -- COMMITTED each statement of a plpgsql function takes a new snapshot,
      -- so a concurrent appender to the same room waits for the lock and then
      -- sees the winner's dedup key and head. Times come from the database
      -- clock, which every node shares.
      CREATE FUNCTION roomcast_append(
        p_room text, p_message_id text, p_sender_id text, p_sent_at text, p_content text,
        p_traceparent text, p_tracestate text, p_window_ms bigint, p_epoch text)
      RETURNS TABLE (o_seq bigint, o_duplicate boolean, o_epoch text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_head bigint;
        v_epoch text;
        v_seen bigint;
      BEGIN
        INSERT INTO rooms (room, head, epoch) VALUES (p_room, 0, p_epoch)
          ON CONFLICT (room) DO NOTHING;
        SELECT head, epoch INTO v_head, v_epoch FROM rooms WHERE room = p_room FOR UPDATE;
        SELECT d.seq INTO v_seen FROM dedup d
          WHERE d.room = p_room AND d.message_id = p_message_id AND d.expires_at > now();
        IF FOUND THEN
          RETURN QUERY SELECT v_seen, true, v_epoch;
          RETURN;
        END IF;
        v_head := v_head + 1;
        UPDATE rooms SET head = v_head WHERE room = p_room;
        INSERT INTO messages (room, seq, message_id, sender_id, sent_at, content, traceparent, tracestate)
          VALUES (p_room, v_head, p_message_id, p_sender_id, p_sent_at, p_content, p_traceparent, p_tracestate);
        INSERT INTO dedup (room, message_id, seq, expires_at)
          VALUES (p_room, p_message_id, v_head, now() + p_window_ms * interval '1 millisecond')
          ON CONFLICT (room, message_id) DO UPDATE SET seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at;
        RETURN QUERY SELECT v_head, false, v_epoch;
      END
      $fn$;
    `,
  },
];
