// A private Cloud Spanner emulator for the tests and the benchmark: the Debian package's gateway_main
// (which starts emulator_main itself) on free ports, in a process group of its
// own so stopping it stops both, with an instance the harness creates over
// REST. The emulator keeps everything in memory: a stop loses all data, so it
// offers no restart; outage tests cut it off with the TCP proxy
// (test/helpers/tcp-proxy.ts) instead. Clients reach it through
// SPANNER_EMULATOR_HOST.
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { freePort, makeTempDir, removeTempDir, spawnChild, type Child } from "./process-harness.js";

export interface SpannerEmulator {
  /** 127.0.0.1:<grpc port>, for SPANNER_EMULATOR_HOST. */
  readonly host: string;
  readonly projectId: string;
  readonly instanceId: string;
  /** A database id no other caller got (the database itself is not created). */
  databaseId(hint?: string): string;
  /** The settings a Roomcast node needs to use `databaseId` on this emulator. */
  env(databaseId: string): Record<string, string>;
  close(): Promise<void>;
}

export const SPANNER_EMULATOR_PACKAGE = "google-cloud-cli-spanner-emulator";

/** gateway_main from the Debian package (or ROOMCAST_SPANNER_EMULATOR_DIR), or undefined. */
export function spannerGatewayPath(): string | undefined {
  const dirs = [process.env["ROOMCAST_SPANNER_EMULATOR_DIR"] ?? ""];
  const listed = spawnSync("dpkg", ["-L", SPANNER_EMULATOR_PACKAGE], { encoding: "utf8" });
  if (listed.status === 0)
    for (const line of listed.stdout.split("\n"))
      if (line.endsWith("/gateway_main")) dirs.push(line.slice(0, -"/gateway_main".length));
  dirs.push("/usr/lib/google-cloud-sdk/bin/cloud_spanner_emulator");
  for (const dir of dirs) {
    if (
      dir !== "" &&
      existsSync(join(dir, "gateway_main")) &&
      existsSync(join(dir, "emulator_main"))
    )
      return join(dir, "gateway_main");
  }
  return undefined;
}

let databases = 0;

export interface SpannerEmulatorOptions {
  /** The CPUs it runs on (see SpawnOptions.cpus). */
  readonly cpus?: string;
}

export async function startSpannerEmulator(
  options: SpannerEmulatorOptions = {},
): Promise<SpannerEmulator> {
  const gateway = spannerGatewayPath();
  if (gateway === undefined) throw new Error(`${SPANNER_EMULATOR_PACKAGE} is not installed`);
  const dir = await makeTempDir("spanner");
  let last: unknown;
  // Another process may take a free port between the probe and the bind.
  for (let attempt = 0; attempt < 3; attempt++) {
    const [grpc, http] = [await freePort(), await freePort()];
    const child = spawnChild(
      gateway,
      ["--hostname", "127.0.0.1", "--grpc_port", String(grpc), "--http_port", String(http)],
      {
        logFile: join(dir, "emulator.log"),
        killOnSignals: true,
        processGroup: true,
        ...(options.cpus === undefined ? {} : { cpus: options.cpus }),
      },
    );
    try {
      const base = `http://127.0.0.1:${http}/v1/projects/roomcast-test`;
      await child.waitReady(async () => (await fetch(`${base}/instances`)).ok);
      const created = await fetch(`${base}/instances`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          instanceId: "rc-test",
          instance: { config: "emulator-config", displayName: "rc-test", nodeCount: 1 },
        }),
      });
      if (!created.ok) throw new Error(`instance create: HTTP ${created.status}`);
      return new Emulator(child, dir, `127.0.0.1:${grpc}`);
    } catch (err) {
      last = err;
      await child.stop({ signal: "SIGKILL" });
    }
  }
  await removeTempDir(dir);
  throw new Error("the Spanner emulator did not start", { cause: last });
}

class Emulator implements SpannerEmulator {
  readonly projectId = "roomcast-test";
  readonly instanceId = "rc-test";
  readonly host: string;
  readonly #child: Child;
  readonly #dir: string;

  constructor(child: Child, dir: string, host: string) {
    this.#child = child;
    this.#dir = dir;
    this.host = host;
  }

  databaseId(hint = "db"): string {
    databases += 1;
    // Database ids: 2-30 characters, [a-z][a-z0-9_-]*.
    return `${hint
      .toLowerCase()
      .replace(/[^a-z0-9_-]/g, "-")
      .slice(0, 18)}-${process.pid % 10000}-${databases}`;
  }

  env(databaseId: string): Record<string, string> {
    return {
      STORE: "spanner",
      SPANNER_PROJECT: this.projectId,
      SPANNER_INSTANCE: this.instanceId,
      SPANNER_DATABASE: databaseId,
      SPANNER_EMULATOR_HOST: this.host,
      METADATA_SERVER_DETECTION: "none",
    };
  }

  async close(): Promise<void> {
    await this.#child.stop({ signal: "SIGKILL" });
    await removeTempDir(this.#dir);
  }
}
