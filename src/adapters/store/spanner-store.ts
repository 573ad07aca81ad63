// The Cloud Spanner store (the original design's store): shared by every node,
// durable as Spanner is. Schema: spanner-migrations.ts, applied at open();
// appends: spanner-append-batcher.ts (one read-write transaction per group);
// reads: one strong single-use query. Expired sessions and dedup keys go by
// Spanner's row deletion policies (and reads check expiry, since that
// deletion runs in the background); history is trimmed by a bounded sweep.
//
// Against the emulator (SPANNER_EMULATOR_HOST), the node itself turns off
// what the emulator lacks: multiplexed sessions, with which read-write
// transactions fail ("Unable to release unknown resource"), and the cloud
// metadata server lookup.
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { Spanner, type Database, type Instance, type Transaction } from "@google-cloud/spanner";
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
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";
import { decodeRooms, encodeRooms } from "./session-rooms.js";
import { SpannerAppendBatcher } from "./spanner-append-batcher.js";
import { toSpannerStoreError } from "./spanner-errors.js";
import { migrateSpanner } from "./spanner-schema.js";

export interface SpannerStoreOptions {
  readonly projectId: string;
  readonly instanceId: string;
  readonly databaseId: string;
  /** How long a (room, messageId) is remembered after its first append (DEDUP_WINDOW). */
  readonly dedupWindowMs: number;
  /** host:port of an emulator; also read from SPANNER_EMULATOR_HOST by the client itself. */
  readonly emulatorHost?: string;
  /** Budget of one transaction including the client's retries. Default 10 000 ms. */
  readonly timeoutMs?: number;
}

const ABORTED = 10;

function grpcCode(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "number"
    ? err.code
    : undefined;
}

// Rows one trim transaction deletes, and transactions one trim() runs: the
// sweep is bounded, and the next trim continues.
const TRIM_BATCH = 2000;
const TRIM_ROUNDS = 10;

// The emulator runs one read-write transaction at a time and aborts any
// other that meets it. So against the emulator this process runs its
// read-write transactions one after another, through this chain (measured
// here: 12 concurrent ones from one process took 3.1 s through the client's
// retries, 0.16 s through the chain); against real Spanner they run freely.
let emulatorGate: Promise<unknown> = Promise.resolve();

/** Sets what the client needs for the emulator, before the client is made. */
export function useEmulator(host: string): void {
  process.env["SPANNER_EMULATOR_HOST"] = host;
  process.env["METADATA_SERVER_DETECTION"] ??= "none";
  process.env["GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS"] = "false";
  process.env["GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW"] = "false";
  process.env["GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_PARTITIONED_OPS"] = "false";
}

interface ReadRow {
  Head: string;
  Epoch: string;
  Oldest: string | null;
  Msgs: {
    Seq: string;
    MessageId: string;
    SenderId: string;
    SentAt: string;
    Content: string;
    Traceparent: string | null;
    Tracestate: string | null;
    UserId: string | null;
  }[];
}

const READ_SQL = `
  SELECT CAST(r.Head AS STRING) AS Head, r.Epoch,
    (SELECT CAST(MIN(m.Seq) AS STRING) FROM Messages m WHERE m.Room = @room) AS Oldest,
    ARRAY(SELECT AS STRUCT CAST(m.Seq AS STRING) AS Seq, m.MessageId, m.SenderId, m.SentAt,
                 m.Content, m.Traceparent, m.Tracestate, m.UserId
          FROM Messages m WHERE m.Room = @room AND m.Seq > @after
          ORDER BY m.Seq LIMIT @limit) AS Msgs
  FROM Rooms r WHERE r.Room = @room`;

export class SpannerStore implements Store {
  readonly capabilities: StoreCapabilities = { durable: true, shared: true };
  readonly #options: SpannerStoreOptions;
  readonly #timeoutMs: number;
  readonly #batcher: SpannerAppendBatcher;
  #spanner: Spanner | undefined;
  #database: Database | undefined;
  #closed = false;

