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
  /** Contiguous: messages[i].offset === first + i. */
  messages: { message: StoredMessage; storedAt: number }[];
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
  /** room → messageId → [offset, expiresAt] */
  readonly #dedup = new Map<string, Map<string, [bigint, number]>>();
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
      state = { head: 0n, epoch: randomUUID(), messages: [] };
      this.#rooms.set(room, state);
    }
    return state;
  }

  append(room: string, message: NewMessage): Promise<AppendResult> {
    return run(() => {
      this.#check();
      const state = this.#room(room);
      const now = Date.now();
      let keys = this.#dedup.get(room);
      if (keys === undefined) this.#dedup.set(room, (keys = new Map<string, [bigint, number]>()));
      expireKeys(keys, now);
      const seen = keys.get(message.messageId);
      if (seen !== undefined && seen[1] > now) {
        return { offset: seen[0], duplicate: true, epoch: state.epoch };
      }
      state.head += 1n;
      state.messages.push({ message: { ...message, room, offset: state.head }, storedAt: now });
      if (state.messages.length >= this.#maxPerRoom * HISTORY_SLACK) {
        state.messages = state.messages.slice(state.messages.length - this.#maxPerRoom);
      }
      // An expired key still present is deleted first so that it moves to the
      // end: the map stays in expiry order, which lets expireKeys stop at the
      // first live key.
      if (seen !== undefined) keys.delete(message.messageId);
      keys.set(message.messageId, [state.head, now + this.#dedupWindowMs]);
      return { offset: state.head, duplicate: false, epoch: state.epoch };
    });
  }

  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    return run(() => {
      this.#check();
      const state = this.#room(room);
      const first = state.messages[0]?.message.offset ?? state.head + 1n;
      const start = afterOffset < first ? 0 : Number(afterOffset - first + 1n);
      const messages = state.messages.slice(start, start + limit).map((m) => m.message);
      return { messages, head: state.head, epoch: state.epoch, oldest: first };
    });
  }

  createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void> {
    return run(() => {
      this.#check();
      const previous = this.#sessions.get(session.memberId);
      if (previous !== undefined) this.#byToken.delete(previous.tokenHash);
      // A copy: the caller may reuse its objects.
      const record = { ...session, rooms: [...session.rooms] };
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
      s.record = { ...s.record, rooms: [...rooms] };
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
      }
      for (const [room, keys] of this.#dedup) {
        expireKeys(keys, now);
        if (keys.size === 0) this.#dedup.delete(room);
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

/**
 * Drops a room's expired dedup keys. Keys are inserted with now + the window,
 * so insertion order is expiry order and the sweep stops at the first live
 * key: O(expired), not O(keys).
 */
function expireKeys(keys: Map<string, [bigint, number]>, now: number): void {
  for (const [id, [, expires]] of keys) {
    if (expires > now) return;
    keys.delete(id);
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
