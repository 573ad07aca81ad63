// The committed generated code (the server's in src/protocol/gen and the client
// SDK's own copy in client/src/gen) must match what `npm run protogen` makes
// from proto/ now: regenerate into a temp dir with the same buf config and compare.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
}

test("protogen - committed generated code is up to date with proto/", () => {
  const out = mkdtempSync(join(tmpdir(), "roomcast-protogen-"));
  try {
    const bin = join(root, "node_modules", ".bin");
    execFileSync(join(bin, "buf"), ["generate", "-o", out], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
      stdio: "pipe",
    });
    for (const dir of [join("src", "protocol", "gen"), join("client", "src", "gen")]) {
      compare(join(out, dir), join(root, dir));
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

function compare(fresh: string, committed: string): void {
  const names = (dir: string) =>
    files(dir)
      .map((f) => relative(dir, f))
      .sort();
  assert.deepEqual(
    names(fresh),
    names(committed),
    `generated file set of ${committed} differs: run npm run protogen`,
  );
  for (const name of names(committed)) {
    assert.equal(
      readFileSync(join(fresh, name), "utf8"),
      readFileSync(join(committed, name), "utf8"),
      `${name} is stale: run npm run protogen`,
    );
  }
}
