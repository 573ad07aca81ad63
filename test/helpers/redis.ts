// A private redis-server for tests, in the foreground as a child process, on a
// free port picked beforehand (Redis has no "any free port" option), with no
// persistence and its files in a temp dir. stop() and start() keep the port
// (see restartable-server.ts).
import { connect } from "node:net";
import {
  freePort,
  hasBinary,
  makeTempDir,
  removeTempDir,
  type Child,
} from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";
import { RestartableServerProcess, type RestartableServer } from "./restartable-server.js";

export type RedisServer = RestartableServer;

/** Whether tests needing redis-server can run; throws under CI=true when it is missing. */
export function redisServerAvailable(): boolean {
  return requireBinary(hasBinary("redis-server"), "redis-server");
}

export interface RedisServerOptions {
  /** Extra redis-server arguments, e.g. ["--maxmemory", "64mb"]. */
  readonly args?: readonly string[];
}

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
    super("redis-server", dir);
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
