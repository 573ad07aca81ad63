// docs/errors.md and the registry must list the same codes, with the same
// reconnect class for close codes.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { closeReasons, errorDescriptions, isReconnectCode } from "../../src/protocol/errors.js";

const doc = readFileSync(new URL("../../../docs/errors.md", import.meta.url), "utf8");

test("errors doc - lists exactly the registry's error codes", () => {
  const documented = [...doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm)].map((m) => m[1]);
  assert.deepEqual(documented.sort(), Object.keys(errorDescriptions).sort());
});

test("errors doc - lists exactly the registry's close codes with their reconnect class", () => {
  const rows = [...doc.matchAll(/^\|\s*(\d{4})\s*\|[^|]+\|\s*(yes|no)\s*\|/gm)].map((m) => [
    Number(m[1]),
    m[2],
  ]);
  assert.deepEqual(rows.map(([c]) => c).sort(), Object.keys(closeReasons).map(Number).sort());
  for (const [code, reconnect] of rows) {
    assert.equal(reconnect === "yes", isReconnectCode(Number(code)), `close code ${code}`);
  }
});

test("errors doc - close reasons fit a close frame (123 bytes)", () => {
  for (const reason of Object.values(closeReasons))
    assert.ok(Buffer.byteLength(reason) <= 123, reason);
});
