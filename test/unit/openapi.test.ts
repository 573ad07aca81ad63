// The OpenAPI document and the API's route table must agree: the same paths,
// methods and statuses; every $ref resolves; and the node serves exactly it.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { apiRoutes, ServerApi, type ApiHost } from "../../src/gateway/api.js";
import { openApiDocument } from "../../src/gateway/openapi.js";
import { silentLogger } from "../../src/observability/logging.js";

test("openapi - lists exactly the API's routes, methods and statuses", () => {
  assert.equal(openApiDocument.openapi, "3.1.0");
  const documented: string[] = [];
  for (const [path, item] of Object.entries(openApiDocument.paths)) {
    for (const [method, op] of Object.entries(item as Record<string, { responses: object }>)) {
      const statuses = Object.keys(op.responses).map(Number).sort();
      documented.push(`${method.toUpperCase()} ${path} ${statuses.join(",")}`);
    }
  }
  const routed = apiRoutes.map((r) => `${r.method} ${r.path} ${[...r.statuses].sort().join(",")}`);
  assert.deepEqual(documented.sort(), routed.sort());
});

test("openapi - every $ref points at a schema of the document", () => {
  const text = JSON.stringify(openApiDocument);
  const refs = [...text.matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map(
    (m) => m[1]!,
  );
  assert.ok(refs.length > 0);
  for (const name of refs) assert.ok(name in openApiDocument.components.schemas, name);
});

test("openapi - served at /api/v1/openapi.json when the API is on, 404 when off", async () => {
  const host = {} as ApiHost; // never called for this path
  for (const [keys, status] of [
    [["k"], 200],
    [[], 404],
  ] as const) {
    const api = new ServerApi(host, { keys, maxBodyBytes: 1024 }, silentLogger());
    const server = createServer((req, res) => {
      if (!api.serve(req, res)) res.writeHead(500).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/openapi.json`);
      assert.equal(res.status, status);
      const body = (await res.json()) as Record<string, unknown>;
      if (status === 200) assert.deepEqual(body, JSON.parse(JSON.stringify(openApiDocument)));
      else assert.deepEqual(Object.keys(body), ["error"]);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }
});
