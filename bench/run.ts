// Entry of `npm run bench`: runs the scenarios against Roomcast and its peers in
// alternating order (roomcast, raw-ws, socketio, roomcast, ...) so drift on a
// noisy machine spreads over all of them, then writes one table as markdown and
// JSON under bench/results/.
import { mkdirSync, writeFileSync } from "node:fs";
import { writeFormatted } from "./lib/write-formatted.js";
import { join, resolve } from "node:path";
import { CENTRIFUGO_VERSION, centrifugoVersion, ensureCentrifugo } from "./lib/centrifugo.js";
import { loadAverage, machineInfo, type MachineInfo } from "./lib/machine.js";
import { parseOptions, runsFor, type Options, type ScenarioName } from "./lib/cli.js";
import { startNoiseMeter } from "./lib/noise.js";
import { TRACE_ENV } from "./lib/trace.js";
import { PROMOTED_ENV } from "./lib/promoted-prof.js";
import { startMachineSpeed, type MachineSpeed } from "./lib/machine-speed.js";
import { GENERATOR_CORE, pinSelf, SERVER_CORE } from "./lib/pin.js";
import { isBuilt, serverSpec, SERVER_NAMES, type ServerName } from "./lib/servers.js";
import { renderScenario } from "./report/markdown.js";
import { newScenario, type ScenarioResult } from "./report/model.js";
import {
  CLUSTER_METRICS,
  CLUSTER_RATIO_OF,
  clusterNotes,
  clusterTitle,
  clusterVariants,
  runCluster,
} from "./scenarios/cluster.js";
import { stopAllServers, type RunContext } from "./scenarios/context.js";
import {
  DURABLE_METRICS,
  durableErrorNotes,
  durableTitle,
  FIXED_RATE,
  FIXED_RATE_METRICS,
  MANY_ROOMS,
  ONE_ROOM,
  runDurable,
  STORES,
} from "./scenarios/durable.js";
import { AUTH_MODES, HANDSHAKE_METRICS, runHandshakes } from "./scenarios/handshake.js";
import { idleMetrics, runIdleMemory } from "./scenarios/idle-memory.js";
import { API_PUBLISH_METRICS, API_STORES, runApiPublish } from "./scenarios/api-publish.js";
import { PRESENCE_METRICS, PRESENCE_MODES, runPresence } from "./scenarios/presence.js";
import { scalingSvg } from "./report/scaling-plot.js";
import {
  runScaling,
  SCALING_METRICS,
  scalingPoints,
  scalingTitle,
  scalingVariant,
} from "./scenarios/scaling.js";
import {
  DURABLE_LIMIT_MODES,
  FANOUT_LIMIT_MODES,
  LIMITS_DURABLE_METRICS,
  LIMITS_FANOUT_METRICS,
  limitsNotes,
  limitsTitle,
  runLimitsDurable,
  runLimitsFanout,
  type LimitMode,
} from "./scenarios/rate-limits.js";
import {
  generatorBoundNotes,
  runThroughput,
  THROUGHPUT_METRICS,
  type ThroughputShape,
} from "./scenarios/throughput.js";
import { NODE_FLAGS } from "../src/config/node-flags.js";

type RunOne = (variant: string) => Promise<{ values: Record<string, number>; detail: unknown }>;

interface Plan {
  result: ScenarioResult;
  run: RunOne;
}

function isServerName(s: string): s is ServerName {
  return (SERVER_NAMES as readonly string[]).includes(s);
}

