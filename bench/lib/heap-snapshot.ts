// Heap snapshots of a server under test (`--heap-snapshots`), and what a
// snapshot holds by kind, so two of them give the heap per connection.
//
// A Node server started with heapSnapshotFlags(dir) writes a snapshot when it
// gets SIGUSR2. The writing is synchronous on its main thread, so once the
// new file is there and the server answers HTTP again, the file is whole.
// Taking one runs a full collection and pauses the server for seconds: the
// RSS a scenario measures after it is not for the record.
import { readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const heapSnapshotFlags = (dir: string): string[] => [
  "--heapsnapshot-signal=SIGUSR2",
  `--diagnostic-dir=${dir}`,
];

const SNAPSHOT_TIMEOUT_MS = 180_000;

/**
 * Makes the server `pid` (started with heapSnapshotFlags(dir)) write a
 * snapshot, waits until it is whole (`answers` resolves true once the server
 * serves HTTP again), and names it `name`.heapsnapshot in `dir`.
 */
export async function takeHeapSnapshot(
  pid: number,
  dir: string,
  name: string,
  answers: () => Promise<boolean>,
): Promise<string> {
  const snapshots = (): string[] => readdirSync(dir).filter((f) => f.endsWith(".heapsnapshot"));
  const before = new Set(snapshots());
  process.kill(pid, "SIGUSR2");
  const deadline = performance.now() + SNAPSHOT_TIMEOUT_MS;
  let written: string | undefined;
  while (written === undefined) {
    if (performance.now() > deadline) throw new Error(`no heap snapshot from ${pid} in ${dir}`);
    await sleep(200);
    written = snapshots().find((f) => !before.has(f));
  }
  while (!(await answers().catch(() => false))) {
    if (performance.now() > deadline)
      throw new Error(`server ${pid} did not answer after its heap snapshot`);
    await sleep(200);
  }
  const target = join(dir, `${name}.heapsnapshot`);
  renameSync(join(dir, written), target);
  if (statSync(target).size === 0) throw new Error(`empty heap snapshot ${target}`);
  return target;
}

/** The parts of V8's .heapsnapshot format read here. */
interface RawSnapshot {
  snapshot: {
    meta: { node_fields: string[]; node_types: [string[], ...unknown[]] };
  };
  nodes: number[];
  strings: string[];
}

export interface HeapKind {
  /** Self size of all nodes of this kind. */
  bytes: number;
  count: number;
}

/**
 * Self sizes by kind, as DevTools' summary groups them: objects by their
 * constructor's name, closures as "(closure) name", everything else by V8's
 * node type in parentheses ("(array)", "(string)", "(code)", ...).
 */
export function heapKinds(file: string): { total: number; kinds: Map<string, HeapKind> } {
  const raw = JSON.parse(readFileSync(file, "utf8")) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types = raw.snapshot.meta.node_types[0];
  const kinds = new Map<string, HeapKind>();
  let total = 0;
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt]!]!;
    const name = raw.strings[raw.nodes[i + nameAt]!]!;
    const size = raw.nodes[i + sizeAt]!;
    const key =
      type === "object"
        ? name
        : type === "closure"
          ? `(closure) ${name || "anonymous"}`
          : `(${type})`;
    const kind = kinds.get(key);
    if (kind === undefined) kinds.set(key, { bytes: size, count: 1 });
    else {
      kind.bytes += size;
      kind.count++;
    }
    total += size;
  }
  return { total, kinds };
}

export interface KindGrowth {
  kind: string;
  /** Bytes and nodes of this kind added per unit (connection) from one snapshot to the other. */
  bytesPer: number;
  countPer: number;
}

/** What `after` holds over `before`, per each of `units` (connections), largest first. */
export function heapGrowth(
  before: { total: number; kinds: Map<string, HeapKind> },
  after: { total: number; kinds: Map<string, HeapKind> },
  units: number,
): { bytesPer: number; kinds: KindGrowth[] } {
  const kinds: KindGrowth[] = [];
  for (const key of new Set([...before.kinds.keys(), ...after.kinds.keys()])) {
    const a = before.kinds.get(key) ?? { bytes: 0, count: 0 };
    const b = after.kinds.get(key) ?? { bytes: 0, count: 0 };
    kinds.push({
      kind: key,
      bytesPer: (b.bytes - a.bytes) / units,
      countPer: (b.count - a.count) / units,
    });
  }
  kinds.sort((x, y) => y.bytesPer - x.bytesPer);
  return { bytesPer: (after.total - before.total) / units, kinds };
}
