// The in-memory store: one process, nothing survives a restart, so each
// instance has its own epoch. Every method is synchronous inside, which makes
// append trivially atomic.
import { randomUUID } from "node:crypto";
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

interface RoomState {
  head: bigint;
  readonly epoch: string;
  /** Contiguous, oldest first: the last one's offset is `head`. */
  messages: Entry[];
  readonly dedup: DedupKeys;
}

/**
 * One stored message, kept as one object of one class: no offset (it follows
 * from the position), no wrapper, and no copy made with an object spread.
 * Node 20's optimised code gives each object made by `{ ...m, extra }` a
 * hidden class of its own, so a spread here cost every stored message two
 * more objects (a map and its descriptors, ~250 bytes) for the garbage
 * collector to mark; at many-rooms rates that marking starved the event loop.
 */
class Entry {
  readonly messageId: string;
  readonly senderId: string;
  readonly sentAt: string;
  readonly content: string;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  readonly userId: string | undefined;
  readonly storedAt: number;

  constructor(m: NewMessage, storedAt: number) {
    this.messageId = m.messageId;
    this.senderId = m.senderId;
    this.sentAt = m.sentAt;
    this.content = m.content;
    this.traceparent = m.traceparent;
    this.tracestate = m.tracestate;
    this.userId = m.userId;
    this.storedAt = storedAt;
  }

