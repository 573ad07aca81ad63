// Sessions: opening (fresh or resumed, with takeover of a live holder), the
// node's connected members, and keeping each member's session saved —
// chained saves (a late save never overwrites a newer one), batched ack
// flushes, and refreshes so connected sessions never expire.
//
// Resume tokens: 256 random bits, handed to the client once, stored only as a
// SHA-256 hash (a stolen database does not yield usable tokens).
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { CloseCode } from "../protocol/errors.js";
import type { Logger } from "../observability/logging.js";
import type { SessionRoom, Store } from "../ports/store.js";
import type { Identity } from "./access.js";
import type { Telemetry } from "../ports/telemetry.js";
import type { Member } from "./member.js";

/** Session saves a flush starts per event-loop turn. */
export const FLUSH_SLICE = 256;

export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** What the gateway gets before the upgrade: a fresh or resumed session. */
export interface SessionGrant {
  readonly memberId: string;
  readonly userId: string;
  /** The new resume token, handed to the client in the `session` frame. */
  readonly token: string;
  readonly rooms: readonly SessionRoom[];
  readonly resumed: boolean;
  /** True when no live member of this session was found on this node (another node may hold it). */
  readonly remote: boolean;
  /** The verified credential the connection presented; undefined when anonymous. */
  readonly identity?: Identity | undefined;
}

export interface SessionOptions {
  readonly sessionTtlMs: number;
  readonly ackFlushIntervalMs: number;
  readonly telemetry?: Telemetry;
}

export class Sessions {
  readonly #store: Store;
  readonly #opts: SessionOptions;
  readonly #log: Logger;
  /** Connected members of this node, by member id. */
  readonly #members = new Map<string, Member>();
  /** Members whose acks or rooms changed since their session was last saved. */
  readonly #dirty = new Set<Member>();
  readonly #saving = new Map<string, Promise<void>>();
  /** A flush is starting its saves, a slice per turn. */
  #flushing = false;
  readonly #flushTimer: NodeJS.Timeout;
  readonly #refreshTimer: NodeJS.Timeout;
  /** Leaves a member's rooms on this node (the router's part of detaching). */
  readonly #leaveAll: (member: Member) => void;

  constructor(store: Store, opts: SessionOptions, leaveAll: (member: Member) => void, log: Logger) {
    this.#store = store;
    this.#opts = opts;
    this.#leaveAll = leaveAll;
    this.#log = log;
    this.#flushTimer = setInterval(() => this.#flushDirty(), opts.ackFlushIntervalMs);
    this.#flushTimer.unref();
    // Connected sessions must not expire: refresh them well within the TTL.
    this.#refreshTimer = setInterval(
      () => {
        for (const m of this.#members.values()) this.#dirty.add(m);
      },
      Math.max(1000, Math.floor(opts.sessionTtlMs / 3)),
    );
    this.#refreshTimer.unref();
  }

