// A private nats-server for tests: free port chosen by the server itself
// (`-p -1`, read back from its ports file), monitoring on, data in a temp dir.
// stop() and start() keep the same ports (see tools/restartable-server.ts).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { hasBinary, makeTempDir, tcpOpen, type Child } from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";
import {
  RestartableServerProcess,
  type RestartableServer,
} from "../../tools/restartable-server.js";

export interface NatsServer extends RestartableServer {
  /** http://127.0.0.1:<port> of the monitoring endpoint (/varz, /subsz, ...). */
  readonly monitorUrl: string;
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

class NatsServerProcess extends RestartableServerProcess implements NatsServer {
  readonly #args: readonly string[];
  #port = -1;
  #monitorPort = -1;

  constructor(dir: string, options: NatsServerOptions) {
    super("nats-server", dir);
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

  // -1 lets the server pick a free port the first time; later starts reuse it.
  protected args(): readonly string[] {
    return [
      "-a",
      "127.0.0.1",
      "-p",
      String(this.#port),
      "-m",
      String(this.#monitorPort),
      "--ports_file_dir",
      this.dir,
      ...this.#args,
    ];
  }

  protected async ready(child: Child): Promise<void> {
    const portsFile = join(this.dir, `nats-server_${String(child.pid)}.ports`);
    const ports = await child.waitReady(async () => {
      const parsed = JSON.parse(await readFile(portsFile, "utf8")) as PortsFile;
      const nats = parsed.nats?.[0];
      const monitoring = parsed.monitoring?.[0];
      if (nats === undefined || monitoring === undefined) return undefined;
      return { nats: new URL(nats), monitoring: new URL(monitoring) };
    });
    this.#port = Number(ports.nats.port);
    this.#monitorPort = Number(ports.monitoring.port);
    await child.waitReady(() => tcpOpen(this.#port));
  }
}
