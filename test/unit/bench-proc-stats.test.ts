import assert from "node:assert/strict";
import { closeSync, openSync, writeSync } from "node:fs";
import { test } from "node:test";
import { writeSyscalls } from "../../bench/lib/proc-stats.js";

test("bench proc stats: write system calls are counted from /proc/<pid>/io", () => {
  const before = writeSyscalls(process.pid);
  assert.ok(Number.isInteger(before) && before >= 0, `syscw: ${before}`);
  const fd = openSync("/dev/null", "w");
  try {
    for (let i = 0; i < 50; i++) writeSync(fd, "x");
  } finally {
    closeSync(fd);
  }
  const after = writeSyscalls(process.pid);
  // Other threads may write too, so at least the fifty.
  assert.ok(after - before >= 50, `${after - before} writes counted`);
  assert.ok(Number.isNaN(writeSyscalls(2 ** 30)), "a process that does not exist reads NaN");
});
