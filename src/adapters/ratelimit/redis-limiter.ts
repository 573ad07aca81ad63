// GCRA in Redis: one Lua script per check, atomic on the server, using the
// server's TIME so every node reads the same clock. One string key per limit
// key (`<prefix>:rl:<key>`, holding the tat in ms) with a PX expiry at the
// tat: a key at rest is gone, so idle keys cost nothing.
import { Redis } from "ioredis";
import type {
  Clock,
  Decision,
  Rate,
  RateLimiter,
  RateLimiterCapabilities,
} from "../../ports/rate-limiter.js";

/** Lua: `now` in ms from ARGV[n], or from the server's TIME when it is ''. */
function nowFrom(n: number): string {
  return `local now
if ARGV[${n}] ~= '' then
  now = tonumber(ARGV[${n}])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end`;
}

// ARGV: interval, burst, now ('' = the server's TIME). Replies {allowed, retry}
// with the retry as a string (Lua numbers become integers in replies).
const TAKE = `
${nowFrom(3)}
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local allow_at = tat + interval - interval * burst
if allow_at > now then return {0, tostring(allow_at - now)} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, '0'}
`;

const REFUND = `
${nowFrom(2)}
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local back = tat - tonumber(ARGV[1])
if back <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', back), 'PX', math.max(1, math.ceil(back - now)))
end
return 1
`;

type Reply = [number, string];

interface LimiterCommands {
  roomcastRateTake(key: string, interval: string, burst: string, now: string): Promise<Reply>;
  roomcastRateRefund(key: string, interval: string, now: string): Promise<number>;
}

export interface RedisLimiterOptions {
  readonly url: string;
  readonly prefix?: string;
  /** Test only: send this clock's time instead of using the server's TIME. */
  readonly now?: Clock;
}

export class RedisLimiter implements RateLimiter {
  readonly capabilities: RateLimiterCapabilities = { shared: true };
  readonly #opts: RedisLimiterOptions;
  readonly #prefix: string;
  #redis: (Redis & LimiterCommands) | undefined;

  constructor(opts: RedisLimiterOptions) {
    this.#opts = opts;
    this.#prefix = `${opts.prefix ?? "roomcast"}:rl:`;
  }

  async open(): Promise<void> {
    if (this.#redis !== undefined) return;
    const redis = new Redis(this.#opts.url, {
      lazyConnect: true,
      connectionName: "roomcast-ratelimit",
      // A check fails fast while disconnected, and the node falls back to
      // its local limiter (fallback-limiter.ts) instead of queueing.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt) => Math.min(2000, 50 * 2 ** Math.min(attempt, 6)),
    });
    redis.on("error", () => undefined); // reconnects by itself; failures reach callers
    redis.defineCommand("roomcastRateTake", { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand("roomcastRateRefund", { numberOfKeys: 1, lua: REFUND });
    this.#redis = redis as Redis & LimiterCommands;
    await redis.connect();
  }

  #conn(): Redis & LimiterCommands {
    if (this.#redis === undefined) throw new Error("redis limiter is not open");
    return this.#redis;
  }

  #nowArg(): string {
    return this.#opts.now === undefined ? "" : String(this.#opts.now());
  }

  async take(key: string, rate: Rate): Promise<Decision> {
    const [allowed, retry] = await this.#conn().roomcastRateTake(
      this.#prefix + key,
      String(rate.intervalMs),
      String(rate.burst),
      this.#nowArg(),
    );
    return { allowed: allowed === 1, retryAfterMs: allowed === 1 ? 0 : Number(retry) };
  }

  async refund(key: string, rate: Rate): Promise<void> {
    await this.#conn().roomcastRateRefund(
      this.#prefix + key,
      String(rate.intervalMs),
      this.#nowArg(),
    );
  }

  close(): Promise<void> {
    this.#redis?.disconnect();
    this.#redis = undefined;
    return Promise.resolve();
  }
}
