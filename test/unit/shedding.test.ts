// Handshake shedding (gateway/shedding.ts): the pending cap, the event-loop
// lag check, and the jittered Retry-After.
import assert from "node:assert/strict";
import { test } from "node:test";
import { HandshakeShedding } from "../../src/gateway/shedding.js";
import { ShedReason } from "../../src/ports/telemetry.js";
import { eventually } from "../helpers/eventually.js";

test("shedding - past HANDSHAKE_MAX_PENDING in progress a handshake is shed; one ending makes room", () => {
  const s = new HandshakeShedding({ maxPending: 2, maxLagMs: 0, retryAfterMs: 5000 });
  assert.equal(s.enter(), undefined);
  assert.equal(s.enter(), undefined);
  assert.equal(s.enter()?.reason, ShedReason.Pending);
  assert.equal(s.pending, 2);
  s.done();
  assert.equal(s.enter(), undefined);
  s.close();
});

test("shedding - Retry-After is a whole number of seconds in [1, HANDSHAKE_RETRY_AFTER]", () => {
  const draws = [0, 0.2, 0.5, 0.999];
  const s = new HandshakeShedding({
    maxPending: 1,
    maxLagMs: 0,
    retryAfterMs: 5000,
    random: () => draws.shift() ?? 0,
  });
  s.enter();
  const hints = [1, 2, 3, 4].map(() => s.enter()?.retryAfterS);
  assert.deepEqual(hints, [1, 2, 3, 5]);
  // Below a second it is still 1 s (Retry-After has whole seconds).
  const short = new HandshakeShedding({ maxPending: 1, maxLagMs: 0, retryAfterMs: 200 });
  short.enter();
  assert.equal(short.enter()?.retryAfterS, 1);
});

test("shedding - a stalled event loop sheds handshakes until it catches up", async () => {
  const s = new HandshakeShedding({ maxPending: 0, maxLagMs: 100, retryAfterMs: 1000 });
  assert.equal(s.enter(), undefined);
  s.done();
  // Block the loop: the turn in progress already counts as lag.
  const until = performance.now() + 300;
  while (performance.now() < until);
  assert.equal(s.enter()?.reason, ShedReason.Lag);
  // Once the sampler ran on time again, handshakes pass.
  await eventually(() => s.enter() === undefined, { timeoutMs: 3000 });
  s.close();
});
