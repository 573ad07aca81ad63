// The longest event-loop delay while a node flushes the sessions of members
// that all acked within one ACK_FLUSH_INTERVAL (see core-node.ts; the memory
// store, so what is measured is the core's own share of the flush).
// Usage: node dist/bench/micro/session-flush.js [members=10000]
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setImmediate as nextTurn, setTimeout as delay } from "node:timers/promises";
import type { Member } from "../../src/core/member.js";
import { coreNode, joinedMember } from "./core-node.js";

const members = Number(process.argv[2] ?? "10000");
const rooms = Math.max(1, Math.floor(members / 10));
const router = await coreNode(true);
const joined: Member[] = [];
for (let i = 0; i < members; i++) joined.push(await joinedMember(router, `room-${i % rooms}`));
// One message per room, so every member has something to ack.
for (let r = 0; r < rooms; r++) {
  joined[r]!.receive(Buffer.from(`{"message":{"target":"room-${r}","content":"x"}}`));
}
await delay(100);
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
// Acks arrive over many turns, as from many sockets; the flush (every 1 s in
// core-node.ts) then saves them all.
for (const [i, member] of joined.entries()) {
  router.ack(member, `room-${i % rooms}`, 1n);
  if (i % 100 === 99) await nextTurn();
}
await delay(2500);
loop.disable();
process.stdout.write(
  `${JSON.stringify({ members, maxDelayMs: loop.max / 1e6, p99DelayMs: loop.percentile(99) / 1e6 })}\n`,
);
process.exit(0);