function plan(
  name: ScenarioName,
  opts: Options,
  ctx: RunContext,
  servers: ServerName[],
): Plan | string {
  const throughput =
    (shape: ThroughputShape): RunOne =>
    (v) =>
      runThroughput(ctx, serverSpec(v as ServerName), shape);
  const ratioOf = servers.includes("roomcast") ? "roomcast" : undefined;
  const fanoutShape: ThroughputShape = {
    rooms: 1,
    roomSize: 1000,
    publishersPerRoom: 10,
    startDelivered: opts.full ? 40_000 : 60_000,
  };
  switch (name) {
    case "fanout": {
      const title = "Fanout: one room of 1,000 members, 10 publishers";
      return {
        result: newScenario(name, title, THROUGHPUT_METRICS, servers, ratioOf),
        run: throughput(fanoutShape),
      };
    }
    case "many-rooms": {
      const rooms = opts.full ? 1000 : 200;
      const shape = {
        rooms,
        roomSize: 10,
        publishersPerRoom: 1,
        startDelivered: opts.full ? 20_000 : 40_000,
      };
      const title = `Many rooms: ${(rooms * 10).toLocaleString("en-US")} members in ${rooms.toLocaleString("en-US")} rooms of 10, one publisher per room`;
      return {
        result: newScenario(name, title, THROUGHPUT_METRICS, servers, ratioOf),
        run: throughput(shape),
      };
    }
    case "idle": {
      // 20,000 sockets do not fit: the hard open-files limit here is 20,000 per process.
      const levels = opts.full ? [10_000, 19_900] : [2_000];
      const title = "Idle memory: connections that joined one room (rooms of 100) and stay silent";
      return {
        result: newScenario(name, title, idleMetrics(levels), servers, ratioOf),
        run: (v) => runIdleMemory(ctx, serverSpec(v as ServerName), levels),
      };
    }
    case "durable":
    case "durable-rooms": {
      if (!servers.includes("roomcast")) return `${name}: needs roomcast`;
      const shape = name === "durable" ? ONE_ROOM : MANY_ROOMS;
      const stores = STORES.filter((s) => opts.stores === undefined || opts.stores.includes(s));
      if (stores.length === 0) return `${name}: --stores names none of ${STORES.join(",")}`;
      return {
        result: newScenario(
          name,
          durableTitle(shape),
          [...DURABLE_METRICS, ...FIXED_RATE_METRICS(FIXED_RATE)],
          stores.map((s) => `STORE=${s}`),
          undefined,
        ),
        run: (v) =>
          runDurable(ctx, v.replace("STORE=", "") as (typeof STORES)[number], {
            shape,
            fixedRate: FIXED_RATE,
          }),
      };
    }
    case "handshake": {
      if (!servers.includes("roomcast")) return "handshake: needs roomcast";
      const title = "Handshakes (Roomcast only): 32 clients connect, get `session`, close";
      return {
        result: newScenario(
          name,
          title,
          HANDSHAKE_METRICS,
          AUTH_MODES.map((m) => `auth=${m}`),
          "auth=off",
        ),
        run: (v) => runHandshakes(ctx, v.replace("auth=", "") as (typeof AUTH_MODES)[number]),
      };
    }
    case "presence": {
      if (!servers.includes("roomcast")) return "presence: needs roomcast";
      const title = "Presence (Roomcast only): 1,000 members join one room at once";
      return {
        result: newScenario(
          name,
          title,
          PRESENCE_METRICS,
          PRESENCE_MODES.map((m) => `presence=${m}`),
          "presence=off",
        ),
        run: (v) => runPresence(ctx, v.replace("presence=", "") as (typeof PRESENCE_MODES)[number]),
      };
    }
    case "api-publish": {
      if (!servers.includes("roomcast")) return "api-publish: needs roomcast";
      const title =
        "Server API publish into one room (Roomcast only): 32 clients, one request each in flight";
      return {
        result: newScenario(
          name,
          title,
          API_PUBLISH_METRICS,
          API_STORES.map((s) => `STORE=${s}`),
          undefined,
        ),
        run: (v) => runApiPublish(ctx, v.replace("STORE=", "") as (typeof API_STORES)[number]),
      };
    }
    case "scaling": {
      if (!servers.includes("roomcast")) return "scaling: needs roomcast";
      const variants = scalingPoints(opts.full).map(scalingVariant);
      return {
        result: newScenario(name, scalingTitle(), SCALING_METRICS, variants, undefined),
        run: (v) => runScaling(ctx, v),
      };
    }
    case "limits-fanout":
    case "limits-durable": {
      if (!servers.includes("roomcast")) return `${name}: needs roomcast`;
      const fanout = name === "limits-fanout";
      return {
        result: newScenario(
          name,
          limitsTitle(fanout ? "fanout" : "durable"),
          fanout ? LIMITS_FANOUT_METRICS : LIMITS_DURABLE_METRICS,
          [...(fanout ? FANOUT_LIMIT_MODES : DURABLE_LIMIT_MODES)],
          undefined,
        ),
        run: (v) =>
          fanout
            ? runLimitsFanout(ctx, v as LimitMode, fanoutShape)
            : runLimitsDurable(ctx, v as LimitMode),
      };
    }
    case "cluster": {
      const variants = clusterVariants(servers);
      if (variants.length === 0) return "cluster: needs roomcast or socketio";
      const ratio = variants.includes(CLUSTER_RATIO_OF) ? CLUSTER_RATIO_OF : undefined;
      return {
        result: newScenario(name, clusterTitle(), CLUSTER_METRICS, variants, ratio),
        run: (v) => runCluster(ctx, v),
      };
    }
  }
}

