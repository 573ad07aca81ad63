// A node's core without sockets, for the in-process measurements of
// bench/micro: the Router over the memory store (behind the store guard, as
// main.ts builds it) and the memory broker, with members on outlets that only
// count what they are sent. What it costs is the core's own share: no
// framing, no syscalls, so it does not depend on the CPU share a pinned
// server gets on a busy machine.
import { MemoryBroker } from "../../src/adapters/broker/memory-broker.js";
import { GuardedStore } from "../../src/adapters/store/guarded-store.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import type { Member } from "../../src/core/member.js";
import type { Outlet } from "../../src/core/outlet.js";
import { Router } from "../../src/core/router.js";
import { silentLogger } from "../../src/observability/logging.js";
import { Metrics } from "../../src/observability/metrics.js";
import { NodeTelemetry } from "../../src/observability/telemetry.js";
import { jsonCodec } from "../../src/protocol/codec.js";

export class CountingOutlet implements Outlet {
  static sent = 0;
  readonly codec = jsonCodec;
  readonly closed = false;
  readonly backlogged = false;
  send(): boolean {
    CountingOutlet.sent++;
    return true;
  }
  close(): void {}
  drained(): Promise<void> {
    return Promise.resolve();
  }
  pauseReading(): void {}
  resumeReading(): void {}
}

export async function coreNode(metrics: boolean): Promise<Router> {
  const log = silentLogger();
  const telemetry = new NodeTelemetry({
    metrics: metrics ? new Metrics() : undefined,
    tracing: undefined,
    metricsPath: "/metrics",
    metricsPort: undefined,
    host: "127.0.0.1",
    wsPath: "/ws",
    log,
  });
  const store = new GuardedStore(new MemoryStore({ dedupWindowMs: 60_000 }), {
    timeoutMs: 5000,
    ...telemetry.storeHooks(),
  });
  await store.open();
  const broker = telemetry.broker(new MemoryBroker());
  await broker.open();
  return new Router(
    store,
    broker,
    {
      gapWaitMs: 100,
      replayLimit: 100,
      maxRoomsPerMember: 128,
      sessionTtlMs: 60_000,
      ackFlushIntervalMs: 1000,
      badFrameLimit: 10,
      badFrameWindowMs: 60_000,
      telemetry,
    },
    log,
  );
}

/** A member joined to `room` on a counting outlet. */
export async function joinedMember(router: Router, room: string): Promise<Member> {
  const member = router.attach(await router.openSession(undefined), new CountingOutlet());
  await router.join(member, room);
  return member;
}
