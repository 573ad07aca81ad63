// The core's JavaScript heap per joined member, in process (see core-node.ts):
// `n` members in rooms of 100, heap after gc() minus before.
// Usage: node --expose-gc dist/bench/micro/core-heap.js [n=10000]
import { setTimeout as sleep } from "node:timers/promises";
import { coreNode, joinedMember } from "./core-node.js";
import type { Member } from "../../src/core/member.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with node --expose-gc");
const n = Number(process.argv[2] ?? "10000");
const router = await coreNode(false);
const kept: Member[] = [];
gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < n; i++) kept.push(await joinedMember(router, `room-${Math.floor(i / 100)}`));
await sleep(200);
gc();
gc();
const perMember = Math.round((process.memoryUsage().heapUsed - before) / kept.length);
process.stdout.write(`${JSON.stringify({ members: n, heapBytesPerMember: perMember })}\n`);
process.exit(0);
