// The fixed JavaScript workload both machine-speed tools time (calibrate.ts
// and speed-trace.ts): strings, a Map, small objects, JSON and UTF-8, the
// mix a server's publish path is made of. Its cost per operation moves only
// with the machine.
export type WorkMap = Map<string, { n: number; text: string }>;

/** Runs `ops` operations on `map`; returns the bytes made (so none is optimised away). */
export function fixedWork(map: WorkMap, ops: number): number {
  let bytes = 0;
  for (let i = 0; i < ops; i++) {
    const key = `room-${i % 1000}`;
    const entry = map.get(key) ?? { n: 0, text: "" };
    entry.n += 1;
    entry.text = JSON.stringify({ room: key, n: entry.n, body: "hello world" });
    map.set(key, entry);
    bytes += Buffer.byteLength(entry.text);
  }
  return bytes;
}
