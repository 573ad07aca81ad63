// Versioned Cloud Spanner schema (GoogleSQL DDL), kept in TypeScript because
// tsc does not copy .sql files, applied by SpannerStore.migrate() at open()
// and by `npm run migrate`. Append new versions; never edit one that was
// applied somewhere. Every statement must be idempotent (IF NOT EXISTS /
// IF EXISTS): that is what makes two nodes migrating one database at once
// safe (see spanner-schema.ts). Rolling back means a new version that undoes
// an old one; Spanner has no transactional DDL.
import type { SpannerMigration } from "./spanner-schema.js";

export const spannerMigrations: readonly SpannerMigration[] = [
  {
    version: 1,
    name: "rooms, messages, dedup, sessions, rate limits",
    statements: [
      // One row per room: its head and epoch outlive trimmed messages, and an
      // append's read-write transaction locks it, so appenders to one room
      // (any node) commit one after another.
      `CREATE TABLE IF NOT EXISTS Rooms (
        Room STRING(128) NOT NULL,
        Head INT64 NOT NULL,
        Epoch STRING(64) NOT NULL,
        CreatedAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
      ) PRIMARY KEY (Room)`,
      // Interleaved in the room, keyed by offset: a room's history is stored
      // beside its row, and the primary key serves the history read
      // ("Seq > @after ORDER BY Seq LIMIT"), MIN(Seq) for "oldest" and the
      // trims' "Seq <= " ranges. StoredAt is the append's commit timestamp.
      // No TTL here: HISTORY_TTL is any duration and the cut must keep a
      // contiguous prefix, so the store's trim() sweeps instead. No index on
      // StoredAt either: an ever-increasing index key is a write hotspot in
      // Spanner, and the sweep reads at most HISTORY_SIZE rows per room.
      `CREATE TABLE IF NOT EXISTS Messages (
        Room STRING(128) NOT NULL,
        Seq INT64 NOT NULL,
        MessageId STRING(MAX) NOT NULL,
        SenderId STRING(MAX) NOT NULL,
        SentAt STRING(MAX) NOT NULL,
        Content STRING(MAX) NOT NULL,
        Traceparent STRING(MAX),
        Tracestate STRING(MAX),
        StoredAt TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
      ) PRIMARY KEY (Room, Seq),
        INTERLEAVE IN PARENT Rooms ON DELETE CASCADE`,
      // Dedup keys apart from history, so trimming a message never reopens its
      // window. The primary key serves the dedup lookup. The row deletion
      // policy removes expired keys (Spanner does it within days, in the
      // background), so lookups also check ExpiresAt.
      `CREATE TABLE IF NOT EXISTS Dedup (
        Room STRING(128) NOT NULL,
        MessageId STRING(MAX) NOT NULL,
        Seq INT64 NOT NULL,
        ExpiresAt TIMESTAMP NOT NULL,
      ) PRIMARY KEY (Room, MessageId),
        INTERLEAVE IN PARENT Rooms ON DELETE CASCADE,
        ROW DELETION POLICY (OLDER_THAN(ExpiresAt, INTERVAL 0 DAY))`,
      // Sessions hold only token hashes. ExpiresAtMs is the port's expiry (ms,
      // the writing node's clock) and is what reads compare; ExpiresAt is the
      // same instant as a TIMESTAMP for the row deletion policy.
      `CREATE TABLE IF NOT EXISTS Sessions (
        MemberId STRING(128) NOT NULL,
        UserId STRING(MAX) NOT NULL,
        TokenHash STRING(128) NOT NULL,
        Rooms STRING(MAX) NOT NULL,
        ExpiresAtMs INT64 NOT NULL,
        ExpiresAt TIMESTAMP NOT NULL,
      ) PRIMARY KEY (MemberId),
        ROW DELETION POLICY (OLDER_THAN(ExpiresAt, INTERVAL 0 DAY))`,
      // Serves resume ("WHERE TokenHash = @hash"), the one query not by
      // primary key, and keeps hashes unique.
      `CREATE UNIQUE INDEX IF NOT EXISTS SessionsByTokenHash ON Sessions (TokenHash)`,
      // Token-bucket state for RATE_LIMIT_DISTRIBUTED (keyed by limiter and
      // subject); idle buckets expire by policy. No reader yet needs an index.
      `CREATE TABLE IF NOT EXISTS RateLimits (
        BucketKey STRING(256) NOT NULL,
        Tokens FLOAT64 NOT NULL,
        UpdatedAt TIMESTAMP NOT NULL,
        ExpiresAt TIMESTAMP NOT NULL,
      ) PRIMARY KEY (BucketKey),
        ROW DELETION POLICY (OLDER_THAN(ExpiresAt, INTERVAL 0 DAY))`,
    ],
  },
  {
    version: 2,
    name: "Messages.UserId, sessions by user",
    statements: [
      // The publisher's authenticated user, replayed with the message.
      `ALTER TABLE Messages ADD COLUMN IF NOT EXISTS UserId STRING(MAX)`,
      // Serves revokeUserSessions ("WHERE UserId = @user"): the server API's
      // disconnect must not scan every session.
      `CREATE INDEX IF NOT EXISTS SessionsByUser ON Sessions (UserId)`,
    ],
  },
];