async function runPlan(
  p: Plan,
  runs: number,
  ctx: RunContext,
  speed: MachineSpeed | undefined,
): Promise<void> {
  const noise = startNoiseMeter();
  const load0 = loadAverage();
  const speeds = new Map<string, number[]>();
  for (let run = 1; run <= runs; run++) {
    for (const variant of p.result.variants) {
      if (!ctx.inBudget()) {
        p.result.notes.push(`Time budget spent: stopped before run ${run} of ${variant}.`);
        return;
      }
      ctx.log(`${p.result.name} run ${run}/${runs}: ${variant}`);
      try {
        const from = Date.now() / 1000;
        const { values, detail } = await p.run(variant);
        if (speed !== undefined) {
          values["machineNs"] = speed.median(from, Date.now() / 1000);
          speeds.set(variant, [...(speeds.get(variant) ?? []), values["machineNs"]]);
        }
        p.result.runs[variant]?.push(values);
        p.result.details[variant]?.push(detail);
        ctx.log(
          `  ${JSON.stringify(values, (_, v: unknown) => (typeof v === "number" ? Number(v.toPrecision(4)) : v))}`,
        );
      } catch (err) {
        const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
        p.result.notes.push(`${variant} run ${run} failed: ${message}`);
        p.result.details[variant]?.push({ error: message });
        ctx.log(`  FAILED: ${message}`);
      }
    }
  }
  p.result.notes.push(
    `Load average at start ${load0}; other processes used ${noise.otherCores().toFixed(2)} cores on average during this scenario.`,
  );
  if (speeds.size > 0) {
    const list = [...speeds].map(([v, ns]) => `${v} ${ns.map((n) => Math.round(n)).join(", ")}`);
    p.result.notes.push(
      `Machine speed per run (median ns per operation of the speed trace on the server's core; lower is faster): ${list.join("; ")}.`,
    );
  }
}

