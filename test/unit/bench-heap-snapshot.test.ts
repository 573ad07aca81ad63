// The benchmark's heap snapshots (--heap-snapshots): a real server writes
// them on a signal, and the growth between two is counted per unit.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { writeHeapSnapshot } from "node:v8";
import { parseOptions } from "../../bench/lib/cli.js";
import { heapGrowth, heapKinds, heapSnapshotFlags } from "../../bench/lib/heap-snapshot.js";
import { ServerProcess } from "../../bench/lib/server-process.js";
import { serverSpec } from "../../bench/lib/servers.js";

class HeapProbe {
  readonly id: number;
  readonly inner = { n: 0 };
  constructor(id: number) {
    this.id = id;
  }
}

test("bench heap snapshot - growth between two snapshots is counted per unit", () => {
  const dir = mkdtempSync(join(tmpdir(), "roomcast-heap-"));
  try {
    const before = heapKinds(writeHeapSnapshot(join(dir, "before.heapsnapshot")));
    const probes = Array.from({ length: 2000 }, (_, i) => new HeapProbe(i));
    const after = heapKinds(writeHeapSnapshot(join(dir, "after.heapsnapshot")));
    assert.equal(probes.length, 2000); // held until here
    const growth = heapGrowth(before, after, probes.length);
    const probe = growth.kinds.find((k) => k.kind === "HeapProbe");
    assert.ok(probe !== undefined, "HeapProbe is a kind of its own");
    assert.equal(probe.countPer, 1);
    // A map word, properties, elements and two fields, at least.
    assert.ok(probe.bytesPer >= 20, `${probe.bytesPer} bytes per probe`);
    const plain = growth.kinds.find((k) => k.kind === "Object");
    assert.ok(plain !== undefined && plain.countPer >= 1, "each probe's inner object is counted");
    assert.ok(growth.bytesPer >= probe.bytesPer + plain.bytesPer / plain.countPer);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bench heap snapshot - a Roomcast server writes one on the signal and keeps serving", async () => {
  const dir = mkdtempSync(join(tmpdir(), "roomcast-heap-"));
  const server = await ServerProcess.start(serverSpec("roomcast"), {}, heapSnapshotFlags(dir));
  try {
    assert.equal(server.node, true);
    const file = await server.heapSnapshot(dir, "roomcast-0");
    assert.equal(file, join(dir, "roomcast-0.heapsnapshot"));
    assert.deepEqual(readdirSync(dir), ["roomcast-0.heapsnapshot"]);
    const { kinds } = heapKinds(file);
    assert.equal(kinds.get("Gateway")?.count, 1, "one gateway in the server's heap");
    assert.equal(kinds.get("HeapProbe"), undefined, "not this process's heap");
    const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    assert.equal(health.status, 200);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bench heap snapshot - --heap-snapshots is off unless asked for", () => {
  assert.equal(parseOptions(["--full"]).heapSnapshots, false);
  assert.equal(parseOptions(["--full", "--only", "idle", "--heap-snapshots"]).heapSnapshots, true);
});