  constructor(options: SpannerStoreOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#batcher = new SpannerAppendBatcher(
      (fn) => this.#transact("append", fn),
      options.dedupWindowMs,
    );
  }

  #instance(): Instance {
    if (this.#spanner === undefined) {
      if (this.#options.emulatorHost !== undefined) useEmulator(this.#options.emulatorHost);
      this.#spanner = new Spanner({ projectId: this.#options.projectId });
    }
    return this.#spanner.instance(this.#options.instanceId);
  }

  #ready(): Database {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "spanner store is closed");
    if (this.#database === undefined)
      throw new StoreError(StoreErrorCode.Unavailable, "spanner store is not open");
    return this.#database;
  }

  async open(): Promise<void> {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "spanner store is closed");
    if (this.#database !== undefined) return;
    await this.migrate();
    this.#database = this.#instance().database(this.#options.databaseId);
  }

  /** Creates the database when missing and applies pending migrations (spanner-schema.ts). */
  async migrate(): Promise<number[]> {
    try {
      return await migrateSpanner(this.#instance(), this.#options.databaseId);
    } catch (err) {
      throw toSpannerStoreError("migrate", err);
    }
  }

  append(room: string, message: NewMessage): Promise<AppendResult> {
    try {
      this.#ready();
    } catch (err) {
      return Promise.reject(toSpannerStoreError("append", err));
    }
    return this.#batcher.append(room, message);
  }

  async read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    const params = {
      room,
      after: afterOffset.toString(),
      limit: String(Math.max(0, Math.trunc(limit))),
    };
    const query = {
      sql: READ_SQL,
      params,
      types: { room: "string", after: "int64", limit: "int64" },
      json: true,
    } as const;
    let row = await this.#call("read", async (db) => (await db.run(query))[0][0] as ReadRow);
    if (row === undefined) {
      // First sight of the room: create its metadata so the epoch returned is
      // the one later appends use (a concurrent creator wins harmlessly).
      await this.#transact("read", async (tx) => {
        const [rows] = await tx.read("Rooms", { keys: [room], columns: ["Room"] });
        if (rows.length === 0)
          tx.insert("Rooms", {
            Room: room,
            Head: "0",
            Epoch: randomUUID(),
            CreatedAt: Spanner.COMMIT_TIMESTAMP,
          });
        await tx.commit();
      });
      row = await this.#call("read", async (db) => (await db.run(query))[0][0] as ReadRow);
      if (row === undefined)
        throw new StoreError(StoreErrorCode.Conflict, "spanner read found no room row");
    }
    const head = BigInt(row.Head);
    return {
      messages: row.Msgs.map((m) => toMessage(room, m)),
      head,
      epoch: row.Epoch,
      oldest: row.Oldest === null ? head + 1n : BigInt(row.Oldest),
    };
  }

  async createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    await this.#transact("createSession", async (tx) => {
      tx.upsert("Sessions", {
        MemberId: session.memberId,
        UserId: session.userId,
        TokenHash: tokenHash,
        Rooms: encodeRooms(session.rooms),
        ExpiresAtMs: String(Math.trunc(expiresAt)),
        ExpiresAt: new Date(expiresAt),
      });
      await tx.commit();
    });
  }

  async resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined> {
    // Single use: the transaction reads the row through the index and
    // rewrites its hash; of two resumes of one hash, the one that commits
    // second aborts, re-runs, and no longer finds the hash.
    const row = await this.#transact("resumeSession", async (tx) => {
      const [rows] = await tx.run({
        sql: `SELECT MemberId, UserId, Rooms FROM Sessions@{FORCE_INDEX=SessionsByTokenHash}
                WHERE TokenHash = @hash AND ExpiresAtMs > @now AND UserId = @user`,
        params: { hash: tokenHash, now: String(Date.now()), user: userId },
        types: { hash: "string", now: "int64", user: "string" },
        json: true,
      });
      const found = rows[0] as { MemberId: string; UserId: string; Rooms: string } | undefined;
      if (found !== undefined)
        tx.update("Sessions", {
          MemberId: found.MemberId,
          TokenHash: newTokenHash,
          ExpiresAtMs: String(Math.trunc(expiresAt)),
          ExpiresAt: new Date(expiresAt),
        });
      await tx.commit();
      return found;
    });
    if (row === undefined) return undefined;
    try {
      return { memberId: row.MemberId, userId: row.UserId, rooms: decodeRooms(row.Rooms) };
    } catch (err) {
      throw toSpannerStoreError("resumeSession", err);
    }
  }

  async saveSession(
    memberId: string,
    rooms: readonly SessionRoom[],
    expiresAt: number,
  ): Promise<void> {
    await this.#transact("saveSession", async (tx) => {
      const [count] = await tx.runUpdate({
        sql: `UPDATE Sessions SET Rooms = @rooms, ExpiresAtMs = @expMs, ExpiresAt = @exp
                WHERE MemberId = @member AND ExpiresAtMs > @now`,
        params: {
          rooms: encodeRooms(rooms),
          expMs: String(Math.trunc(expiresAt)),
          exp: new Date(expiresAt),
          member: memberId,
          now: String(Date.now()),
        },
        types: {
          rooms: "string",
          expMs: "int64",
          exp: "timestamp",
          member: "string",
          now: "int64",
        },
      });
      await tx.commit();
      return count;
    });
  }

  async revokeUserSessions(userId: string): Promise<void> {
    await this.#transact("revokeUserSessions", async (tx) => {
      const [count] = await tx.runUpdate({
        sql: "DELETE FROM Sessions WHERE UserId = @user",
        params: { user: userId },
        types: { user: "string" },
      });
      await tx.commit();
      return count;
    });
  }

  async trim(policy: TrimPolicy): Promise<number> {
    // Both cuts take a prefix of each room's history: by size directly, and
    // by age because StoredAt is the commit timestamp and a room's appends
    // commit in offset order (each locks the room's row). Sessions and dedup
    // keys are left to the row deletion policies.
    const params = {
      keep: String(Math.max(0, Math.trunc(policy.maxPerRoom))),
      age: String(Math.max(0, Math.trunc(policy.maxAgeMs))),
      batch: String(TRIM_BATCH),
    };
    let deleted = 0;
    for (let round = 0; round < TRIM_ROUNDS; round++) {
      const n = await this.#transact("trim", async (tx) => {
        const [rows] = await tx.run({
          sql: `SELECT m.Room, CAST(m.Seq AS STRING) AS Seq
                  FROM Rooms r JOIN Messages m ON m.Room = r.Room
                  WHERE m.Seq <= r.Head - @keep
                     OR m.StoredAt <= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL @age MILLISECOND)
                  LIMIT @batch`,
          params,
          types: { keep: "int64", age: "int64", batch: "int64" },
          json: true,
        });
        const keys = (rows as { Room: string; Seq: string }[]).map((r) => [r.Room, r.Seq]);
        if (keys.length > 0) tx.deleteRows("Messages", keys);
        await tx.commit();
        return keys.length;
      });
      deleted += n;
      if (n < TRIM_BATCH) break;
    }
    return deleted;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const database = this.#database;
    const spanner = this.#spanner;
    this.#database = undefined;
    this.#spanner = undefined;
    try {
      await database?.close();
      await spanner?.close();
    } catch (err) {
      throw toSpannerStoreError("close", err);
    }
  }

  /** Runs `fn` in a read-write transaction (one at a time per process on the emulator). */
  #transact<T>(what: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (this.#options.emulatorHost === undefined)
      return this.#call(what, (db) => db.runTransactionAsync({ timeout: this.#timeoutMs }, fn));
    const run = () => this.#call(what, (db) => this.#emulatorTransaction(db, fn));
    const result = emulatorGate.then(run, run);
    emulatorGate = result.catch(() => undefined);
    return result;
  }

  /**
   * The emulator's read-write transaction, retried on ABORTED after a short
   * random pause. The client's own runner waits 2, 4, 8, 16 s... between
   * tries (real Spanner tells it how long instead); against the emulator,
   * which aborts whatever meets another process's transaction, that starved
   * one node of a three-node test for over 15 s.
   */
  async #emulatorTransaction<T>(db: Database, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const [tx] = await db.getTransaction();
      try {
        return await fn(tx); // fn commits, which ends the transaction
      } catch (err) {
        tx.end();
        if (grpcCode(err) !== ABORTED || Date.now() >= deadline) throw err;
        await delay(Math.random() * 20 * Math.min(attempt, 10));
      }
    }
  }

  async #call<T>(what: string, fn: (db: Database) => Promise<T>): Promise<T> {
    const db = this.#ready();
    try {
      return await fn(db);
    } catch (err) {
      throw toSpannerStoreError(what, err);
    }
  }
}

function toMessage(room: string, m: ReadRow["Msgs"][number]): StoredMessage {
  return {
    room,
    offset: BigInt(m.Seq),
    messageId: m.MessageId,
    senderId: m.SenderId,
    sentAt: m.SentAt,
    content: m.Content,
    ...(m.Traceparent !== null && { traceparent: m.Traceparent }),
    ...(m.Tracestate !== null && { tracestate: m.Tracestate }),
    ...(m.UserId !== null && { userId: m.UserId }),
  };
}
