// Starts one server under test as a child process pinned to the server core,
// waits until its ready path (GET /readyz unless the spec names another)
// answers 200, and stops it for sure.
import { freePort } from "../../tools/process-harness.js";
import { takeHeapSnapshot } from "./heap-snapshot.js";
import { PinnedServer } from "./pinned-server.js";
import type { ServerSpec } from "./servers.js";

const READY_TIMEOUT_MS = 20_000;

export class ServerProcess extends PinnedServer {
  /** A Node process, which takes node flags (Centrifugo has a command line of its own). */
  readonly node: boolean;
  readonly readyPath: string;

  private constructor(spec: ServerSpec, argv: string[], port: number, env: NodeJS.ProcessEnv) {
    super("server", argv, port, { env });
    this.node = spec.argv === undefined;
    this.readyPath = spec.readyPath ?? "/readyz";
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  static async start(
    spec: ServerSpec,
    extraEnv: Record<string, string> = {},
    nodeArgs: string[] = [],
  ): Promise<ServerProcess> {
    const port = await freePort();
    const argv = spec.argv?.(port) ?? [
      process.execPath,
      ...(spec.nodeArgs ?? []),
      ...nodeArgs,
      spec.script,
    ];
    const server = new ServerProcess(spec, argv, port, {
      ...process.env,
      ...spec.env,
      ...extraEnv,
      PORT: String(port),
      NODE_ENV: "production",
    });
    const readyPath = server.readyPath;
    await server.waitReady(
      `${spec.name} did not become ready (no 200 from ${readyPath})`,
      async () => (await fetch(`http://127.0.0.1:${port}${readyPath}`)).status === 200,
      { timeoutMs: READY_TIMEOUT_MS, intervalMs: 100 },
    );
    return server;
  }

  /** A heap snapshot named `name` in `dir`; the server was started with heapSnapshotFlags(dir). */
  heapSnapshot(dir: string, name: string): Promise<string> {
    return takeHeapSnapshot(
      this.pid,
      dir,
      name,
      async () => (await fetch(`http://127.0.0.1:${this.port}${this.readyPath}`)).ok,
    );
  }
}
