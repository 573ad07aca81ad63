// A private nats-server for tests: free port chosen by the server itself
// (`-p -1`, read back from its ports file), monitoring on, data in a temp dir.
// stop() and start() keep the same ports (see tools/restartable-server.ts).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  freePort,
  hasBinary,
  makeTempDir,
  tcpOpen,
  waitFor,
  type Child,
} from "../../tools/process-harness.js";
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

export interface NatsCluster {
  readonly servers: readonly NatsServer[];
  /** Every server's client URL, comma-separated, as NATS_URL takes them. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * `size` nats-servers routed into one cluster (`--cluster` on a free port
 * each, `--routes` to all the others), ready once every server has a route
 * to every other. Client ports are picked by the servers (`-p -1`).
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const clusterPorts: number[] = [];
  for (let i = 0; i < size; i++) clusterPorts.push(await freePort());
  const routeUrl = (port: number) => `nats://127.0.0.1:${port}`;
  const servers: NatsServer[] = [];
  try {
    for (const port of clusterPorts) {
      servers.push(
        await startNatsServer({
          args: [
            "--cluster_name",
            "roomcast-test",
            "--cluster",
            routeUrl(port),
            "--routes",
            clusterPorts
              .filter((p) => p !== port)
              .map(routeUrl)
              .join(","),
          ],
        }),
      );
    }
    await waitFor(
      async () => {
        for (const server of servers) {
          const routez = (await (await fetch(`${server.monitorUrl}/routez`)).json()) as {
            num_routes?: number;
          };
          if ((routez.num_routes ?? 0) < size - 1) return false;
        }
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    );
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  return {
    servers,
    url: servers.map((s) => s.url).join(","),
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
    },
  };
}

/** Names of the clients connected to a server (from its /connz). */
export async function connectedClients(server: NatsServer): Promise<string[]> {
  const connz = (await (await fetch(`${server.monitorUrl}/connz`)).json()) as {
    connections?: { name?: string }[];
  };
  return (connz.connections ?? []).map((c) => c.name ?? "");
}
