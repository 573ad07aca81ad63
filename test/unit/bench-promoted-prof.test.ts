// --promoted-prof (bench/lib/promoted-preload.ts, promoted-prof.ts): a real
// node process with the preload writes a profile at exit in which what it
// kept across collections is found at the function that allocated it; and
// --node-args and --peer-node-args reach the runner's options.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseOptions } from "../../bench/lib/cli.js";
import { PROMOTED_ENV, promotedSites, type SamplingNode } from "../../bench/lib/promoted-prof.js";

const preload = new URL("../../bench/lib/promoted-preload.js", import.meta.url).href;

test("bench promoted-prof - what outlives the young generation is found where it was allocated", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bench-promoted-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // keepAlive's objects survive two scavenges (promoted) and are then freed by
  // a major collection; dropSoon's die in the first scavenge.
  const script = `
    function keepAlive() { const a = []; for (let i = 0; i < 100000; i++) a.push({ i, s: "k" + i }); return a; }
    function dropSoon() { let n = 0; for (let i = 0; i < 100000; i++) n += [i, i].length; return n; }
    globalThis.kept = keepAlive();
    dropSoon();
    gc({ type: "minor" }); gc({ type: "minor" });
    globalThis.kept = undefined;
    gc();
  `;
  execFileSync(process.execPath, ["--expose-gc", `--import=${preload}`, "-e", script], {
    env: { ...process.env, [PROMOTED_ENV]: dir },
  });
  const files = readdirSync(dir).filter((f) => f.endsWith(".heapprofile"));
  assert.equal(files.length, 1, "one profile written at exit");
  const root = (JSON.parse(readFileSync(join(dir, files[0]!), "utf8")) as { head: SamplingNode })
    .head;
  const sites = promotedSites(root, 2);
  const bytesOf = (name: string) =>
    [...sites.byFunction]
      .filter(([key]) => key.startsWith(`${name} `))
      .reduce((s, [, b]) => s + b, 0);
  assert.ok(bytesOf("keepAlive") > 1_000_000, `keepAlive sampled: ${bytesOf("keepAlive")} bytes`);
  assert.ok(
    bytesOf("dropSoon") < bytesOf("keepAlive") / 10,
    `dropSoon (died in a scavenge) ${bytesOf("dropSoon")} bytes`,
  );
  const total = [...sites.byFunction.values()].reduce((s, b) => s + b, 0);
  assert.equal(total, sites.total, "every sampled byte is counted once");
});

test("bench promoted-prof - the sums over a call tree, by function and by path", () => {
  const frame = (functionName: string, line: number) => ({
    functionName,
    url: "file:///x/app.js",
    lineNumber: line - 1,
  });
  const root: SamplingNode = {
    callFrame: frame("(root)", 1),
    selfSize: 0,
    children: [
      {
        callFrame: frame("a", 10),
        selfSize: 100,
        children: [{ callFrame: frame("", 20), selfSize: 40, children: [] }],
      },
      {
        callFrame: frame("b", 30),
        selfSize: 0,
        children: [{ callFrame: frame("", 20), selfSize: 2, children: [] }],
      },
    ],
  };
  const sites = promotedSites(root, 2);
  assert.equal(sites.total, 142);
  assert.deepEqual(Object.fromEntries(sites.byFunction), {
    "a app.js:10": 100,
    "(anonymous) app.js:20": 42,
  });
  assert.deepEqual(Object.fromEntries(sites.byPath), {
    "a app.js:10 < (root) app.js:1": 100,
    "(anonymous) app.js:20 < a app.js:10": 40,
    "(anonymous) app.js:20 < b app.js:30": 2,
  });
});

test("bench cli - --node-args gives Roomcast's extra flags, split on spaces", () => {
  const opts = parseOptions(["--node-args", " --max-semi-space-size=64  --trace-gc"]);
  assert.deepEqual(opts.nodeArgs, ["--max-semi-space-size=64", "--trace-gc"]);
  assert.deepEqual(parseOptions([]).nodeArgs, []);
});

test("bench cli - --peer-node-args gives the Node peers' flags, apart from Roomcast's", () => {
  const opts = parseOptions([
    "--peer-node-args",
    "--single-threaded-gc ",
    "--node-args",
    "--trace-gc",
  ]);
  assert.deepEqual(opts.peerNodeArgs, ["--single-threaded-gc"]);
  assert.deepEqual(opts.nodeArgs, ["--trace-gc"]);
  assert.deepEqual(parseOptions([]).peerNodeArgs, []);
});