  /** The port's shape: optional fields only when set. */
  stored(room: string, offset: bigint): StoredMessage {
    const m: Mutable<StoredMessage> = {
      messageId: this.messageId,
      senderId: this.senderId,
      sentAt: this.sentAt,
      content: this.content,
      room,
      offset,
    };
    if (this.traceparent !== undefined) m.traceparent = this.traceparent;
    if (this.tracestate !== undefined) m.tracestate = this.tracestate;
    if (this.userId !== undefined) m.userId = this.userId;
    return m;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A room's dedup keys: message id → offset, and the ids again in a queue
 * beside their expiry times. Keys are added with now + the window, so the
 * queue is in expiry order and expiring stops at the first live key:
 * O(expired), not O(keys). Offsets and times are plain numbers (offsets stay
 * far below 2^53), so a key costs no objects beyond its id string.
 */
export class DedupKeys {
  readonly #offsets = new Map<string, number>();
  #ids: string[] = [];
  #expiries: number[] = [];
  #head = 0;

  /** Ids in the queue, expired ones not yet cut included (for tests). */
  get queued(): number {
    return this.#ids.length;
  }

  offset(id: string): bigint | undefined {
    const offset = this.#offsets.get(id);
    return offset === undefined ? undefined : BigInt(offset);
  }

  add(id: string, offset: bigint, expiresAt: number): void {
    this.#offsets.set(id, Number(offset));
    this.#ids.push(id);
    this.#expiries.push(expiresAt);
  }

  expire(now: number): void {
    while (this.#head < this.#ids.length && this.#expiries[this.#head]! <= now) {
      this.#offsets.delete(this.#ids[this.#head]!);
      this.#head++;
    }
    // The dead front holds expired ids' strings: cut it once it is half the
    // queue (amortised O(1)), so a room keeps at most as many dead ids as
    // live ones, and none once all have expired.
    if (this.#head > 0 && this.#head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#expiries = this.#expiries.slice(this.#head);
      this.#head = 0;
    }
  }
}

interface SessionState {
  record: SessionRecord;
  tokenHash: string;
  expiresAt: number;
}

export interface MemoryStoreOptions {
  /** How long a (room, messageId) is remembered after its first append (DEDUP_WINDOW). */
  readonly dedupWindowMs: number;
  /**
   * HISTORY_SIZE, when known: a room never holds more than twice this many
   * messages, whatever TRIM_INTERVAL is (the trim still cuts to it exactly).
   */
  readonly maxPerRoom?: number;
}

/**
 * Amortised trimming on append: a room's history is cut back to `maxPerRoom`
 * once it reaches twice that, so each append pays O(1) on average and memory
 * stays bounded between trims. Without it a busy node's history (and the
 * heap the garbage collector has to mark) grew for a whole TRIM_INTERVAL,
 * and the trim then swept it in one synchronous pass.
 */
const HISTORY_SLACK = 2;

export class MemoryStore implements Store {
  readonly capabilities: StoreCapabilities = { durable: false, shared: false };
  readonly #dedupWindowMs: number;
  readonly #maxPerRoom: number;
  readonly #rooms = new Map<string, RoomState>();
  readonly #sessions = new Map<string, SessionState>();
  readonly #byToken = new Map<string, string>();
  #closed = false;

  constructor({ dedupWindowMs, maxPerRoom = Infinity }: MemoryStoreOptions) {
    this.#dedupWindowMs = dedupWindowMs;
    this.#maxPerRoom = Math.max(1, maxPerRoom);
  }

  open(): Promise<void> {
    return Promise.resolve();
  }

  #check(): void {
    if (this.#closed) throw new StoreError(StoreErrorCode.Unavailable, "memory store is closed");
  }

  #room(room: string): RoomState {
    let state = this.#rooms.get(room);
    if (state === undefined) {
      state = { head: 0n, epoch: randomUUID(), messages: [], dedup: new DedupKeys() };
      this.#rooms.set(room, state);
    }
    return state;
  }

  append(room: string, message: NewMessage): Promise<AppendResult> {
    return run(() => {
      this.#check();
      const state = this.#room(room);
      const now = Date.now();
      const keys = state.dedup;
      // After this every key still there is live.
      keys.expire(now);
      const seen = keys.offset(message.messageId);
      if (seen !== undefined) return { offset: seen, duplicate: true, epoch: state.epoch };
      state.head += 1n;
      state.messages.push(new Entry(message, now));
      if (state.messages.length >= this.#maxPerRoom * HISTORY_SLACK) {
        state.messages = state.messages.slice(state.messages.length - this.#maxPerRoom);
      }
      keys.add(message.messageId, state.head, now + this.#dedupWindowMs);
      return { offset: state.head, duplicate: false, epoch: state.epoch };
    });
  }

  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    return run(() => {
      this.#check();
      const state = this.#room(room);
      const first = state.head - BigInt(state.messages.length) + 1n;
      const start = afterOffset < first ? 0 : Number(afterOffset - first + 1n);
      const messages = state.messages
        .slice(start, start + limit)
        .map((m, i) => m.stored(room, first + BigInt(start + i)));
      return { messages, head: state.head, epoch: state.epoch, oldest: first };
    });
  }

  createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    return run(() => {
      this.#check();
      const previous = this.#sessions.get(session.memberId);
      if (previous !== undefined) this.#byToken.delete(previous.tokenHash);
      // A copy: the caller may reuse its objects.
      const record = {
        memberId: session.memberId,
        userId: session.userId,
        rooms: [...session.rooms],
      };
      this.#sessions.set(session.memberId, { record, tokenHash, expiresAt });
      this.#byToken.set(tokenHash, session.memberId);
    });
  }

  resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined> {
    return run(() => {
      this.#check();
      const memberId = this.#byToken.get(tokenHash);
      if (memberId === undefined) return undefined;
      const s = this.#sessions.get(memberId);
      if (s !== undefined && s.tokenHash === tokenHash && s.record.userId !== userId)
        return undefined;
      this.#byToken.delete(tokenHash);
      if (s === undefined || s.tokenHash !== tokenHash || s.expiresAt <= Date.now())
        return undefined;
      s.tokenHash = newTokenHash;
      s.expiresAt = expiresAt;
      this.#byToken.set(newTokenHash, memberId);
      return s.record;
    });
  }

  saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number): Promise<void> {
    return run(() => {
      this.#check();
      const s = this.#sessions.get(memberId);
      if (s === undefined || s.expiresAt <= Date.now()) return;
      s.record = { memberId: s.record.memberId, userId: s.record.userId, rooms: [...rooms] };
      s.expiresAt = expiresAt;
    });
  }

  revokeUserSessions(userId: string): Promise<void> {
    return run(() => {
      this.#check();
      for (const [id, s] of this.#sessions) {
        if (s.record.userId !== userId) continue;
        this.#sessions.delete(id);
        this.#byToken.delete(s.tokenHash);
      }
    });
  }

  trim(policy: TrimPolicy): Promise<number> {
    return run(() => {
      this.#check();
      const now = Date.now();
      let deleted = 0;
      for (const state of this.#rooms.values()) {
        let drop = Math.max(0, state.messages.length - policy.maxPerRoom);
        while (
          drop < state.messages.length &&
          state.messages[drop]!.storedAt <= now - policy.maxAgeMs
        )
          drop++;
        if (drop > 0) {
          state.messages = state.messages.slice(drop);
          deleted += drop;
        }
        state.dedup.expire(now);
      }
      for (const [id, s] of this.#sessions) {
        if (s.expiresAt <= now) {
          this.#sessions.delete(id);
          this.#byToken.delete(s.tokenHash);
        }
      }
      return deleted;
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}

/** Runs synchronous work as a promise, turning throws into rejections. */
function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(
      err instanceof StoreError
        ? err
        : new StoreError(StoreErrorCode.Failed, "memory store call failed", { cause: err }),
    );
  }
}
