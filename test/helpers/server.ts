// Starts a real Roomcast server process (dist/src/main.js) on a free port and
// stops or kills it. The port comes from the server's own "listening" log line.
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { spawnChild } from "../../tools/process-harness.js";
import { NODE_FLAGS } from "../../src/config/node-flags.js";

const MAIN = fileURLToPath(new URL("../../src/main.js", import.meta.url));

/**
 * Every rate limit off: for load tests of other features (backpressure,
 * pipelining) that publish or join far faster than any client the default
 * limits are sized for. test/e2e/rate-limit*.test.ts cover the limits.
 */
export const RATE_LIMITS_OFF: Readonly<Record<string, string>> = {
  RATE_LIMIT_MESSAGES: "off",
  RATE_LIMIT_ROOM_MESSAGES: "off",
  RATE_LIMIT_JOINS: "off",
  RATE_LIMIT_HANDSHAKES: "off",
};

export interface ServerProcess {
  readonly port: number;
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly child: ChildProcess;
  /** Parsed JSON log records seen so far. */
  readonly logs: Record<string, unknown>[];
  /** SIGTERM (drain) and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, no drain, and wait for exit. */
  kill9(): Promise<void>;
}

export async function startServer(
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<ServerProcess> {
  const server = spawnChild(process.execPath, [...NODE_FLAGS, MAIN], {
    env: {
      PATH: process.env["PATH"] ?? "",
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "info",
      STORE: "memory",
      BROKER: "memory",
      // stop() drains; tests that are not about the drain need not wait 20 s.
      DRAIN_PERIOD: "1s",
      ...env,
    },
  });
  const child = server.child;
  if (child.stdout === null) throw new Error("server stdout is not piped");
  const logs: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout });

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not listen within ${timeoutMs} ms\n${server.stderrTail}`)),
      timeoutMs,
    );
    lines.on("line", (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(rec);
      if (rec["msg"] === "listening" && typeof rec["port"] === "number") {
        clearTimeout(timer);
        resolve(rec["port"]);
      }
    });
    void server.exit.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening\n${server.stderrTail}`));
    });
  });

  return {
    port,
    httpUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    child,
    logs,
    stop: () => server.stop(),
    async kill9() {
      await server.stop({ signal: "SIGKILL" });
    },
  };
}
