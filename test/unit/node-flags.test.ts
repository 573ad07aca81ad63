// Every launcher of Roomcast passes NODE_FLAGS (src/config/node-flags.ts), and
// this Node accepts them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { NODE_FLAGS } from "../../src/config/node-flags.js";
import { serverSpec } from "../../bench/lib/servers.js";
import { ServerProcess } from "../../bench/lib/server-process.js";

const read = (path: string): string =>
  readFileSync(new URL(`../../../${path}`, import.meta.url), "utf8");

test("node flags - npm start runs main.js with them", () => {
  const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts["start"], ["node", ...NODE_FLAGS, "dist/src/main.js"].join(" "));
});

test("node flags - the image's CMD runs main.js with them", () => {
  const cmds = [...read("Dockerfile").matchAll(/^CMD (\[.*\])$/gm)].map((m) => m[1]!);
  assert.ok(cmds.length > 0, "the Dockerfile has a top-level CMD");
  assert.deepEqual(JSON.parse(cmds.at(-1)!), ["node", ...NODE_FLAGS, "dist/src/main.js"]);
});

test("node flags - the benchmark starts Roomcast with them", async () => {
  assert.equal(serverSpec("raw-ws").nodeArgs, undefined);
  const server = await ServerProcess.start(serverSpec("roomcast"), {}, ["--stack-size=2000"]);
  try {
    // The process's own command line: node, the shipped flags, then the run's own, then main.js.
    const argv = readFileSync(`/proc/${server.pid}/cmdline`, "utf8").split("\0").slice(0, -1);
    assert.deepEqual(argv.slice(1, -1), [...NODE_FLAGS, "--stack-size=2000"]);
    assert.match(argv.at(-1)!, /src\/main\.js$/);
  } finally {
    await server.stop();
  }
});

test("node flags - this node accepts them", () => {
  const run = spawnSync(process.execPath, [...NODE_FLAGS, "-e", "process.exit(7)"], {
    encoding: "utf8",
  });
  assert.equal(run.status, 7, run.stderr);
  assert.equal(run.stderr, "");
  // An unknown flag is refused the same way, so the check above can fail.
  const bad = spawnSync(process.execPath, ["--no-such-v8-flag-here", "-e", "process.exit(7)"], {
    encoding: "utf8",
  });
  assert.notEqual(bad.status, 7);
});
