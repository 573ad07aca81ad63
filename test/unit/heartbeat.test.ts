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
  get closed(): boolean {
    return this.closedWith !== undefined;
  }
  constructor(now: number) {
    this.openedAt = this.lastPingAt = now;
  }
  ping(): void {
    this.pings.push(this.pingSentAt);
  }
  close(code: CloseCode): void {
    assert.equal(this.closedWith, undefined, "closed once");
    this.closedWith = code;
  }
}

void it("heartbeat - connections opened together are pinged spread over the first interval, then once per interval", () => {
  const interval = 1000;
  const start = monotonicMs();
  const conns = Array.from({ length: 1000 }, () => new FakeConn(start));
  const beat = new Heartbeat(
    {
      pingIntervalMs: interval,
      pongTimeoutMs: 10 * interval,
      firstFrameTimeoutMs: 0,
      random: seededRandom(17),
    },
    conns,
  );
  try {
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

void it("heartbeat - a late pong or no first frame closes once; a closing connection is left alone", () => {
  const start = monotonicMs();
  const late = new FakeConn(start);
  const silent = new FakeConn(start);
  silent.sawFrame = false;
  const fine = new FakeConn(start);
  const conns = new Set([late, silent, fine]);
  const beat = new Heartbeat(
    { pingIntervalMs: 1000, pongTimeoutMs: 500, firstFrameTimeoutMs: 300, random: () => 0 },
    conns,
  );
  try {
    for (const c of conns) beat.add(c);
    beat.sweep(start + 100); // nothing due yet
    assert.deepEqual(
      [late, silent, fine].map((c) => c.pings.length),
      [0, 0, 0],
    );
    beat.sweep(start + 300); // the silent one's first frame is overdue
    assert.equal(silent.closedWith, 4003);
    // (add() read the clock a little after `start`: sweeps leave it 100 ms.)
    beat.sweep(start + 1100); // the others are pinged; the closing one is not
    assert.deepEqual(
      [late, silent, fine].map((c) => c.pings.length),
      [1, 0, 1],
    );
    fine.pingSentAt = 0; // its pong
    beat.sweep(start + 1700); // the late one's pong is overdue
    assert.equal(late.closedWith, 4002);
    assert.equal(fine.closedWith, undefined);
    // Sweeps go on while the closing sockets finish their close handshakes:
    // FakeConn.close asserts each is closed once, and neither is pinged again.
    beat.sweep(start + 2000);
    beat.sweep(start + 3200);
    assert.deepEqual(
      [late, silent, fine].map((c) => c.pings.length),
      [1, 0, 2],
    );
    // Gone from the caller's set: no longer visited.
    conns.delete(fine);
    fine.pingSentAt = 0;
    beat.sweep(start + 5200);
    assert.equal(fine.pings.length, 2);
  } finally {
    beat.stop();
  }
});
