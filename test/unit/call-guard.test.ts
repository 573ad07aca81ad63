// The guard's timeouts share one timer armed for the oldest deadline: each
// call must still time out at its own deadline, no sooner, and a call that
// settles in time must be untouched by the others' timeouts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { CallGuard, type GuardErrors } from "../../src/adapters/guard/call-guard.js";

class TimedOut extends Error {}
const errors: GuardErrors = {
  refused: (what) => new Error(`${what} refused`),
  timedOut: (what, ms) => new TimedOut(`${what} timed out after ${ms} ms`),
  failed: (what, err) => new Error(`${what} failed`, { cause: err }),
};

const hang = () => new Promise<never>(() => undefined);

/** Runs a call and records how long after its start it settled, and how. */
async function timed(guard: CallGuard, fn: () => Promise<string>) {
  const started = performance.now();
  try {
    const value = await guard.call("op", fn);
    return { value, after: performance.now() - started, at: performance.now() };
  } catch (err) {
    return { err, after: performance.now() - started, at: performance.now() };
  }
}

test("call guard - staggered calls each time out at their own deadline", async () => {
  const guard = new CallGuard(errors, { timeoutMs: 100, failures: 1000 });
  const first = timed(guard, hang);
  // Staggered starts are the case under test: the later calls' deadlines
  // fall after the one the shared timer is first armed for.
  await delay(40);
  const quick = timed(guard, async () => {
    await delay(10);
    return "ok";
  });
  const later = timed(guard, hang);
  const [a, b, c] = await Promise.all([first, quick, later]);
  assert.ok(a.err instanceof TimedOut);
  assert.ok(c.err instanceof TimedOut);
  assert.equal(b.value, "ok");
  // Timers may fire up to a millisecond early against performance.now().
  assert.ok(a.after >= 99, `first timed out after ${a.after} ms`);
  assert.ok(c.after >= 99, `later timed out after ${c.after} ms`);
  assert.ok(c.at - a.at >= 30, `later timed out ${c.at - a.at} ms after the first`);
});

test("call guard - a call made after the earlier ones settled gets its full timeout", async () => {
  const guard = new CallGuard(errors, { timeoutMs: 100, failures: 1000 });
  // Settles at once, but the shared timer stays armed for its deadline.
  assert.equal((await timed(guard, () => Promise.resolve("done"))).value, "done");
  await delay(50);
  const late = await timed(guard, hang);
  assert.ok(late.err instanceof TimedOut);
  assert.ok(late.after >= 99, `timed out after ${late.after} ms`);
});

test("call guard - many calls settling in any order all get their own outcome", async () => {
  const guard = new CallGuard(errors, { timeoutMs: 200, failures: 1000 });
  const calls = Array.from({ length: 3000 }, (_, i) =>
    timed(guard, () =>
      i % 3 === 2
        ? hang()
        : new Promise<string>((resolve) => setTimeout(() => resolve(String(i)), i % 50)),
    ),
  );
  const outcomes = await Promise.all(calls);
  outcomes.forEach((o, i) => {
    if (i % 3 === 2) assert.ok(o.err instanceof TimedOut, `call ${i}`);
    else assert.equal(o.value, String(i));
  });
});
