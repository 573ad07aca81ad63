// GET / — the demo chat page (HTTP.md, "Demo page"): client/demo bundled with
// the SDK into dist/demo by `npm run build`. Files are read once, on first
// request, and kept in memory; a node built without them answers 503 saying so.
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";

const DIR = new URL("../../demo/", import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/demo/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/demo/app.js.map": { file: "app.js.map", type: "application/json" },
};

export class DemoPage {
  readonly #wsPath: string;
  readonly #cache = new Map<string, Promise<Buffer | undefined>>();

  constructor(wsPath: string) {
    this.#wsPath = wsPath;
  }

  /** Answers a request for one of the page's files; false for any other path. */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const entry = FILES[path];
    if (entry === undefined || (req.method !== "GET" && req.method !== "HEAD")) return false;
    void this.#load(entry.file).then((body) => {
      if (body === undefined) {
        const text = JSON.stringify({
          error: { code: "unavailable", message: "demo page not built: run npm run build" },
        });
        res.writeHead(503, { "Content-Type": "application/json" });
        res.end(text);
        return;
      }
      res.writeHead(200, {
        "Content-Type": entry.type,
        "Content-Length": body.length,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    });
    return true;
  }

  #load(file: string): Promise<Buffer | undefined> {
    let body = this.#cache.get(file);
    if (body === undefined) {
      body = readFile(new URL(file, DIR)).then(
        (buf) => (file === "index.html" ? this.#page(buf) : buf),
        () => undefined,
      );
      this.#cache.set(file, body);
    }
    return body;
  }

  /** The page, told where the WebSocket endpoint is. */
  #page(html: Buffer): Buffer {
    const path = this.#wsPath.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
    return Buffer.from(html.toString("utf8").replace("{{WS_PATH}}", path));
  }
}
