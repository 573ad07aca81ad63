// The one contract suite every RateLimiter adapter passes, run unchanged
// against each. Most cases run on a controllable clock that the test moves
// (the adapters take a `now` for that); the rest run on the backend's own
// clock in real time.
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import type { Clock, Rate, RateLimiter } from "../../src/ports/rate-limiter.js";
import { eventually } from "../helpers/eventually.js";

export interface RateLimiterContractOptions {
  readonly shared: boolean;
  readonly skip?: boolean;
  readonly before?: () => Promise<void>;
  readonly after?: () => Promise<void>;
  /** Keys starting with `prefix` the backend holds now (to show keys at rest cost nothing). */
  readonly keysHeld: (limiter: RateLimiter, prefix: string) => Promise<number>;
  /** Drops keys at rest now, for adapters that sweep rather than expire. */
  readonly sweep?: (limiter: RateLimiter) => Promise<void>;
  /** Stops the backend's server, for the outage case; shared adapters only. */
  readonly stopServer?: () => Promise<void>;
}

/** A clock the test moves by hand. */
class TestClock {
  t = Date.now();
  readonly now: Clock = () => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

let keys = 0;
function freshKey(name: string): string {
  keys += 1;
  return `${name}-${process.pid}-${keys}-${Math.random().toString(36).slice(2, 8)}`;
}

async function takeMany(
  limiter: RateLimiter,
  key: string,
  rate: Rate,
  n: number,
): Promise<boolean[]> {
  const out: boolean[] = [];
  for (let i = 0; i < n; i++) out.push((await limiter.take(key, rate)).allowed);
  return out;
}

const count = (xs: readonly boolean[]) => xs.filter(Boolean).length;

export function rateLimiterContract(
  name: string,
  make: (now?: Clock) => Promise<RateLimiter>,
  opts: RateLimiterContractOptions,
): void {
  async function opened(t: TestContext, now?: Clock): Promise<RateLimiter> {
    const limiter = await make(now);
    await limiter.open();
    t.after(() => limiter.close());
    return limiter;
  }

  void describe(name, { skip: opts.skip === true }, () => {
    if (opts.before !== undefined) before(opts.before);
    if (opts.after !== undefined) after(opts.after);

    void it("rate limiter - states whether it is shared", async (t) => {
      const limiter = await opened(t);
      assert.equal(limiter.capabilities.shared, opts.shared);
    });

    void it("rate limiter - from rest exactly burst pass, the next is refused with the interval to wait", async (t) => {
      const clock = new TestClock();
      const limiter = await opened(t, clock.now);
      const key = freshKey("burst");
      const rate = { intervalMs: 100, burst: 5 };
      assert.deepEqual(await takeMany(limiter, key, rate, 5), [true, true, true, true, true]);
      const refused = await limiter.take(key, rate);
      assert.equal(refused.allowed, false);
      assert.ok(Math.abs(refused.retryAfterMs - 100) < 1, `retry ${refused.retryAfterMs}`);
      clock.advance(40);
      const later = await limiter.take(key, rate);
      assert.equal(later.allowed, false);
      assert.ok(Math.abs(later.retryAfterMs - 60) < 1, `retry ${later.retryAfterMs}`);
    });

    void it("rate limiter - after retryAfterMs exactly one more passes; a refusal consumed nothing", async (t) => {
      const clock = new TestClock();
      const limiter = await opened(t, clock.now);
      const key = freshKey("retry");
      const rate = { intervalMs: 250, burst: 2 };
      await takeMany(limiter, key, rate, 2);
      // Many refusals in a row, then the hinted wait: one passes, as if none were refused.
      let wait = 0;
      for (let i = 0; i < 20; i++) wait = (await limiter.take(key, rate)).retryAfterMs;
      clock.advance(wait);
      assert.deepEqual(await takeMany(limiter, key, rate, 2), [true, false]);
    });

    void it("rate limiter - the sustained rate is one per interval, and rest refills the burst", async (t) => {
      const clock = new TestClock();
      const limiter = await opened(t, clock.now);
      const key = freshKey("steady");
      const rate = { intervalMs: 10, burst: 3 };
      await takeMany(limiter, key, rate, 3);
      let passed = 0;
      for (let i = 0; i < 100; i++) {
        clock.advance(5);
        if ((await limiter.take(key, rate)).allowed) passed++;
      }
      // 500 ms at one per 10 ms.
      assert.ok(passed === 50 || passed === 49, `passed ${passed}`);
      clock.advance(10_000);
      assert.equal(count(await takeMany(limiter, key, rate, 5)), 3);
    });

    void it("rate limiter - keys and rates are independent; fractional intervals work", async (t) => {
      const clock = new TestClock();
      const limiter = await opened(t, clock.now);
      const [a, b] = [freshKey("a"), freshKey("b")];
      const rate = { intervalMs: 1000 / 3, burst: 1 };
      assert.deepEqual(await takeMany(limiter, a, rate, 2), [true, false]);
      assert.deepEqual(await takeMany(limiter, b, rate, 2), [true, false]);
      clock.advance(1000 / 3);
      assert.deepEqual(await takeMany(limiter, a, rate, 2), [true, false]);
    });

    void it("rate limiter - refund gives one request back", async (t) => {
      const clock = new TestClock();
      const limiter = await opened(t, clock.now);
      const key = freshKey("refund");
      const rate = { intervalMs: 1000, burst: 3 };
      await takeMany(limiter, key, rate, 3);
      assert.equal((await limiter.take(key, rate)).allowed, false);
      await limiter.refund(key, rate);
      assert.deepEqual(await takeMany(limiter, key, rate, 2), [true, false]);
      await limiter.refund(freshKey("never-taken"), rate); // harmless
    });

    void it("rate limiter - concurrent takes never pass more than the burst", async (t) => {
      const clock = new TestClock();
      // Two instances stand for two nodes when the backend is shared.
      const limiters = opts.shared
        ? [await opened(t, clock.now), await opened(t, clock.now)]
        : [await opened(t, clock.now)];
      const key = freshKey("race");
      const rate = { intervalMs: 3_600_000, burst: 25 };
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => limiters[i % limiters.length]!.take(key, rate)),
      );
      assert.equal(results.filter((r) => r.allowed).length, 25);
      assert.ok(results.every((r) => r.allowed || r.retryAfterMs > 0));
    });

    void it("rate limiter - keys at rest cost nothing", async (t) => {
      const clock = new TestClock();
      const limiter = await opened(t, clock.now);
      // Only this case's keys are counted: keys of earlier cases expire on
      // Redis's own clock while this one runs, so a count of all keys races.
      const tag = freshKey("idle");
      // A key lives one interval after a single take. At 20 ms, Redis (whose
      // TTL runs on its own clock) dropped the first keys before a loaded
      // machine had counted them; a second leaves room for ten round trips.
      const rate = { intervalMs: 1000, burst: 2 };
      for (let i = 0; i < 10; i++) await limiter.take(`${tag}/${i}`, rate);
      assert.equal(await opts.keysHeld(limiter, tag), 10);
      clock.advance(10_000);
      // Expiry runs on the backend's own clock (Redis TTL): wait it out too.
      await eventually(
        async () => {
          await opts.sweep?.(limiter);
          return (await opts.keysHeld(limiter, tag)) === 0;
        },
        { timeoutMs: 6000 },
      );
    });

    void it("rate limiter - on the backend's own clock: burst, refusal, and a pass after the hint", async (t) => {
      const limiter = await opened(t);
      const key = freshKey("real");
      const rate = { intervalMs: 60, burst: 3 };
      assert.equal(count(await takeMany(limiter, key, rate, 3)), 3);
      const refused = await limiter.take(key, rate);
      assert.equal(refused.allowed, false);
      assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 60, `${refused.retryAfterMs}`);
      await new Promise((r) => setTimeout(r, Math.ceil(refused.retryAfterMs) + 5));
      assert.equal((await limiter.take(key, rate)).allowed, true);
    });

    if (opts.stopServer !== undefined) {
      const stop = opts.stopServer;
      void it("rate limiter - rejects, never allows, when its backend is down", async (t) => {
        const limiter = await opened(t);
        const rate = { intervalMs: 1000, burst: 1 };
        await limiter.take(freshKey("up"), rate);
        await stop();
        await assert.rejects(limiter.take(freshKey("down"), rate));
      });
    }
  });
}
