// The faults a chaos run injects, each a loop that runs until its signal
// aborts and always leaves the cluster whole when it returns (every node up,
// the broker and PostgreSQL running), so the run can settle and be checked.
// Pauses are random within bounds, from the run's seeded generator, so a
// failing run's schedule can be repeated (the timing of the cluster cannot).
import { setTimeout as delay } from "node:timers/promises";
import type { ChaosPeer } from "./chaos-peer.js";
import type { ChaosCluster, Dependency } from "./cluster.js";
import type { TcpProxy } from "../helpers/tcp-proxy.js";

export interface NemesisContext {
  readonly cluster: ChaosCluster;
  /** The publishing peers (a kill lands while the victim's have a burst in flight). */
  readonly publishers: readonly ChaosPeer[];
  /** Uniform in [0, 1), seeded. */
  readonly random: () => number;
}

export interface Nemesis {
  readonly name: string;
  /** What it does, for the docs. */
  readonly description: string;
  /** It acts on the TCP proxies in front of the nodes' dependencies. */
  readonly needsProxies?: boolean;
  /** Injects faults until `signal` aborts, then heals; resolves with what it did ("6 kills"). */
  run(ctx: NemesisContext, signal: AbortSignal): Promise<string>;
}

/** Waits `ms`, or less when `signal` aborts meanwhile. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch(() => undefined);
}

const between = (ctx: NemesisContext, min: number, max: number): number =>
  Math.round(min + ctx.random() * (max - min));

export const killNodes: Nemesis = {
  name: "kill-nodes",
  description:
    "SIGKILL a random node every 1–2 s, while the publishers on it have a burst of 10 " +
    "messages in flight, and start it again after 0–1 s (in the background, so a second " +
    "node may die while the first restarts; one always stays up)",
  async run(ctx, signal) {
    const { cluster } = ctx;
    let kills = 0;
    const restarts = new Map<string, Promise<void>>();
    try {
      for (;;) {
        await pause(between(ctx, 1000, 2000), signal);
        if (signal.aborted) break;
        const up = cluster.slots.filter((s) => s.server !== undefined && !restarts.has(s.label));
        if (up.length < 2) continue;
        const victim = up[Math.floor(ctx.random() * up.length)]!;
        for (const p of ctx.publishers) if (p.node === victim.label) p.burst(10);
        await delay(between(ctx, 0, 30));
        await cluster.kill(victim);
        kills++;
        const wait = between(ctx, 0, 1000);
        restarts.set(
          victim.label,
          delay(wait)
            .then(() => cluster.restart(victim))
            .finally(() => restarts.delete(victim.label)),
        );
      }
    } finally {
      await Promise.allSettled(restarts.values());
      for (const slot of cluster.slots) await cluster.restart(slot);
    }
    return `${kills} kills`;
  },
};

export const restartBroker: Nemesis = {
  name: "restart-broker",
  description:
    "every 2–4 s, stop the broker (SIGKILL or SIGTERM, at random) and start it again " +
    "after 0.5–2 s on the same port",
  async run(ctx, signal) {
    const { broker } = ctx.cluster;
    let restarts = 0;
    try {
      for (;;) {
        await pause(between(ctx, 2000, 4000), signal);
        if (signal.aborted) break;
        await broker.stop(ctx.random() < 0.5 ? "SIGKILL" : "SIGTERM");
        restarts++;
        await delay(between(ctx, 500, 2000));
        await broker.start();
      }
    } finally {
      await broker.start();
    }
    return `${restarts} restarts`;
  },
};

export const crashStore: Nemesis = {
  name: "crash-store",
  description:
    "every 2–4 s, stop PostgreSQL in immediate mode (a crash: connections cut, no " +
    "checkpoint) and start it again after 1–2.5 s",
  async run(ctx, signal) {
    const pg = ctx.cluster.postgres;
    let crashes = 0;
    try {
      for (;;) {
        await pause(between(ctx, 2000, 4000), signal);
        if (signal.aborted) break;
        await pg.stop("immediate");
        crashes++;
        await delay(between(ctx, 1000, 2500));
        await pg.start();
      }
    } finally {
      await pg.start();
    }
    return `${crashes} crashes`;
  },
};

export const hangStore: Nemesis = {
  name: "hang-store",
  description:
    "every 2–4 s, SIGSTOP PostgreSQL and all its backends (a hang: connections stay " +
    "open, nothing answers) and SIGCONT them after 2.5–4 s, longer than STORE_TIMEOUT",
  async run(ctx, signal) {
    const pg = ctx.cluster.postgres;
    let hangs = 0;
    try {
      for (;;) {
        await pause(between(ctx, 2000, 4000), signal);
        if (signal.aborted) break;
        await pg.pause();
        hangs++;
        await delay(between(ctx, 2500, 4000));
        await pg.resume();
      }
    } finally {
      await pg.resume();
    }
    return `${hangs} hangs`;
  },
};

/** Every slot's proxy in front of `dependency`. */
function proxiesOf(ctx: NemesisContext, dependency?: Dependency): TcpProxy[] {
  const all = ctx.cluster.slots.flatMap((s) =>
    [...s.proxies].filter(([dep]) => dependency === undefined || dep === dependency),
  );
  if (all.length === 0) throw new Error("this nemesis needs a proxied cluster");
  return all.map(([, proxy]) => proxy);
}

export const slowLinks: Nemesis = {
  name: "slow-links",
  needsProxies: true,
  description:
    "every 1–2 s, give one random node's link to the broker or to PostgreSQL 20–300 ms of " +
    "latency (plus up to 100 ms of jitter), and bring another back to none",
  async run(ctx, signal) {
    const proxies = proxiesOf(ctx);
    let changes = 0;
    try {
      for (;;) {
        await pause(between(ctx, 1000, 2000), signal);
        if (signal.aborted) break;
        const slow = proxies[Math.floor(ctx.random() * proxies.length)]!;
        slow.setLatency(between(ctx, 20, 300), between(ctx, 0, 100));
        proxies[Math.floor(ctx.random() * proxies.length)]?.setLatency(0);
        changes++;
      }
    } finally {
      for (const proxy of proxies) proxy.setLatency(0);
    }
    return `${changes} latency changes`;
  },
};

export const cutLinks: Nemesis = {
  name: "cut-links",
  needsProxies: true,
  description:
    "every 1.5–3 s, cut one random node's link to the broker or to PostgreSQL: either drop " +
    "its connections and refuse new ones for 0.5–2 s, or hang it (connections stay open, " +
    "no byte passes) for 1–3 s; then restore it",
  async run(ctx, signal) {
    const proxies = proxiesOf(ctx);
    let cuts = 0;
    try {
      for (;;) {
        await pause(between(ctx, 1500, 3000), signal);
        if (signal.aborted) break;
        const link = proxies[Math.floor(ctx.random() * proxies.length)]!;
        if (ctx.random() < 0.5) {
          link.setMode("down");
          link.resetAll();
          await delay(between(ctx, 500, 2000));
        } else {
          link.setMode("hang");
          await delay(between(ctx, 1000, 3000));
        }
        link.setMode("up");
        cuts++;
      }
    } finally {
      for (const proxy of proxies) proxy.setMode("up");
    }
    return `${cuts} cuts`;
  },
};

export const nemeses: readonly Nemesis[] = [
  killNodes,
  restartBroker,
  crashStore,
  hangStore,
  slowLinks,
  cutLinks,
];

export { seededRandom } from "../helpers/seeded-random.js";
