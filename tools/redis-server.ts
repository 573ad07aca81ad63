// A private redis-server for the tests and the benchmark, in the foreground as
// a child process, on a free port picked beforehand (Redis has no "any free
// port" option), with no persistence unless asked (`args`) and its files in a
// temp dir. stop() and start() keep the port (see restartable-server.ts).
import { connect } from "node:net";
import { freePort, makeTempDir, removeTempDir, type Child } from "./process-harness.js";
import { RestartableServerProcess, type RestartableServer } from "./restartable-server.js";

export type RedisServer = RestartableServer;

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ["--maxmemory", "64mb"]. */
  readonly args?: readonly string[];
  /** The CPUs it runs on (see SpawnOptions.cpus). */
  readonly cpus?: string;
}

/** AOF on, fsync once a second: the persistence the docs ask of `STORE=redis`. */
export const REDIS_AOF_EVERYSEC = ["--appendonly", "yes", "--appendfsync", "everysec"] as const;

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir("redis");
  // Another process may take the free port between the probe and the bind; try a few.
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = new RedisServerProcess(dir, await freePort(), options);
    try {
      await server.start();
      return server;
    } catch (err) {
      last = err;
      await server.stop("SIGKILL");
    }
  }
  await removeTempDir(dir);
  throw new Error("redis-server did not start", { cause: last });
}

class RedisServerProcess extends RestartableServerProcess {
  readonly #args: readonly string[];
  readonly port: number;

  constructor(dir: string, port: number, options: RedisServerOptions) {
    super("redis-server", dir, options.cpus);
    this.port = port;
    this.#args = options.args ?? [];
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  protected args(): readonly string[] {
    return [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      this.dir,
      ...this.#args,
    ];
  }

  protected async ready(child: Child): Promise<void> {
    await child.waitReady(() => ping(this.port));
  }
}

/** True once the server answers PING (it refuses commands while loading). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let reply = "";
    socket.setEncoding("utf8");
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: string) => {
      reply += chunk;
      if (reply.includes("\r\n")) {
        socket.destroy();
        resolve(reply.startsWith("+PONG"));
      }
    });
    socket.once("error", () => resolve(false));
  });
}