function header(
  machine: MachineInfo,
  opts: Options,
  startedAt: Date,
  seconds: number,
  otherCores: number,
  load: string,
): string {
  const pkgs = Object.entries(machine.packages)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return [
    `## Roomcast benchmark — ${opts.full ? "full" : "short"} run, ${startedAt.toISOString()}`,
    "",
    `- Machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}`,
    `- Software: Node ${machine.node}; ${pkgs}; Roomcast at git ${machine.gitCommit}`,
    `- Pinning: ${machine.pinned ? "server on core 0, generator (all threads) on core 1 (taskset)" : "none (taskset unavailable): server and generator share cores"}`,
    `- Load average before the run: ${load}; other processes used ${otherCores.toFixed(2)} cores on average during the run (${Math.round(seconds)} s)`,
    `- Generator: ${opts.workers} worker_threads, ws / socket.io-client, ${opts.contentBytes}-byte content; runs alternate between the variants`,
    ...(opts.heapSnapshots
      ? [
          "- Heap snapshots (--heap-snapshots) were taken in the idle scenario: each runs a full collection, so the RSS figures after the first are not for the record",
        ]
      : []),
    `- Roomcast ran as it ships: \`node ${[...NODE_FLAGS, ...opts.nodeArgs].join(" ")}\`${opts.nodeArgs.length > 0 ? ` (\`${opts.nodeArgs.join(" ")}\` added by --node-args)` : ""}; the Node peers with ${opts.peerNodeArgs.length > 0 ? `\`node ${opts.peerNodeArgs.join(" ")}\` (--peer-node-args)` : "no flags"}`,
  ].join("\n");
}

/**
 * --trace: the trace directory goes to every child through the environment;
 * Roomcast also loads the preload that records its lags and collections.
 */
function startTrace(outDir: string): string[] {
  const dir = resolve(outDir, "trace");
  mkdirSync(dir, { recursive: true });
  process.env[TRACE_ENV] = dir;
  return [`--import=${new URL("./lib/trace-preload.js", import.meta.url).href}`];
}

function startPromotedProf(outDir: string): string[] {
  const dir = resolve(outDir, "profiles");
  mkdirSync(dir, { recursive: true });
  process.env[PROMOTED_ENV] = dir;
  return [`--import=${new URL("./lib/promoted-preload.js", import.meta.url).href}`];
}

/** --heap-snapshots: the directory the Node servers write their snapshots to. */
function startHeapSnapshots(outDir: string): string {
  const dir = resolve(outDir, "heap");
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = performance.now();
  const loadBefore = loadAverage();
  const pinned = pinSelf(GENERATOR_CORE);
  const machine = machineInfo(pinned);
  const noise = startNoiseMeter();
  const log = (line: string): void => {
    process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0)}s] ${line}\n`);
  };
  const ctx: RunContext = {
    full: opts.full,
    workers: opts.workers,
    contentBytes: opts.contentBytes,
    roomcastNodeArgs: [
      ...opts.nodeArgs,
      ...(opts.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${join(opts.outDir, "profiles")}`] : []),
      ...(opts.promotedProf ? startPromotedProf(opts.outDir) : []),
      ...(opts.trace ? startTrace(opts.outDir) : []),
    ],
    peerNodeArgs: opts.peerNodeArgs,
    ...(opts.heapSnapshots ? { heapSnapshotDir: startHeapSnapshots(opts.outDir) } : {}),
    log,
    inBudget: () => performance.now() - t0 < opts.budgetSeconds * 1000,
  };
  // Everything stops by itself: past twice the budget the runner kills its servers and exits.
  const watchdog = setTimeout(() => {
    log("watchdog: over twice the time budget, stopping");
    void stopAllServers().finally(() => process.exit(2));
  }, opts.budgetSeconds * 2000);
  watchdog.unref();
  process.once("SIGINT", () => void stopAllServers().finally(() => process.exit(130)));

  const servers = opts.servers.filter(isServerName);
  const globalNotes: string[] = [];
  if (servers.includes("roomcast") && !isBuilt(serverSpec("roomcast"))) {
    globalNotes.push("Roomcast is not built (dist/src/main.js missing): only the peers ran.");
    servers.splice(servers.indexOf("roomcast"), 1);
  }
  if (servers.includes("centrifugo")) {
    // Built on first use into a cache outside the repository; skipped where Go is missing.
    const built = ensureCentrifugo(log);
    if (typeof built === "string") {
      log(built);
      globalNotes.push(built);
      servers.splice(servers.indexOf("centrifugo"), 1);
    } else {
      globalNotes.push(
        `Centrifugo ${CENTRIFUGO_VERSION} (go install; the binary says "${centrifugoVersion(built.binary).replace(/\s+/g, " ")}"), GOMAXPROCS=1, memory engine, history 1,000 per channel.`,
      );
    }
  }
  log(
    `${opts.full ? "full" : "short"} run; servers ${servers.join(", ")}; pinned=${pinned}; load ${loadBefore}`,
  );

  const speed = opts.machineSpeed ? startMachineSpeed(SERVER_CORE) : undefined;
  const results: ScenarioResult[] = [];
  for (const name of opts.scenarios) {
    const p = plan(name, opts, ctx, servers);
    if (typeof p === "string") {
      globalNotes.push(p);
      continue;
    }
    await runPlan(p, runsFor(opts, name), ctx, speed);
    if (name === "fanout" || name === "many-rooms")
      p.result.notes.push(...generatorBoundNotes(p.result));
    if (name === "cluster") p.result.notes.push(...clusterNotes(p.result));
    if (name === "durable" || name === "durable-rooms")
      p.result.notes.push(...durableErrorNotes(p.result.runs));
    if (name === "limits-fanout" || name === "limits-durable")
      p.result.notes.push(...limitsNotes(p.result));
    results.push(p.result);
  }

  speed?.stop();
  const seconds = (performance.now() - t0) / 1000;
  const markdown = [
    header(machine, opts, startedAt, seconds, noise.otherCores(), loadBefore),
    ...globalNotes.map((n) => `- ${n}`),
    "",
    ...results.map(renderScenario).flatMap((s) => [s, ""]),
  ].join("\n");
  const json = {
    startedAt: startedAt.toISOString(),
    seconds,
    options: opts,
    machine,
    loadBefore,
    notes: globalNotes,
    scenarios: results,
  };
  mkdirSync(opts.outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const kind = opts.full ? "full" : "short";
  for (const file of [`${kind}-${stamp}`, `latest-${kind}`]) {
    await writeFormatted(join(opts.outDir, `${file}.md`), markdown);
    await writeFormatted(join(opts.outDir, `${file}.json`), JSON.stringify(json));
    const scaling = results.find((r) => r.name === "scaling");
    if (scaling !== undefined) {
      const caption = `Roomcast at git ${machine.gitCommit}, ${kind} run of ${startedAt.toISOString().slice(0, 16)} UTC; dots: median, bars: min–max of the runs`;
      writeFileSync(join(opts.outDir, `${file}-scaling.svg`), scalingSvg(scaling, caption));
    }
  }
  process.stdout.write(`${markdown}\n`);
  log(`done in ${seconds.toFixed(0)} s; results in ${opts.outDir}/latest-${kind}.md`);
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    process.stderr.write(
      `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    await stopAllServers();
    process.exit(1);
  },
);
