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
import { DedupKeys, HistoryLog } from "./memory-records.js";

interface RoomState {
  head: bigint;
  readonly epoch: string;
  /** Contiguous, oldest first: the last one's offset is `head`. */
  readonly history: HistoryLog;
  readonly dedup: DedupKeys;
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
   * HISTORY_SIZE, when known: a room never holds more than this many
   * messages, whatever TRIM_INTERVAL is (the trim also cuts by age).
   */
  readonly maxPerRoom?: number;
}

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
      state = { head: 0n, epoch: randomUUID(), history: new HistoryLog(), dedup: new DedupKeys() };
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
      const history = state.history;
      history.append(message, now);
      // HISTORY_SIZE holds between trims too: dropping the oldest is O(1).
      if (history.length > this.#maxPerRoom) history.drop(history.length - this.#maxPerRoom);
      keys.add(message.messageId, state.head, now + this.#dedupWindowMs);
      return { offset: state.head, duplicate: false, epoch: state.epoch };
    });
  }

  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage> {
    return run(() => {
      this.#check();
      const state = this.#room(room);
      const history = state.history;
      const first = state.head - BigInt(history.length) + 1n;
      const start = afterOffset < first ? 0 : Number(afterOffset - first + 1n);
      const end = Math.min(history.length, start + limit);
      const messages: StoredMessage[] = [];
      for (let i = start; i < end; i++) {
        messages.push(history.message(i, room, first + BigInt(i)));
      }
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
        const history = state.history;
        let drop = Math.max(0, history.length - policy.maxPerRoom);
        while (drop < history.length && history.storedAt(drop) <= now - policy.maxAgeMs) drop++;
        if (drop > 0) {
          history.drop(drop);
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
    // The records live in a process-wide chunk pool: give them back.
    for (const state of this.#rooms.values()) {
      state.history.clear();
      state.dedup.clear();
    }
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
