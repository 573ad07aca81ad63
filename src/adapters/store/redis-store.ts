// The Redis store: shared by every node of a cluster, and as durable as the
// server's persistence settings (AOF with appendfsync everysec loses up to a
// second of acknowledged appends on a crash; replicas are asynchronous, so a
// failover loses what had not reached the replica). docs/operations.md says
// what that means for acked messages.
//
// Layout, <p> being the key prefix and every per-room key tagged {room} so a
// room lives in one Redis Cluster slot (redis-scripts.ts):
//   <p>:{room}:meta        hash  head, epoch (outlives trimmed messages)
//   <p>:{room}:log         stream, entry id "<offset>-0", so reads and trims
//                          address offsets directly (XRANGE, XTRIM MINID)
//   <p>:{room}:d:<msgId>   string offset, PX DEDUP_WINDOW: expires by itself
//   <p>:rooms              set of rooms, for trim() to visit
//   <p>:s:{memberId}       hash  user, rooms (JSON), token (hash), exp; PEXPIREAT
//   <p>:t:{tokenHash}      string memberId; an index only, PEXPIREAT
// Sessions and token indexes expire by themselves; dedup keys too.
import { createHash, randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
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
import { toRedisStoreError } from "./redis-errors.js";
import { APPEND, READ, RESUME, SAVE, TRIM_ROOM } from "./redis-scripts.js";

export interface RedisStoreOptions {
  /** redis://[user:pass@]host:port[/db] or rediss://... */
  readonly url: string;
  /** How long a (room, messageId) is remembered after its first append (DEDUP_WINDOW). */
  readonly dedupWindowMs: number;
  /** Messages kept per room, enforced by every append as well as by trim(). Default: no cap at append. */
  readonly maxPerRoom?: number;
  /** Prefix of every key. Default "roomcast". */
  readonly keyPrefix?: string;
  /** Command and connect timeout (STORE_TIMEOUT). Default 5000 ms. */
  readonly timeoutMs?: number;
}

// Stream entries one trim call looks at per room for the age cut; a room
// with more expired entries is finished by the next trims.
const TRIM_SCAN = 1000;

interface Script {
  readonly lua: string;
  readonly sha: string;
  readonly keys: number;
}

const script = (lua: string, keys: number): Script => ({
  lua,
  keys,
  sha: createHash("sha1").update(lua).digest("hex"),
});

const SCRIPTS = {
  append: script(APPEND, 3),
  read: script(READ, 2),
  trimRoom: script(TRIM_ROOM, 2),
  resume: script(RESUME, 1),
  save: script(SAVE, 1),
} as const;

type Entry = [id: string, fields: string[]];

export class RedisStore implements Store {
  readonly capabilities: StoreCapabilities = { durable: true, shared: true };
  readonly #options: RedisStoreOptions;
  readonly #p: string;
  readonly #windowMs: string;
  readonly #cap: string;
  /** Rooms this process already added to <p>:rooms. */
  readonly #registered = new Set<string>();
  #redis: Redis | undefined;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    this.#options = options;
    this.#p = options.keyPrefix ?? "roomcast";
    this.#windowMs = String(Math.max(0, Math.trunc(options.dedupWindowMs)));
    this.#cap = String(Math.max(0, Math.trunc(options.maxPerRoom ?? 0)));
  }

  async open(): Promise<void> {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "redis store is closed");
    if (this.#redis !== undefined) return;
    const timeoutMs = this.#options.timeoutMs ?? 5000;
    const options: RedisOptions = {
      lazyConnect: true,
      connectionName: "roomcast-store",
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      // Fail fast while disconnected instead of queueing (the caller answers
      // `unavailable` and the client retries), and never re-send a command
      // after a reconnect: the caller has already been told it failed.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    };
    const redis = new Redis(this.#options.url, options);
    // Connection errors surface through the failing commands; without a
    // listener ioredis would print each reconnect attempt's error.
    redis.on("error", () => undefined);
    try {
      await redis.connect();
      // Loaded now, so appends never need the EVAL fallback (see #append).
      await redis.script("LOAD", SCRIPTS.append.lua);
    } catch (err) {
      redis.disconnect();
      throw toRedisStoreError("open", err);
    }
    this.#redis = redis;
  }

  #ready(): Redis {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "redis store is closed");
    if (this.#redis === undefined)
      throw new StoreError(StoreErrorCode.Unavailable, "redis store is not open");
    return this.#redis;
  }

  #roomKeys(room: string): [meta: string, log: string] {
    return [`${this.#p}:{${room}}:meta`, `${this.#p}:{${room}}:log`];
  }

  /** EVALSHA, loading the script with EVAL when the server does not know it (after a restart or SCRIPT FLUSH). */
  async #eval(what: string, s: Script, args: readonly string[]): Promise<unknown> {
    const redis = this.#ready();
    try {
      try {
        return await redis.evalsha(s.sha, s.keys, ...args);
      } catch (err) {
        if (!(err instanceof Error && err.message.startsWith("NOSCRIPT"))) throw err;
        return await redis.eval(s.lua, s.keys, ...args);
      }
    } catch (err) {
      throw toRedisStoreError(what, err);
    }
  }

  async #call<T>(what: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
    const redis = this.#ready();
    try {
      return await fn(redis);
    } catch (err) {
      throw toRedisStoreError(what, err);
    }
  }

  /** Adds the room to <p>:rooms once per process, so trim() visits it. */
  async #register(room: string): Promise<void> {
    if (this.#registered.has(room)) return;
    await this.#call("append", (r) => r.sadd(`${this.#p}:rooms`, room));
    this.#registered.add(room);
  }

  /**
   * EVALSHA of the append script, never the EVAL fallback: appends keep their
   * call order (ports/store.ts) only if each runs as it was sent. After a
   * NOSCRIPT, appends sent after this one may already have run on the script
   * another node loaded meanwhile, so storing this one now would put it after
   * them: it fails instead (unavailable; the client retries with the same id)
   * and the script is loaded for the next ones. open() loads it, so this
   * happens only after a server restart or SCRIPT FLUSH.
   */
  async #append(args: readonly string[]): Promise<unknown> {
    const redis = this.#ready();
    try {
      return await redis.evalsha(SCRIPTS.append.sha, SCRIPTS.append.keys, ...args);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("NOSCRIPT")) {
        await redis.script("LOAD", SCRIPTS.append.lua).catch(() => undefined);
        throw new StoreError(
          StoreErrorCode.Unavailable,
          "redis append: the server had lost the script (loaded again; retry)",
          { cause: err },
        );
      }
      throw toRedisStoreError("append", err);
    }
  }

  async append(room: string, message: NewMessage): Promise<AppendResult> {
    const [meta, log] = this.#roomKeys(room);
    const reply = (await this.#append([
      meta,
      log,
      `${this.#p}:{${room}}:d:${message.messageId}`,
      this.#windowMs,
      randomUUID(),
      this.#cap,
      message.messageId,
      message.senderId,
      message.sentAt,
      message.content,
      optional(message.traceparent),
      optional(message.tracestate),
      optional(message.userId),
    ])) as [string, number, string];
    // After the append, so a failure here leaves a stored message (and the
    // caller retries as a duplicate) rather than a registered empty room.
    await this.#register(room);
    return { offset: BigInt(reply[0]), duplicate: reply[1] === 1, epoch: reply[2] };
  }

  async read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    const [meta, log] = this.#roomKeys(room);
    const [head, epoch, oldest, entries] = (await this.#eval("read", SCRIPTS.read, [
      meta,
      log,
      randomUUID(),
      (afterOffset + 1n).toString(),
      String(Math.max(0, Math.trunc(limit))),
    ])) as [string, string, string, Entry[]];
    const headN = BigInt(head);
    try {
      return {
        messages: entries.map((e) => toMessage(room, e)),
        head: headN,
        epoch,
        oldest: oldest === "" ? headN + 1n : offsetOf(oldest),
      };
    } catch (err) {
      throw toRedisStoreError("read", err);
    }
  }

  async createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    const at = ms(expiresAt);
    await this.#call("createSession", async (r) => {
      // The index first: a crash between the two leaves an orphan index entry
      // (harmless, it expires) rather than a session no token finds.
      await r.set(this.#tokenKey(tokenHash), session.memberId, "PXAT", at);
      await r
        .multi()
        .del(this.#sessionKey(session.memberId))
        .hset(this.#sessionKey(session.memberId), {
          user: session.userId,
          rooms: encodeRooms(session.rooms),
          token: tokenHash,
          exp: at,
        })
        .pexpireat(this.#sessionKey(session.memberId), at)
        .exec();
      if (session.userId !== "") await this.#indexUser(r, session.userId, session.memberId);
    });
  }

  /**
   * Adds the session to its user's set. The set has no TTL (sessions are
   * extended by saves); members whose session has expired are dropped here,
   * so it holds about as many ids as the user has live sessions.
   */
  async #indexUser(r: Redis, userId: string, memberId: string): Promise<void> {
    const key = this.#userKey(userId);
    for (const other of await r.smembers(key)) {
      if ((await r.exists(this.#sessionKey(other))) === 0) await r.srem(key, other);
    }
    await r.sadd(key, memberId);
  }

  async resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined> {
    const at = ms(expiresAt);
    const memberId = await this.#call("resumeSession", (r) => r.get(this.#tokenKey(tokenHash)));
    if (memberId === null) return undefined;
    // The new index before the compare-and-set, for the same reason as in
    // createSession; a loser's index names a session whose token is not its
    // hash, so it finds nothing, and expires.
    await this.#call("resumeSession", (r) =>
      r.set(this.#tokenKey(newTokenHash), memberId, "PXAT", at),
    );
    // Single use: the script swaps the token only if it is still tokenHash.
    const won = (await this.#eval("resumeSession", SCRIPTS.resume, [
      this.#sessionKey(memberId),
      tokenHash,
      newTokenHash,
      at,
      ms(Date.now()),
      userId,
    ])) as [string, string] | null;
    if (won === null) return undefined;
    await this.#call("resumeSession", (r) => r.del(this.#tokenKey(tokenHash)));
    try {
      return { memberId, userId: won[0], rooms: decodeRooms(won[1]) };
    } catch (err) {
      throw toRedisStoreError("resumeSession", err);
    }
  }

  async saveSession(
    memberId: string,
    rooms: readonly SessionRoom[],
    expiresAt: number,
  ): Promise<void> {
    const at = ms(expiresAt);
    const token = (await this.#eval("saveSession", SCRIPTS.save, [
      this.#sessionKey(memberId),
      encodeRooms(rooms),
      at,
      ms(Date.now()),
    ])) as string | null;
    if (token !== null)
      await this.#call("saveSession", (r) => r.pexpireat(this.#tokenKey(token), at));
  }

  async trim(policy: TrimPolicy): Promise<number> {
    // Sessions, token indexes and dedup keys expire by themselves; only
    // history needs visiting, room by room, a page of the rooms set at a time.
    const keep = String(Math.max(0, Math.trunc(policy.maxPerRoom)));
    const age = String(Math.max(0, Math.trunc(policy.maxAgeMs)));
    let deleted = 0;
    let cursor = "0";
    do {
      const [next, rooms] = await this.#call("trim", (r) =>
        r.sscan(`${this.#p}:rooms`, cursor, "COUNT", 200),
      );
      cursor = next;
      for (const room of rooms) {
        const n = await this.#eval("trim", SCRIPTS.trimRoom, [
          ...this.#roomKeys(room),
          keep,
          age,
          String(TRIM_SCAN),
        ]);
        deleted += Number(n);
      }
    } while (cursor !== "0");
    return deleted;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const redis = this.#redis;
    this.#redis = undefined;
    if (redis === undefined) return;
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  }

  #sessionKey(memberId: string): string {
    return `${this.#p}:s:{${memberId}}`;
  }

  /** The member ids of one user's sessions (for revokeUserSessions); expires with the newest. */
  #userKey(userId: string): string {
    return `${this.#p}:u:{${userId}}`;
  }

  async revokeUserSessions(userId: string): Promise<void> {
    await this.#call("revokeUserSessions", async (r) => {
      const members = await r.smembers(this.#userKey(userId));
      for (const memberId of members) {
        const token = await r.hget(this.#sessionKey(memberId), "token");
        // Sessions and token indexes live in other slots: one key at a time.
        await r.del(this.#sessionKey(memberId));
        if (token !== null) await r.del(this.#tokenKey(token));
      }
      await r.del(this.#userKey(userId));
    });
  }

  #tokenKey(tokenHash: string): string {
    return `${this.#p}:t:{${tokenHash}}`;
  }
}

function optional(value: string | undefined): string {
  return value === undefined ? "-" : `+${value}`;
}

function offsetOf(id: string): bigint {
  return BigInt(id.slice(0, id.indexOf("-")));
}

function toMessage(room: string, [id, fields]: Entry): StoredMessage {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i]!, fields[i + 1]!);
  const tp = f.get("tp");
  const ts = f.get("ts");
  const u = f.get("u");
  return {
    room,
    offset: offsetOf(id),
    messageId: f.get("i") ?? "",
    senderId: f.get("s") ?? "",
    sentAt: f.get("w") ?? "",
    content: f.get("c") ?? "",
    ...(tp !== undefined && { traceparent: tp }),
    ...(ts !== undefined && { tracestate: ts }),
    ...(u !== undefined && { userId: u }),
  };
}

/** ms timestamps as integer text. */
function ms(value: number): string {
  return String(Math.trunc(value));
}
