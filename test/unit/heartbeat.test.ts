import assert from "node:assert/strict";
import { it } from "node:test";
import { Heartbeat, monotonicMs, type Beating } from "../../src/gateway/heartbeat.js";
import type { CloseCode } from "../../src/protocol/errors.js";
import { seededRandom } from "../helpers/seeded-random.js";

class FakeConn implements Beating {
  pingSentAt = 0;
  lastPingAt: number;
  readonly openedAt: number;
  sawFrame = true;
  /** When each ping went out (the sweep's time). */
  readonly pings: number[] = [];
  closedWith: CloseCode | undefined;
  constructor(now: number) {
    this.openedAt = this.lastPingAt = now;
  }
  ping(): void {
    this.pings.push(this.pingSentAt);
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
    random: seededRandom(17),
  });
  try {
    const start = monotonicMs();
    const conns = Array.from({ length: 1000 }, () => new FakeConn(start));
    for (const c of conns) beat.add(c);
    // Sweeps every tenth of the interval: each pings about a tenth of them,
    // where without the spread the sweep one interval on would ping all 1,000.
    // (One more sweep than the interval: add() reads the clock a little later.)
    const perSweep: number[] = [];
    for (let t = 100; t <= interval + 100; t += 100) {
      const before = conns.reduce((n, c) => n + c.pings.length, 0);
      beat.sweep(start + t);
      perSweep.push(conns.reduce((n, c) => n + c.pings.length, 0) - before);
    }
    assert.ok(
      conns.every((c) => c.pings.length === 1),
      "every connection is pinged once within its first interval (unanswered: no second ping)",
    );
    assert.ok(Math.max(...perSweep) <= 160, `pings per sweep: ${perSweep.join(", ")}`);
    // Pongs answered: each connection's next ping comes one interval after its first.
    for (const c of conns) c.pingSentAt = 0;
    const later = start + 1500;
    beat.sweep(later);
    for (const c of conns) {
      const first = c.pings[0]!;
      assert.equal(
        c.pings.length,
        later - first >= interval ? 2 : 1,
        `first ping at +${first - start}`,
      );
    }
    assert.ok(conns.some((c) => c.pings.length === 1) && conns.some((c) => c.pings.length === 2));
    assert.ok(conns.every((c) => c.closedWith === undefined));
  } finally {
    beat.stop();
  }
});
