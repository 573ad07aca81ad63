// Spawns store-append-worker.js (compiled beside this file) as a separate
// `node` process and returns the offsets it got.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const WORKER = fileURLToPath(new URL("./store-append-worker.js", import.meta.url));

export function appendInProcess(
  kind: "sqlite" | "postgres" | "redis" | "spanner",
  target: string,
  room: string,
  count: number,
  idPrefix: string,
): Promise<bigint[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, kind, target, room, String(count), idPrefix], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) {
        reject(new Error(`append worker exited with ${String(code)}: ${err}`));
        return;
      }
      try {
        resolve((JSON.parse(out) as string[]).map((o) => BigInt(o)));
      } catch (parseError) {
        reject(new Error(`append worker printed ${out}`, { cause: parseError }));
      }
    });
  });
}
