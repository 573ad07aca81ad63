// Names where the promoted bytes of a `--promoted-prof` profile were
// allocated (bench/lib/promoted-preload.ts): per function, and per call path
// of a few frames, with the share of the sampled total.
// Usage: node dist/bench/promoted-top.js <file.heapprofile> [count] [frames]
import { readFileSync } from "node:fs";
import { promotedSites, type SamplingNode } from "./lib/promoted-prof.js";

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write(
    "usage: node dist/bench/promoted-top.js <file.heapprofile> [count] [frames]\n",
  );
  process.exit(2);
}
const count = Number(process.argv[3] ?? "20");
const frames = Number(process.argv[4] ?? "4");
const root = (JSON.parse(readFileSync(file, "utf8")) as { head: SamplingNode }).head;
const { total, byFunction, byPath } = promotedSites(root, frames);

const print = (title: string, map: Map<string, number>): void => {
  process.stdout.write(`${title}\n`);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    const mb = (bytes / 1e6).toFixed(2).padStart(8);
    const share = ((100 * bytes) / total).toFixed(1).padStart(5);
    process.stdout.write(`${mb} MB ${share} %  ${key}\n`);
  }
};
process.stdout.write(`${(total / 1e6).toFixed(1)} MB sampled\n`);
print("by function:", byFunction);
print(`by path (${frames} frames, innermost first):`, byPath);
