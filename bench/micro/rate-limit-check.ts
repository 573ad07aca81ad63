// The CPU cost of the publish-path rate-limit checks, in process: the same
// `RateLimits.publish` the router calls, over one local MemoryLimiter, with
// the message and room limits on (at rates no publish reaches, so every call
// runs both GCRA checks and none refuses) against no limits (the call alone).
// Prints µs of this process's CPU per publish for each, alternating rounds.
// Usage: node dist/bench/micro/rate-limit-check.js [publishes=1000000] [rounds=3]
// (docs/benchmarks.md, "Cost of rate limits").
import { MemoryLimiter } from "../../src/adapters/ratelimit/memory-limiter.js";
import { RateLimits } from "../../src/core/rate-limits.js";

const [publishes = 1_000_000, rounds = 3] = process.argv.slice(2, 4).map(Number);
const unlimited = { intervalMs: 0.001, burst: 1e6 };

function limits(on: boolean): RateLimits {
  const limiter = new MemoryLimiter();
  return new RateLimits(
    on ? { messages: unlimited, roomMessages: unlimited, closeAfter: 0 } : { closeAfter: 0 },
    limiter,
    limiter,
  );
}

async function cpuPerPublish(l: RateLimits): Promise<number> {
  const quota = { connection: "c-1" };
  const before = process.cpuUsage();
  for (let i = 0; i < publishes; i++) {
    if ((await l.publish("room-1", quota)) > 0) throw new Error("refused: the rates are too low");
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / publishes;
}

for (let round = 0; round < rounds; round++) {
  const off = await cpuPerPublish(limits(false));
  const on = await cpuPerPublish(limits(true));
  process.stdout.write(
    `${JSON.stringify({ round, publishes, offUsPerPublish: Number(off.toFixed(3)), onUsPerPublish: Number(on.toFixed(3)) })}\n`,
  );
}
process.exit(0);
