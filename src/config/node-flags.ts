// The flags of the `node` that runs Roomcast, wherever it is launched:
// `npm start`, the image's CMD, the test harness and the benchmark use this
// list, and test/unit/node-flags.test.ts holds package.json and the
// Dockerfile to it.
//
// --single-threaded-gc: V8 collects on the main thread only, in small
// incremental steps, instead of handing marking and scavenging to helper
// threads. A node runs its JavaScript on one thread and is sized at one CPU
// (docs/operations.md). On one CPU the helpers do not run beside the main
// thread, they take turns with it: measured pinned to one core, they took
// half of the process's CPU time while a collection ran, and a major
// collection stopped deliveries for 40-60 ms instead of 20-35. In the
// many-rooms benchmark (docs/benchmarks.md, 8 runs each) the median p99 at
// 30,000 deliveries/s fell from 38 to 7.3 ms, with the same CPU per message.
// A node given several CPUs of its own can drop it (run
// `node dist/src/main.js`): V8 then marks on the other cores.
//
// V8 flags cannot be set from inside the process: v8.setFlagsFromString with
// this one aborts the process at the next collection (tried on Node 20).
export const NODE_FLAGS: readonly string[] = ["--single-threaded-gc"];
