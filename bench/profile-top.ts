// Names the hottest functions of a V8 .cpuprofile (as written by `node --cpu-prof`):
// self time per function, and total time (self + callees) for the top entries.
// Usage: node dist/bench/profile-top.js <file.cpuprofile> [count]
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write("usage: node dist/bench/profile-top.js <file.cpuprofile> [count]\n");
  process.exit(2);
}
const count = Number(process.argv[3] ?? "25");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) =>
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
);

const label = (n: ProfileNode): string => {
  const url = n.callFrame.url
    .replace(/^.*\/node_modules\//, "")
    .replace(/^file:\/\/.*\/dist\//, "");
  return `${n.callFrame.functionName || "(anonymous)"} ${url}:${n.callFrame.lineNumber + 1}`;
};

const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (node === undefined) continue;
  all += us;
  self.set(label(node), (self.get(label(node)) ?? 0) + us);
  // Total time: charge every distinct function on the stack once.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (n === undefined) break;
    const l = label(n);
    if (seen.has(l)) continue;
    seen.add(l);
    total.set(l, (total.get(l) ?? 0) + us);
  }
}

const pct = (us: number): string => `${((100 * us) / all).toFixed(1).padStart(5)} %`;
const top = (m: Map<string, number>): [string, number][] =>
  [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, count);
process.stdout.write(`${file}: ${(all / 1e6).toFixed(2)} s sampled\n\nself time:\n`);
for (const [l, us] of top(self)) process.stdout.write(`${pct(us)}  ${l}\n`);
process.stdout.write(`\ntotal time (self + callees):\n`);
for (const [l, us] of top(total)) process.stdout.write(`${pct(us)}  ${l}\n`);
