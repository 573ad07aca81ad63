// Loaded into Roomcast with `node --import` under `--promoted-prof`: samples
// the allocations that outlive the young generation (promoted to the old
// one), whether a major collection later frees them or they live to the end.
// Those are what the major collections mark and sweep, and a major
// collection finishing on the server's one core is what set the many-rooms
// tails (docs/benchmarks.md). Written at exit as promoted-<pid>.heapprofile
// (Chrome DevTools opens it; bench/promoted-top.ts prints the top sites).
// Uses V8's sampling heap profiler with includeObjectsCollectedByMajorGC;
// it is off unless the runner asked for it.
import { Session } from "node:inspector";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PROMOTED_ENV } from "./promoted-prof.js";

/** Bytes between samples: V8's default is 32 KiB; finer costs more in the server. */
const SAMPLING_INTERVAL = 16 * 1024;

const dir = process.env[PROMOTED_ENV];
if (dir !== undefined && dir !== "") {
  const session = new Session();
  session.connect();
  session.post("HeapProfiler.enable");
  session.post("HeapProfiler.startSampling", {
    samplingInterval: SAMPLING_INTERVAL,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: false,
  });
  // The in-process session answers synchronously, so this works in 'exit'.
  process.on("exit", () => {
    session.post("HeapProfiler.stopSampling", (err, result) => {
      if (err !== null) {
        process.stderr.write(`promoted-prof: ${err.message}\n`);
        return;
      }
      writeFileSync(
        join(dir, `promoted-${process.pid}.heapprofile`),
        JSON.stringify(result.profile),
      );
    });
  });
}
