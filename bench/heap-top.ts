// What two heap snapshots of one server differ by, per connection: the
// snapshots `--heap-snapshots` takes in the idle scenario, one before any
// connection and one with N of them (bench/lib/heap-snapshot.ts).
// Usage: node --max-old-space-size=4096 dist/bench/heap-top.js <before> <after> <N> [count]
import { heapGrowth, heapKinds } from "./lib/heap-snapshot.js";

const [before, after, n, count] = process.argv.slice(2);
const units = Number(n);
if (before === undefined || after === undefined || !(units > 0)) {
  process.stderr.write(
    "usage: node --max-old-space-size=4096 dist/bench/heap-top.js <before.heapsnapshot> <after.heapsnapshot> <connections> [count]\n",
  );
  process.exit(2);
}
const growth = heapGrowth(heapKinds(before), heapKinds(after), units);
process.stdout.write(`${growth.bytesPer.toFixed(0)} bytes of heap per connection\n`);
process.stdout.write("bytes/conn  nodes/conn  kind\n");
for (const k of growth.kinds.slice(0, Number(count ?? "30"))) {
  process.stdout.write(
    `${k.bytesPer.toFixed(1).padStart(10)}  ${k.countPer.toFixed(2).padStart(10)}  ${k.kind}\n`,
  );
}
