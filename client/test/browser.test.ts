// The demo page in a real headless Chromium (Debian's, driven by
// playwright-core; never a downloaded browser): two pages chat, both resume
// after a server restart, one loses its network (offline, and its TCP
// connection cut: see cable.ts) while the other publishes, and shows every
// message once, in order, when it comes back. No console errors but the
// browser's own notice of a failed WebSocket while it cannot connect.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { freePort, makeTempDir, removeTempDir } from "../../tools/process-harness.js";
import { requireBinary } from "../../test/helpers/require-binary.js";
import { startServer, type ServerProcess } from "../../test/helpers/server.js";
import { Cable } from "./cable.js";

const executablePath =
  process.env["CHROMIUM_PATH"] ??
  ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const run = requireBinary(executablePath !== undefined, "chromium (apt-get install chromium)");
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
/** Where the screenshot goes; docs/images/demo.png is a copy of one. */
const SCREENSHOT = process.env["DEMO_SCREENSHOT"] ?? "dist/demo-screenshot.png";
/** Chromium's own console line when a WebSocket cannot connect (the server is restarting). */
const EXPECTED_CONSOLE = /WebSocket connection to '.*' failed/;

let browser: Browser;
let server: ServerProcess;
let dir: string;
let env: Record<string, string>;

before(async () => {
  if (!run) return;
  dir = await makeTempDir("roomcast-browser");
  env = { STORE: "sqlite", SQLITE_PATH: join(dir, "db"), PORT: String(await freePort()) };
  server = await startServer(env);
  browser = await chromium.launch({
    executablePath: executablePath!,
    args: FLAGS,
    timeout: 30_000,
  });
});

after(async () => {
  if (!run) return;
  await browser?.close();
  await server?.stop();
  await removeTempDir(dir);
});

interface Tab {
  readonly context: BrowserContext;
  readonly page: Page;
  readonly errors: string[];
}

async function open(port = server.port): Promise<Tab> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !EXPECTED_CONSOLE.test(m.text())) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/`);
  return { context, page, errors };
}

/** [offset, content] of every message shown for `room`. */
async function shown(page: Page, room = "lobby"): Promise<[number, string][]> {
  const items = page.locator(`ol[data-room="${room}"] li[data-offset]`);
  const out: [number, string][] = [];
  for (const li of await items.all()) {
    out.push([
      Number(await li.getAttribute("data-offset")),
      (await li.locator(".content").textContent()) ?? "",
    ]);
  }
  return out;
}

async function say(tab: Tab, text: string): Promise<void> {
  await tab.page.fill("#message-input", text);
  await tab.page.click("#send");
}

function sees(tab: Tab, text: string): Promise<void> {
  return tab.page
    .locator('ol[data-room="lobby"] li[data-offset]')
    .filter({ hasText: text })
    .first()
    .waitFor();
}

async function ready(tab: Tab, resumed: boolean): Promise<void> {
  await tab.page.waitForSelector('#state[data-state="open"]');
  await tab.page.waitForSelector(`#session[data-resumed="${resumed}"]`);
  await tab.page.waitForSelector("body[data-joined_lobby]");
}

test(
  "demo page - connects, joins lobby, chats, resumes after a restart and an offline spell",
  { skip: !run && "chromium not installed" },
  async () => {
    const cable = await Cable.open(server.port);
    const a = await open();
    const b = await open(cable.port);
    await ready(a, false);
    await ready(b, false);

    await say(a, "hello from A");
    await sees(b, "hello from A");
    await say(b, "hello from B");
    await sees(a, "hello from B");

    await server.stop();
    server = await startServer(env);
    await ready(a, true);
    await ready(b, true);
    await say(a, "after the restart");
    await sees(b, "after the restart");

    await b.context.setOffline(true);
    cable.unplug();
    for (const text of ["while B was away 1", "while B was away 2", "while B was away 3"]) {
      await say(a, text);
      await sees(a, text);
    }
    cable.plug();
    await b.context.setOffline(false);
    await sees(b, "while B was away 3");
    // B came back by resuming its session (once after the restart, once now).
    await b.page.locator("#log li").filter({ hasText: "session resumed" }).nth(1).waitFor();

    const expected = [
      "hello from A",
      "hello from B",
      "after the restart",
      "while B was away 1",
      "while B was away 2",
      "while B was away 3",
    ];
    for (const tab of [a, b]) {
      const messages = await shown(tab.page);
      assert.deepEqual(
        messages.map(([, content]) => content),
        expected,
      );
      assert.deepEqual(
        messages.map(([offset]) => offset),
        expected.map((_, i) => messages[0]![0] + i),
        "contiguous offsets",
      );
    }
    await b.page.screenshot({ path: SCREENSHOT });
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
    await cable.close();
  },
);
