// A private nats-server for tests: free port chosen by the server itself
// (`-p -1`, read back from its ports file), monitoring on, data in a temp dir.
// stop() and start() keep the same ports, for reconnect and chaos tests.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  hasBinary,
  makeTempDir,
  removeTempDir,
  spawnChild,
  tcpOpen,
  type Child,
} from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";

export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** http://127.0.0.1:<port> of the monitoring endpoint (/varz, /subsz, ...). */
  readonly monitorUrl: string;
  /** Starts the server again on the same ports after stop(). */
  start(): Promise<void>;
  /** Stops the server (SIGTERM by default; SIGKILL for a crash). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server and removes its temp dir. */
  close(): Promise<void>;
}

/** Whether tests needing nats-server can run; throws under CI=true when it is missing. */
export function natsServerAvailable(): boolean {
  return requireBinary(hasBinary("nats-server"), "nats-server");
}

export interface NatsServerOptions {
  /** Extra nats-server arguments, e.g. ["-js", "-sd", dir]. */
  readonly args?: readonly string[];
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServer> {
  const server = new NatsServerProcess(await makeTempDir("nats"), options);
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

interface PortsFile {
  nats?: string[];
  monitoring?: string[];
}

class NatsServerProcess implements NatsServer {
  readonly #dir: string;
  readonly #args: readonly string[];
  #server: Child | undefined;
  #port = -1;
  #monitorPort = -1;

  constructor(dir: string, options: NatsServerOptions) {
    this.#dir = dir;
    this.#args = options.args ?? [];
  }

  get url(): string {
    return `nats://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.#monitorPort}`;
  }

  async start(): Promise<void> {
    if (this.#server !== undefined) return;
    // -1 lets the server pick a free port the first time; later starts reuse it.
    const args = [
      "-a",
      "127.0.0.1",
      "-p",
      String(this.#port),
      "-m",
      String(this.#monitorPort),
      "--ports_file_dir",
      this.#dir,
      ...this.#args,
    ];
    const server = spawnChild("nats-server", args, {
      logFile: join(this.#dir, "nats-server.log"),
      killOnSignals: true,
    });
    this.#server = server;
    try {
      const portsFile = join(this.#dir, `nats-server_${String(server.pid)}.ports`);
      const ports = await server.waitReady(async () => {
        const parsed = JSON.parse(await readFile(portsFile, "utf8")) as PortsFile;
        const nats = parsed.nats?.[0];
        const monitoring = parsed.monitoring?.[0];
        if (nats === undefined || monitoring === undefined) return undefined;
        return { nats: new URL(nats), monitoring: new URL(monitoring) };
      });
      this.#port = Number(ports.nats.port);
      this.#monitorPort = Number(ports.monitoring.port);
      await server.waitReady(() => tcpOpen(this.#port));
    } catch (err) {
      await this.stop("SIGKILL");
      throw err;
    }
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    await server?.stop({ signal });
  }

  async close(): Promise<void> {
    await this.stop("SIGKILL");
    await removeTempDir(this.#dir);
  }
}
