// The core's CPU per frame sent, in process (see core-node.ts): `rooms` rooms
// of `size` members, `publishers` of each room publishing one JSON frame per
// round. Prints µs of this process's CPU per frame sent (deliveries + acks).
// Usage: node dist/bench/micro/core-path.js [rooms=1000] [size=10] [publishers=1] [rounds=40] [metrics=on]
// Alternate it between two builds to compare them (docs/benchmarks.md, issue 17).
import { setImmediate as nextTurn } from "node:timers/promises";
import { CountingOutlet, coreNode, joinedMember } from "./core-node.js";
import type { Member } from "../../src/core/member.js";

const [rooms = 1000, size = 10, publishers = 1, rounds = 40] = process.argv.slice(2, 6).map(Number);
const metrics = process.argv[6] !== "off";
const router = await coreNode(metrics);
const senders: [Member, string][] = [];
for (let r = 0; r < rooms; r++) {
  for (let m = 0; m < size; m++) {
    const member = await joinedMember(router, `room-${r}`);
    if (m < publishers) senders.push([member, `room-${r}`]);
  }
}
const filler = "x".repeat(56);
async function round(i: number): Promise<void> {
  for (const [member, room] of senders) {
    member.receive(Buffer.from(`{"message":{"target":"${room}","content":"@${i}|${filler}"}}`));
  }
  await nextTurn();
  await nextTurn();
}
for (let i = 0; i < 10; i++) await round(i);
CountingOutlet.sent = 0;
const before = process.cpuUsage();
for (let i = 0; i < rounds; i++) await round(i);
const used = process.cpuUsage(before);
const sent = CountingOutlet.sent;
process.stdout.write(
  `${JSON.stringify({ rooms, size, publishers, rounds, metrics, sent, cpuUsPerFrame: Number(((used.user + used.system) / sent).toFixed(3)) })}\n`,
);
process.exit(0);
