// What every scenario gets from the runner, and the start/stop discipline: each
// server and generator is stopped on every path, and the runner can kill what is
// still alive when its own deadline passes.
import { LoadGenerator, type GeneratorOptions } from "../load/generator.js";
import { heapSnapshotFlags } from "../lib/heap-snapshot.js";
import { ServerProcess } from "../lib/server-process.js";
import type { ServerSpec } from "../lib/servers.js";

export interface RunContext {
  full: boolean;
  workers: number;
  contentBytes: number;
  /** Extra node flags for Roomcast only (e.g. --cpu-prof). */
  roomcastNodeArgs: string[];
  /** Node flags for the peers that are Node scripts (--peer-node-args). */
  peerNodeArgs: string[];
  /** Where the idle scenario puts heap snapshots of the Node servers (--heap-snapshots). */
  heapSnapshotDir?: string;
  log(line: string): void;
  /** False once the runner's time budget is spent: scenarios stop starting runs. */
  inBudget(): boolean;
}

const live = new Set<ServerProcess>();

export async function withServer<T>(
  ctx: RunContext,
  spec: ServerSpec,
  env: Record<string, string>,
  body: (server: ServerProcess) => Promise<T>,
): Promise<T> {
  // A server with a command line of its own (Centrifugo) takes no node flags.
  const nodeArgs = [
    ...(spec.name === "roomcast" ? ctx.roomcastNodeArgs : ctx.peerNodeArgs),
    ...(ctx.heapSnapshotDir === undefined ? [] : heapSnapshotFlags(ctx.heapSnapshotDir)),
  ];
  const server = await ServerProcess.start(spec, env, nodeArgs);
  live.add(server);
  try {
    return await body(server);
  } finally {
    await server.stop(nodeArgs.length > 0 ? 20_000 : undefined);
    live.delete(server);
  }
}

export async function withGenerator<T>(
  opts: GeneratorOptions,
  body: (gen: LoadGenerator) => Promise<T>,
): Promise<T> {
  const gen = new LoadGenerator(opts);
  try {
    return await body(gen);
  } finally {
    await gen.stop();
  }
}

/** Last resort for the runner's watchdog. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}