  /**
   * Resumes the session behind `token` (rotating it) or creates a fresh one.
   * A live local member with that session is taken over (closed with 4001,
   * its positions carried over). Rejects with StoreError when the store is
   * down (the gateway answers 503).
   */
  async open(token: string | undefined, userId: string): Promise<SessionGrant> {
    const fresh = newToken();
    const expiresAt = Date.now() + this.#opts.sessionTtlMs;
    if (token !== undefined && token !== "") {
      let record;
      try {
        // Another user's token resumes nothing and leaves that session as it
        // was: the store checks the user in the same atomic step.
        record = await this.#store.resumeSession(
          hashToken(token),
          hashToken(fresh),
          expiresAt,
          userId,
        );
      } catch (err) {
        this.#opts.telemetry?.metrics.resume("error");
        throw err;
      }
      this.#opts.telemetry?.metrics.resume(record !== undefined ? "resumed" : "expired");
      if (record !== undefined) {
        const live = this.#members.get(record.memberId);
        const rooms = live !== undefined ? this.#takeOver(live) : record.rooms;
        return {
          memberId: record.memberId,
          userId,
          token: fresh,
          rooms,
          resumed: true,
          remote: live === undefined,
        };
      }
    }
    const memberId = randomUUID();
    await this.#store.createSession({ memberId, userId, rooms: [] }, hashToken(fresh), expiresAt);
    return { memberId, userId, token: fresh, rooms: [], resumed: false, remote: false };
  }

  add(member: Member): void {
    this.#members.set(member.id, member);
  }

  /** The connection closed: leave its rooms and save the session for resume. */
  detach(member: Member, save = true): void {
    if (member.detached) return;
    const positions = positionsOf(member);
    member.markDetached();
    this.#leaveAll(member);
    this.#dirty.delete(member);
    if (this.#members.get(member.id) === member) this.#members.delete(member.id);
    if (save) this.#saveQuietly(member.id, positions);
  }

  /**
   * Another node resumed this member's session: close it here without saving
   * (the new node already read the stored position; saving ours now could
   * overwrite what it saves next).
   */
  takenOverElsewhere(memberId: string): void {
    const live = this.#members.get(memberId);
    if (live === undefined) return;
    this.detach(live, false);
    live.condemn(CloseCode.SessionTakenOver);
  }

  /** Closes every local socket of `userId` with `code`. */
  closeUser(userId: string, code: CloseCode): void {
    for (const member of [...this.#members.values()]) {
      if (member.userId === userId) member.condemn(code);
    }
  }

  #takeOver(live: Member): SessionRoom[] {
    const positions = positionsOf(live);
    this.detach(live, false);
    live.condemn(CloseCode.SessionTakenOver);
    return positions;
  }

  /** The member's acks or rooms changed: saved with the next flush. */
  touch(member: Member): void {
    this.#dirty.add(member);
  }

  /** Saves the member's session now; rejects when the store fails. */
  save(member: Member): Promise<void> {
    return this.#save(member.id, positionsOf(member));
  }

  saveQuietly(member: Member): void {
    this.#saveQuietly(member.id, positionsOf(member));
  }

  /** Saves of one member are chained so a late one never overwrites a newer one. */
  #save(memberId: string, rooms: readonly SessionRoom[]): Promise<void> {
    const previous = this.#saving.get(memberId) ?? Promise.resolve();
    const next = previous.then(() =>
      this.#store.saveSession(memberId, rooms, Date.now() + this.#opts.sessionTtlMs),
    );
    const settled: Promise<void> = next
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (this.#saving.get(memberId) === settled) this.#saving.delete(memberId);
      });
    this.#saving.set(memberId, settled);
    return next;
  }

  #saveQuietly(memberId: string, rooms: readonly SessionRoom[]): void {
    this.#save(memberId, rooms).catch((err: unknown) =>
      this.#log.warn({ err, member: memberId }, "saving session failed"),
    );
  }

  /**
   * Starts the saves of the dirty members, FLUSH_SLICE per event-loop turn:
   * 10,000 members acking within one interval (or the refresh marking every
   * member) would otherwise hold the loop for all their saves at once.
   */
  #flushDirty(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    const slice = (): void => {
      let started = 0;
      for (const member of this.#dirty) {
        this.#dirty.delete(member);
        this.saveQuietly(member);
        if (++started === FLUSH_SLICE && this.#dirty.size > 0) {
          setImmediate(slice);
          return;
        }
      }
      this.#flushing = false;
    };
    slice();
  }

  /** Saves every connected member's session now, in one go (used when draining). */
  async flushAll(): Promise<void> {
    for (const member of this.#members.values()) this.saveQuietly(member);
    this.#dirty.clear();
    await Promise.all(this.#saving.values());
  }

  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    clearInterval(this.#refreshTimer);
    await this.flushAll();
  }
}

/** Where the member stands in each room: its ack, or else what was sent. */
function positionsOf(member: Member): SessionRoom[] {
  const out: SessionRoom[] = [];
  for (const seat of member.rooms.values()) out.push(seat.position());
  return out;
}
