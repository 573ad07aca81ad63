// GET / serves the demo page (HTTP.md, "Demo page"), and DEMO_PAGE=false turns it off.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startServer } from "../../test/helpers/server.js";

test("demo page - GET / serves the page and its bundle, told the WebSocket path", async () => {
  const server = await startServer({ WS_PATH: "/rooms" });
  try {
    const page = await fetch(`${server.httpUrl}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    assert.match(html, /data-ws-path="\/rooms"/);
    const bundle = await fetch(`${server.httpUrl}/demo/app.js`);
    assert.equal(bundle.status, 200);
    assert.match(bundle.headers.get("content-type") ?? "", /^text\/javascript/);
    assert.ok((await bundle.arrayBuffer()).byteLength > 1000);
    assert.equal((await fetch(`${server.httpUrl}/other`)).status, 404);
  } finally {
    await server.stop();
  }
});

test("demo page - DEMO_PAGE=false: 404", async () => {
  const server = await startServer({ DEMO_PAGE: "false" });
  try {
    assert.equal((await fetch(`${server.httpUrl}/`)).status, 404);
    assert.equal((await fetch(`${server.httpUrl}/demo/app.js`)).status, 404);
  } finally {
    await server.stop();
  }
});
