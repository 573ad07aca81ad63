// Free TCP ports on 127.0.0.1 for servers that cannot pick their own (Redis, PostgreSQL).
import { createServer } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") {
        srv.close();
        reject(new Error("no port"));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Fails loudly under CI=true when a binary a test needs is missing; otherwise lets the test skip. */
export function requireBinary(found: boolean, name: string): boolean {
  if (found) return true;
  if (process.env["CI"] === "true")
    throw new Error(`${name} is required under CI=true but was not found`);
  return false;
}
