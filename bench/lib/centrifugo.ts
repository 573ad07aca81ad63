// Centrifugo v6 as a peer: built once with `go install` into a cache directory
// outside the repository (never committed), run with one Go thread
// (GOMAXPROCS=1) on the server core, anonymous clients allowed to subscribe and
// publish, the memory engine with history on so it keeps offsets and a
// window of messages per channel as Roomcast's memory store does.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { hasBinary } from "../../tools/process-harness.js";

export const CENTRIFUGO_MODULE = "github.com/centrifugal/centrifugo/v6";
export const CENTRIFUGO_VERSION = "v6.9.1";
/** Minutes a cold `go install` may take on this 2-core machine. */
const BUILD_TIMEOUT_MS = 20 * 60_000;

/** ROOMCAST_BENCH_CACHE, or ~/.cache/roomcast-bench: where the binary is built. */
export function benchCacheDir(): string {
  return process.env["ROOMCAST_BENCH_CACHE"] ?? join(homedir(), ".cache", "roomcast-bench");
}

export function centrifugoBinary(): string {
  return join(benchCacheDir(), `centrifugo-${CENTRIFUGO_VERSION}`, "centrifugo");
}

/**
 * The binary, built first when missing; a sentence saying why not when it
 * cannot be had (no Go toolchain, or the build failed), so the runner skips
 * the peer and says so in the report.
 */
export function ensureCentrifugo(log: (line: string) => void): { binary: string } | string {
  const binary = centrifugoBinary();
  if (existsSync(binary)) return { binary };
  if (!hasBinary("go")) {
    return `centrifugo skipped: Go is not installed, so \`go install ${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}\` cannot build it`;
  }
  const gobin = join(benchCacheDir(), `centrifugo-${CENTRIFUGO_VERSION}`);
  mkdirSync(gobin, { recursive: true });
  log(`building centrifugo ${CENTRIFUGO_VERSION} into ${gobin} (go install, a few minutes)`);
  try {
    execFileSync("go", ["install", `${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION}`], {
      env: { ...process.env, GOBIN: gobin },
      stdio: ["ignore", "ignore", "pipe"],
      timeout: BUILD_TIMEOUT_MS,
    });
  } catch (err) {
    const why = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return `centrifugo skipped: go install ${CENTRIFUGO_MODULE}@${CENTRIFUGO_VERSION} failed (${why})`;
  }
  return existsSync(binary) ? { binary } : `centrifugo skipped: go install left no ${binary}`;
}

/**
 * Its configuration (v6 keys are nested). The outbound queue is 16 MiB, the
 * limit Roomcast runs with in the benchmark, instead of the default 1 MiB.
 */
export function centrifugoConfig(port: number): Record<string, unknown> {
  return {
    http_server: { address: "127.0.0.1", port },
    log: { level: "error" },
    health: { enabled: true },
    usage_stats: { disabled: true },
    engine: { type: "memory" },
    client: {
      allow_anonymous_connect_without_token: true,
      queue_max_size: 16 * 1024 * 1024,
      channel_limit: 128,
    },
    channel: {
      without_namespace: {
        allow_subscribe_for_anonymous: true,
        allow_subscribe_for_client: true,
        allow_publish_for_anonymous: true,
        allow_publish_for_client: true,
        history_size: 1000,
        history_ttl: "300s",
      },
    },
  };
}

/** The command line that starts it on `port`, its config written to a temp file. */
export function centrifugoArgv(binary: string, port: number): string[] {
  const dir = join(tmpdir(), "roomcast-bench-centrifugo");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `config-${port}.json`);
  writeFileSync(file, JSON.stringify(centrifugoConfig(port), null, 2));
  return [binary, "--config", file];
}

/** `centrifugo version`, for the report header; empty when it cannot be run. */
export function centrifugoVersion(binary: string): string {
  try {
    return execFileSync(binary, ["version"], { encoding: "utf8", timeout: 10_000 }).trim();
  } catch {
    return "";
  }
}
