// The benchmark writes its results formatted, so that a run leaves the tree
// passing `prettier --check` (npm run lint): a raw markdown table and
// JSON.stringify output both fail it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { check } from "prettier";
import { writeFormatted } from "../../bench/lib/write-formatted.js";
import { makeTempDir, removeTempDir } from "../../tools/process-harness.js";

test("bench results: markdown and JSON are written as prettier --check wants them", async () => {
  const dir = await makeTempDir("bench-format");
  try {
    const table = "| Figure | roomcast |\n|---|---:|\n| msg/s | 1,000 |\n";
    const json = JSON.stringify({ runs: [1, 2, 3], name: "fanout" });
    for (const [name, raw] of [
      ["latest-short.md", table],
      ["latest-short.json", json],
    ] as const) {
      const path = join(dir, name);
      assert.equal(
        await check(raw, { filepath: path }),
        false,
        `${name}: the raw text is unformatted`,
      );
      await writeFormatted(path, raw);
      assert.equal(await check(readFileSync(path, "utf8"), { filepath: path }), true, name);
    }
  } finally {
    await removeTempDir(dir);
  }
});
