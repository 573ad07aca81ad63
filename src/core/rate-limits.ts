// The limits of PROTOCOL.md "Rate limits (GCRA)", as the router and the
// gateway ask them: may this publish, join or handshake go ahead? Each answer
// is 0 (yes) or the milliseconds until one more would pass.
//
// Which limiter holds which key: the per-user and per-room limits go to
// `shared` (the cluster's limiter under RATE_LIMIT_DISTRIBUTED, else the
// local one); per-connection and per-IP limits always go to `local`, since a
// connection lives on one node and handshakes are refused before anything
// else is spent on them.
import type { Decision, Rate, RateLimiter } from "../ports/rate-limiter.js";

export interface RateLimitSettings {
  /** RATE_LIMIT_MESSAGES: publishes per user, per connection when anonymous. */
  readonly messages?: Rate | undefined;
  /** RATE_LIMIT_ROOM_MESSAGES: publishes into one room, all publishers together. */
  readonly roomMessages?: Rate | undefined;
  /** RATE_LIMIT_JOINS: joins per connection. */
  readonly joins?: Rate | undefined;
  /** RATE_LIMIT_HANDSHAKES: upgrade attempts per client address. */
  readonly handshakes?: Rate | undefined;
  /** RATE_LIMIT_CLOSE_AFTER: refusals within a minute that close with 1008; 0 = never. */
  readonly closeAfter: number;
}

/** Whose publish quota a publish spends. */
export type Quota =
  | { readonly user: string }
  | { readonly connection: string }
  /** The server itself: only the room limit applies. */
  | undefined;

const ALLOWED = 0;

/** The limits by their label in `roomcast_rate_limited_total`. */
export const RATE_LIMIT_NAMES = ["messages", "room_messages", "joins", "handshakes"] as const;
export type RateLimitName = (typeof RATE_LIMIT_NAMES)[number];

export class RateLimits {
  readonly settings: RateLimitSettings;
  readonly #shared: RateLimiter;
  readonly #local: RateLimiter;
  /** Hears every refusal, by limit (metrics). */
  onRefused: ((limit: RateLimitName) => void) | undefined;

  constructor(settings: RateLimitSettings, shared: RateLimiter, local: RateLimiter) {
    this.settings = settings;
    this.#shared = shared;
    this.#local = local;
  }

  /** No limits at all (tests, tools). */
  static off(local: RateLimiter): RateLimits {
    return new RateLimits({ closeAfter: 0 }, local, local);
  }

  /**
   * Checks the publisher's quota, then the room's; a publish refused by the
   * room gives the publisher's back, so a refused publish consumes nothing.
   */
  async publish(roomId: string, quota: Quota): Promise<number> {
    const { messages, roomMessages } = this.settings;
    let spent: { limiter: RateLimiter; key: string; rate: Rate } | undefined;
    if (messages !== undefined && quota !== undefined) {
      const [limiter, key] =
        "user" in quota
          ? [this.#shared, `m:u:${quota.user}`]
          : [this.#local, `m:c:${quota.connection}`];
      const d = await limiter.take(key, messages);
      if (!d.allowed) return this.#refused("messages", d);
      spent = { limiter, key, rate: messages };
    }
    if (roomMessages !== undefined) {
      const d = await this.#shared.take(`r:${roomId}`, roomMessages);
      if (!d.allowed) {
        if (spent !== undefined) await spent.limiter.refund(spent.key, spent.rate);
        return this.#refused("room_messages", d);
      }
    }
    return ALLOWED;
  }

  async join(connection: string): Promise<number> {
    const joins = this.settings.joins;
    if (joins === undefined) return ALLOWED;
    return this.#refused("joins", await this.#local.take(`j:${connection}`, joins));
  }

  async handshake(ip: string): Promise<number> {
    const handshakes = this.settings.handshakes;
    if (handshakes === undefined) return ALLOWED;
    return this.#refused("handshakes", await this.#local.take(`h:${ip}`, handshakes));
  }

  /** The wait a decision asks for, reporting a refusal. */
  #refused(limit: RateLimitName, d: Decision): number {
    if (!d.allowed) this.onRefused?.(limit);
    return retry(d);
  }

  async close(): Promise<void> {
    await this.#shared.close();
    if (this.#local !== this.#shared) await this.#local.close();
  }
}

/** 0 when allowed, else whole milliseconds, at least 1. */
function retry(d: Decision): number {
  return d.allowed ? ALLOWED : Math.max(1, Math.ceil(d.retryAfterMs));
}
