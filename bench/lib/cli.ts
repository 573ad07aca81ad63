// Command-line options of bench/run.ts. Short mode (the default, for `npm run bench`)
// fits in about three minutes; --full runs every scenario at its real size.
export const SCENARIOS = [
  "fanout",
  "many-rooms",
  "idle",
  "durable",
  "cluster",
  "handshake",
  "presence",
  "api-publish",
  "durable-rooms",
  "limits-fanout",
  "limits-durable",
  "scaling",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface Options {
  full: boolean;
  /** Runs per variant; unset means 3 in --full and a per-scenario default in short mode. */
  runs: number | undefined;
  scenarios: ScenarioName[];
  servers: string[];
  /** The stores the durable scenarios alternate over (all five by default). */
  stores: string[] | undefined;
  workers: number;
  contentBytes: number;
  cpuProf: boolean;
  /** Extra node flags for Roomcast's process only, e.g. V8 heap settings. */
  nodeArgs: string[];
  /** Node flags for the Node peers (raw ws, corked-ws, Socket.IO), e.g. Roomcast's own. */
  peerNodeArgs: string[];
  /** Sample Roomcast's promoted allocations (bench/lib/promoted-preload.ts) into OUT/profiles. */
  promotedProf: boolean;
  /**
   * Heap snapshots of every Node server in the idle scenario, before any
   * connection and at each level, into OUT/heap (bench/lib/heap-snapshot.ts).
   */
  heapSnapshots: boolean;
  /** Record a latency timeline per window (bench/lib/trace.ts) into OUT/trace. */
  trace: boolean;
  /** Keep a speed trace on the server's core and record it per run (bench/lib/machine-speed.ts). */
  machineSpeed: boolean;
  /** The runner stops starting runs after this, and kills everything at twice it. */
  budgetSeconds: number;
  outDir: string;
}

/** Short mode repeats the headline scenarios three times and the slow ones once. */
export function runsFor(opts: Options, scenario: ScenarioName): number {
  if (opts.runs !== undefined) return opts.runs;
  if (opts.full) return 3;
  return scenario === "fanout" || scenario === "idle" ? 3 : 1;
}

const USAGE = `usage: node dist/bench/run.js [--full] [--runs N] [--only fanout,many-rooms,idle,durable,cluster,handshake,presence,api-publish,
       durable-rooms,limits-fanout,limits-durable,scaling]
       [--servers roomcast,raw-ws,corked-ws,socketio,centrifugo] [--stores postgres,sqlite,redis,spanner,memory] [--workers N] [--content-bytes N] [--cpu-prof] [--promoted-prof] [--trace]
       [--heap-snapshots]
       [--node-args "--flag ..."] [--peer-node-args "--flag ..."]
       [--machine-speed] [--budget-seconds N] [--out DIR]`;

/** A flag list given as one argument, split on spaces. */
const flags = (list: string): string[] => list.split(" ").filter((a) => a !== "");

function isScenario(s: string): s is ScenarioName {
  return (SCENARIOS as readonly string[]).includes(s);
}

export function parseOptions(argv: string[]): Options {
  const full = argv.includes("--full");
  const opts: Options = {
    full,
    runs: undefined,
    scenarios: full ? [...SCENARIOS] : ["fanout", "durable", "many-rooms", "idle"],
    servers: ["roomcast", "raw-ws", "corked-ws", "socketio", "centrifugo"],
    stores: undefined,
    workers: 2,
    contentBytes: 64,
    cpuProf: false,
    promotedProf: false,
    heapSnapshots: false,
    nodeArgs: [],
    peerNodeArgs: [],
    trace: false,
    machineSpeed: false,
    budgetSeconds: full ? 40 * 60 : 150,
    outDir: "bench/results",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    const int = (): number => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`${arg} needs a positive integer\n${USAGE}`);
      return n;
    };
    switch (arg) {
      case "--full":
        break;
      case "--runs":
        opts.runs = int();
        break;
      case "--only": {
        const list = value().split(",");
        const bad = list.filter((s) => !isScenario(s));
        if (bad.length > 0) throw new Error(`unknown scenario ${bad.join(",")}\n${USAGE}`);
        opts.scenarios = list.filter(isScenario);
        break;
      }
      case "--servers":
        opts.servers = value().split(",");
        break;
      case "--stores":
        opts.stores = value().split(",");
        break;
      case "--workers":
        opts.workers = int();
        break;
      case "--content-bytes":
        opts.contentBytes = int();
        break;
      case "--cpu-prof":
        opts.cpuProf = true;
        break;
      case "--node-args":
        opts.nodeArgs = flags(value());
        break;
      case "--peer-node-args":
        opts.peerNodeArgs = flags(value());
        break;
      case "--promoted-prof":
        opts.promotedProf = true;
        break;
      case "--heap-snapshots":
        opts.heapSnapshots = true;
        break;
      case "--trace":
        opts.trace = true;
        break;
      case "--machine-speed":
        opts.machineSpeed = true;
        break;
      case "--budget-seconds":
        opts.budgetSeconds = int();
        break;
      case "--out":
        opts.outDir = value();
        break;
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return opts;
}
