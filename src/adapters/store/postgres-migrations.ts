// Versioned PostgreSQL schema, kept in TypeScript because tsc does not copy
// .sql files, applied at open() under an advisory lock (see migratePostgres).
// Append new versions; never edit one that was applied somewhere.
// Tables use unqualified names: point the URL at a database (or a search_path)
// of Roomcast's own when the server is shared with other applications.
import type { Migration } from "./migration.js";

export const postgresMigrations: readonly Migration[] = [
  {
    version: 1,
    name: "rooms, messages, dedup, sessions, roomcast_append",
    sql: `
      -- One row per room: its head and epoch outlive trimmed messages, and the
      -- row's lock is what serialises appenders to one room.
      CREATE TABLE rooms (
        room       text PRIMARY KEY,
        head       bigint NOT NULL,
        epoch      text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );

      -- The primary key (room, seq) serves history reads ("seq > $ ORDER BY seq
      -- LIMIT $"), min(seq) for "oldest", and the trims' "seq <= $" ranges.
      -- ("offset" is a reserved word in PostgreSQL, hence "seq".)
      CREATE TABLE messages (
        room        text NOT NULL,
        seq         bigint NOT NULL,
        message_id  text NOT NULL,
        sender_id   text NOT NULL,
        sent_at     text NOT NULL,
        content     text NOT NULL,
        traceparent text,
        tracestate  text,
        stored_at   timestamptz NOT NULL,
        PRIMARY KEY (room, seq)
      );
      -- Serves the age trim ("stored_at <= cutoff GROUP BY room") without
      -- scanning every room's history.
      CREATE INDEX messages_stored_at ON messages (stored_at);

      -- Dedup keys live apart from history so trimming a message never
      -- reopens its dedup window. The primary key serves the dedup lookup.
      CREATE TABLE dedup (
        room       text NOT NULL,
        message_id text NOT NULL,
        seq        bigint NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (room, message_id)
      );
      -- Serves the expiry sweep ("expires_at <= now()").
      CREATE INDEX dedup_expires_at ON dedup (expires_at);

      -- expires_at is ms since the Unix epoch, on the clock of the node that
      -- wrote it (the port's expiresAt), so it is compared with the caller's clock.
      CREATE TABLE sessions (
        member_id  text PRIMARY KEY,
        user_id    text NOT NULL,
        token_hash text NOT NULL,
        rooms      jsonb NOT NULL,
        expires_at bigint NOT NULL
      );
      -- Serves resume ("WHERE token_hash = $") and keeps hashes unique.
      CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
      -- Serves the expiry sweep ("expires_at <= $").
      CREATE INDEX sessions_expires_at ON sessions (expires_at);

      -- The whole append in one round trip. Why it is atomic and gap-free:
      -- the function runs inside the caller's single-statement transaction;
      -- SELECT ... FOR UPDATE takes the room row's lock, so appenders to one
      -- room (any connection, any process) run the rest one at a time, and the
      -- lock is held until commit. In READ COMMITTED each statement below takes
      -- a fresh snapshot, so after the lock is granted the dedup check sees the
      -- previous holder's committed key. head + 1, the message and the dedup key
      -- commit together or not at all, so offsets are 1..N with no gap and no
      -- duplicate, and a (room, message_id) is stored at most once per window.
      -- This relies on READ COMMITTED, PostgreSQL's default; under a stricter
      -- default_transaction_isolation concurrent appends fail with
      -- serialization errors (safe, but callers then need to retry).
      CREATE FUNCTION roomcast_append(
        p_room text, p_message_id text, p_sender_id text, p_sent_at text,
        p_content text, p_traceparent text, p_tracestate text,
        p_window_ms bigint, p_new_epoch text,
        OUT o_seq bigint, OUT o_duplicate boolean, OUT o_epoch text)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        -- Fast path without the room lock: a committed live key is final, so
        -- a client's retry does not queue behind the room's appenders.
        SELECT d.seq, r.epoch INTO o_seq, o_epoch
          FROM dedup d JOIN rooms r ON r.room = d.room
          WHERE d.room = p_room AND d.message_id = p_message_id AND d.expires_at > now();
        IF FOUND THEN
          o_duplicate := true;
          RETURN;
        END IF;

        -- Creates the room (and its epoch) on first use; a concurrent creator
        -- makes this wait for its commit and then do nothing.
        INSERT INTO rooms (room, head, epoch) VALUES (p_room, 0, p_new_epoch)
          ON CONFLICT (room) DO NOTHING;
        SELECT r.epoch INTO o_epoch FROM rooms r WHERE r.room = p_room FOR UPDATE;

        -- Checked again under the lock: another appender may have committed
        -- this key between the fast path and the lock.
        SELECT d.seq INTO o_seq FROM dedup d
          WHERE d.room = p_room AND d.message_id = p_message_id AND d.expires_at > now();
        IF FOUND THEN
          o_duplicate := true;
          RETURN;
        END IF;

        UPDATE rooms SET head = head + 1 WHERE room = p_room RETURNING head INTO o_seq;
        -- clock_timestamp(), taken under the lock, keeps stored_at in offset
        -- order within a room (now() is the transaction's start time).
        INSERT INTO messages (room, seq, message_id, sender_id, sent_at, content,
                              traceparent, tracestate, stored_at)
          VALUES (p_room, o_seq, p_message_id, p_sender_id, p_sent_at, p_content,
                  p_traceparent, p_tracestate, clock_timestamp());
        -- An expired key for the same id is replaced: its window has passed.
        INSERT INTO dedup (room, message_id, seq, expires_at)
          VALUES (p_room, p_message_id, o_seq, now() + p_window_ms * interval '1 millisecond')
          ON CONFLICT (room, message_id)
          DO UPDATE SET seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at;
        o_duplicate := false;
      END
      $fn$;
    `,
  },
  {
    version: 2,
    name: "roomcast_append_batch",
    sql: `
      -- Many appends in one round trip and one transaction (one WAL flush),
      -- in the order given. Every room of the batch is created and locked
      -- first, in sorted order, so two batches (from two nodes) never
      -- deadlock; then each item goes through roomcast_append, which keeps
      -- its own guarantees (its FOR UPDATE finds the lock already held).
      CREATE FUNCTION roomcast_append_batch(p_items jsonb, p_window_ms bigint)
      RETURNS TABLE (o_idx int, o_seq bigint, o_duplicate boolean, o_epoch text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_item jsonb;
        v_idx bigint;
        v_res record;
      BEGIN
        INSERT INTO rooms (room, head, epoch)
          SELECT DISTINCT ON (e->>'room') e->>'room', 0, e->>'epoch'
          FROM jsonb_array_elements(p_items) e
          ORDER BY e->>'room'
          ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM rooms
          WHERE room IN (SELECT e->>'room' FROM jsonb_array_elements(p_items) e)
          ORDER BY room
          FOR UPDATE;
        FOR v_item, v_idx IN
          SELECT e, n FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(e, n) ORDER BY n
        LOOP
          SELECT * INTO v_res FROM roomcast_append(
            v_item->>'room', v_item->>'id', v_item->>'sender', v_item->>'sentAt',
            v_item->>'content', v_item->>'traceparent', v_item->>'tracestate',
            p_window_ms, v_item->>'epoch');
          o_idx := v_idx - 1;
          o_seq := v_res.o_seq;
          o_duplicate := v_res.o_duplicate;
          o_epoch := v_res.o_epoch;
          RETURN NEXT;
        END LOOP;
      END
      $fn$;
    `,
  },
  {
    version: 3,
    name: "messages.user_id, roomcast_append with the publisher's user",
    sql: `
      -- The publisher's authenticated user, replayed with the message.
      ALTER TABLE messages ADD COLUMN user_id text;

      -- roomcast_append gains p_user_id as a new overload: nodes of the
      -- previous version keep calling the old one during a rolling upgrade.
      -- The body is version 1's (see there for why it is atomic and gap-free)
      -- with user_id in the insert.
      CREATE FUNCTION roomcast_append(
        p_room text, p_message_id text, p_sender_id text, p_sent_at text,
        p_content text, p_traceparent text, p_tracestate text, p_user_id text,
        p_window_ms bigint, p_new_epoch text,
        OUT o_seq bigint, OUT o_duplicate boolean, OUT o_epoch text)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        SELECT d.seq, r.epoch INTO o_seq, o_epoch
          FROM dedup d JOIN rooms r ON r.room = d.room
          WHERE d.room = p_room AND d.message_id = p_message_id AND d.expires_at > now();
        IF FOUND THEN
          o_duplicate := true;
          RETURN;
        END IF;
        INSERT INTO rooms (room, head, epoch) VALUES (p_room, 0, p_new_epoch)
          ON CONFLICT (room) DO NOTHING;
        SELECT r.epoch INTO o_epoch FROM rooms r WHERE r.room = p_room FOR UPDATE;
        SELECT d.seq INTO o_seq FROM dedup d
          WHERE d.room = p_room AND d.message_id = p_message_id AND d.expires_at > now();
        IF FOUND THEN
          o_duplicate := true;
          RETURN;
        END IF;
        UPDATE rooms SET head = head + 1 WHERE room = p_room RETURNING head INTO o_seq;
        INSERT INTO messages (room, seq, message_id, sender_id, sent_at, content,
                              traceparent, tracestate, user_id, stored_at)
          VALUES (p_room, o_seq, p_message_id, p_sender_id, p_sent_at, p_content,
                  p_traceparent, p_tracestate, p_user_id, clock_timestamp());
        INSERT INTO dedup (room, message_id, seq, expires_at)
          VALUES (p_room, p_message_id, o_seq, now() + p_window_ms * interval '1 millisecond')
          ON CONFLICT (room, message_id)
          DO UPDATE SET seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at;
        o_duplicate := false;
      END
      $fn$;

      -- Same signature as version 2, so older nodes call it too (their items
      -- carry no "user": NULL).
      CREATE OR REPLACE FUNCTION roomcast_append_batch(p_items jsonb, p_window_ms bigint)
      RETURNS TABLE (o_idx int, o_seq bigint, o_duplicate boolean, o_epoch text)
      LANGUAGE plpgsql AS $fn$
      DECLARE
        v_item jsonb;
        v_idx bigint;
        v_res record;
      BEGIN
        INSERT INTO rooms (room, head, epoch)
          SELECT DISTINCT ON (e->>'room') e->>'room', 0, e->>'epoch'
          FROM jsonb_array_elements(p_items) e
          ORDER BY e->>'room'
          ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM rooms
          WHERE room IN (SELECT e->>'room' FROM jsonb_array_elements(p_items) e)
          ORDER BY room
          FOR UPDATE;
        FOR v_item, v_idx IN
          SELECT e, n FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(e, n) ORDER BY n
        LOOP
          SELECT * INTO v_res FROM roomcast_append(
            v_item->>'room', v_item->>'id', v_item->>'sender', v_item->>'sentAt',
            v_item->>'content', v_item->>'traceparent', v_item->>'tracestate',
            v_item->>'user', p_window_ms, v_item->>'epoch');
          o_idx := v_idx - 1;
          o_seq := v_res.o_seq;
          o_duplicate := v_res.o_duplicate;
          o_epoch := v_res.o_epoch;
          RETURN NEXT;
        END LOOP;
      END
      $fn$;
    `,
  },
  {
    version: 4,
    name: "sessions_user_id index",
    sql: `
      -- Serves the server API's disconnect ("DELETE ... WHERE user_id = $").
      CREATE INDEX sessions_user_id ON sessions (user_id);
    `,
  },
  {
    version: 5,
    name: "roomcast_append_batch set-based",
    sql: `
      -- The same batch in a handful of set-based statements instead of one
      -- roomcast_append call (seven statements) per message: the database's
      -- CPU per append is what bounds a group commit once appends are
      -- pipelined. Same signature and results, so nodes of the previous
      -- version keep working during a rolling upgrade.
      --
      -- Why it is atomic and gap-free: every room of the batch is created and
      -- locked first, in sorted order (as before, so two batches never
      -- deadlock); the statement after it runs on a snapshot taken once the
      -- locks are held, so each room's head is the latest and no other
      -- appender moves it until commit. New messages of a room are numbered
      -- head + 1, head + 2, ... in the batch's order; the first occurrence of
      -- an id is the one stored, later ones (and ids with an unexpired key)
      -- are duplicates of it.
      CREATE OR REPLACE FUNCTION roomcast_append_batch(p_items jsonb, p_window_ms bigint)
      RETURNS TABLE (o_idx int, o_seq bigint, o_duplicate boolean, o_epoch text)
      LANGUAGE plpgsql AS $fn$
      BEGIN
        INSERT INTO rooms (room, head, epoch)
          SELECT DISTINCT ON (e->>'room') e->>'room', 0, e->>'epoch'
          FROM jsonb_array_elements(p_items) e
          ORDER BY e->>'room'
          ON CONFLICT (room) DO NOTHING;
        PERFORM 1 FROM rooms
          WHERE room IN (SELECT e->>'room' FROM jsonb_array_elements(p_items) e)
          ORDER BY room
          FOR UPDATE;
        RETURN QUERY
        WITH items AS (
          SELECT (t.n - 1)::int AS idx, t.e->>'room' AS room, t.e->>'id' AS id, t.e
          FROM jsonb_array_elements(p_items) WITH ORDINALITY AS t(e, n)
        ),
        firsts AS (
          SELECT DISTINCT ON (i.room, i.id) i.idx, i.room, i.id
          FROM items i ORDER BY i.room, i.id, i.idx
        ),
        known AS (
          SELECT f.room, f.id, d.seq
          FROM firsts f
          JOIN dedup d ON d.room = f.room AND d.message_id = f.id AND d.expires_at > now()
        ),
        fresh AS (
          SELECT f.idx, f.room, f.id,
                 r.head + row_number() OVER (PARTITION BY f.room ORDER BY f.idx) AS seq
          FROM firsts f
          JOIN rooms r ON r.room = f.room
          WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.room = f.room AND k.id = f.id)
        ),
        stored AS (
          INSERT INTO messages (room, seq, message_id, sender_id, sent_at, content,
                                traceparent, tracestate, user_id, stored_at)
          SELECT f.room, f.seq, f.id, i.e->>'sender', i.e->>'sentAt', i.e->>'content',
                 i.e->>'traceparent', i.e->>'tracestate', i.e->>'user', clock_timestamp()
          FROM fresh f JOIN items i ON i.idx = f.idx
        ),
        keys AS (
          INSERT INTO dedup (room, message_id, seq, expires_at)
          SELECT f.room, f.id, f.seq, now() + p_window_ms * interval '1 millisecond'
          FROM fresh f
          ON CONFLICT (room, message_id)
          DO UPDATE SET seq = EXCLUDED.seq, expires_at = EXCLUDED.expires_at
        ),
        heads AS (
          UPDATE rooms r SET head = r.head + c.n
          FROM (SELECT f.room, count(*) AS n FROM fresh f GROUP BY f.room) c
          WHERE r.room = c.room
        )
        SELECT i.idx,
               COALESCE(fr.seq, k.seq)::bigint,
               fr.idx IS DISTINCT FROM i.idx,
               r.epoch
        FROM items i
        JOIN rooms r ON r.room = i.room
        LEFT JOIN fresh fr ON fr.room = i.room AND fr.id = i.id
        LEFT JOIN known k ON k.room = i.room AND k.id = i.id
        ORDER BY i.idx;
      END
      $fn$;
    `,
  },
  {
    version: 6,
    name: "roomcast_append_batch plans with current statistics",
    sql: `
      -- PL/pgSQL keeps each statement's plan for the life of a connection,
      -- and after five calls may settle on a generic one. A pool's
      -- connections live for days, so the plan made when messages and dedup
      -- were empty (sequential scans) stayed after they held millions of
      -- rows: an append on a long-lived connection took 40 ms at 400,000
      -- messages against 1 ms on a new one. Planning each call costs well
      -- under a millisecond and follows the tables as they grow.
      ALTER FUNCTION roomcast_append_batch(jsonb, bigint)
        SET plan_cache_mode = force_custom_plan;
    `,
  },
];
