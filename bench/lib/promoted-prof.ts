// `--promoted-prof`: where the runner asks Roomcast (through
// promoted-preload.ts, which it loads with --import) to write the profile of
// its promoted allocations, and how bench/promoted-top.ts sums that profile.
// Children inherit the variable.
export const PROMOTED_ENV = "ROOMCAST_BENCH_PROMOTED_DIR";

/** A node of V8's sampling heap profile (HeapProfiler.SamplingHeapProfileNode). */
export interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

export interface PromotedSites {
  /** Bytes sampled in all. */
  total: number;
  /** Bytes per allocating function (`name file:line`). */
  byFunction: Map<string, number>;
  /** Bytes per call path of `frames` frames, innermost first, joined with " < ". */
  byPath: Map<string, number>;
}

function nameOf({ functionName, url, lineNumber }: SamplingNode["callFrame"]): string {
  return `${functionName === "" ? "(anonymous)" : functionName} ${url.split("/").pop() ?? ""}:${lineNumber + 1}`;
}

function add(map: Map<string, number>, key: string, bytes: number): void {
  map.set(key, (map.get(key) ?? 0) + bytes);
}

/** Sums a profile's sampled bytes by the function, and the call path, that allocated them. */
export function promotedSites(root: SamplingNode, frames: number): PromotedSites {
  const sites: PromotedSites = { total: 0, byFunction: new Map(), byPath: new Map() };
  // Iterative: call trees of a server run are deep.
  const stack: { node: SamplingNode; path: string[] }[] = [{ node: root, path: [] }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const path = [...item.path, nameOf(item.node.callFrame)];
    const bytes = item.node.selfSize;
    if (bytes > 0) {
      sites.total += bytes;
      add(sites.byFunction, path[path.length - 1]!, bytes);
      add(sites.byPath, path.slice(-frames).reverse().join(" < "), bytes);
    }
    for (const child of item.node.children) stack.push({ node: child, path });
  }
  return sites;
}
