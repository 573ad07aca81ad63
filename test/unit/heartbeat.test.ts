import assert from "node:assert/strict";
import { it } from "node:test";
import { Heartbeat, type Beating } from "../../src/gateway/heartbeat.js";
import type { CloseCode } from "../../src/protocol/errors.js";

/** A small seeded generator (mulberry32), so the spread is the same every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class FakeConn implements Beating {
  pingSentAt = 0;
  lastPingAt: number;
  readonly openedAt: number;
  sawFrame = true;
  pings = 0;
  closedWith: CloseCode | undefined;
  constructor(now: number) {
    this.openedAt = this.lastPingAt = now;
  }
  ping(): void {
    this.pings++;
  }
  close(code: CloseCode): void {
    this.closedWith = code;
  }
}

void it("heartbeat - connections opened together are pinged spread over the first interval, then once per interval", () => {
  const interval = 1000;
  const beat = new Heartbeat({
    pingIntervalMs: interval,
    pongTimeoutMs: 10 * interval,
    firstFrameTimeoutMs: 0,
    random: seeded(17),
  });
  try {
    const start = Date.now();
    const conns = Array.from({ length: 1000 }, () => new FakeConn(start));
    for (const c of conns) beat.add(c);
    // Sweeps every tenth of the interval: each pings about a tenth of them,
    // where without the spread the sweep at one interval would ping all 1,000.
    const perSweep: number[] = [];
    for (let t = 100; t <= interval + 50; t += 100) {
      const before = conns.reduce((n, c) => n + c.pings, 0);
      beat.sweep(start + t);
      perSweep.push(conns.reduce((n, c) => n + c.pings, 0) - before);
    }
    assert.equal(
      conns.every((c) => c.pings === 1),
      true,
      "every connection is pinged within its first interval",
    );
    assert.ok(Math.max(...perSweep) <= 160, `pings per sweep: ${perSweep.join(", ")}`);
    // Answered pongs: the next ping comes a whole interval after the first.
    for (const c of conns) c.pingSentAt = 0;
    beat.sweep(start + interval + 60);
    assert.equal(
      conns.reduce((n, c) => n + c.pings, 0),
      1000,
      "no second ping before an interval has passed",
    );
    beat.sweep(start + 2 * interval + 60);
    assert.equal(
      conns.every((c) => c.pings === 2),
      true,
    );
    assert.equal(
      conns.every((c) => c.closedWith === undefined),
      true,
    );
  } finally {
    beat.stop();
  }
});
