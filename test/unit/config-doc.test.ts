// docs/configuration.md lists every variable of the schema with its default.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { configSchema } from "../../src/config/schema.js";

const doc = readFileSync(new URL("../../../docs/configuration.md", import.meta.url), "utf8");
const rows = new Map(
  [...doc.matchAll(/^\|\s*`([A-Z_]+)`\s*\|([^|]+)\|/gm)].map((m) => [m[1]!, m[2]!.trim()]),
);

test("config doc - documents exactly the schema's variables", () => {
  assert.deepEqual([...rows.keys()].sort(), Object.keys(configSchema.shape).sort());
});

test("config doc - states each default as the schema has it", () => {
  for (const [name, field] of Object.entries(configSchema.shape)) {
    const documented = rows.get(name) ?? "";
    const def: string | number | boolean | undefined =
      "_def" in field && "defaultValue" in field._def
        ? (field._def.defaultValue as () => string | number | boolean)()
        : undefined;
    if (def === undefined) {
      assert.match(
        documented,
        /^[*_]\(/,
        `${name} has no default, so the doc should say so in *(...)*`,
      );
    } else {
      assert.equal(documented, `\`${String(def)}\``, name);
    }
  }
});
