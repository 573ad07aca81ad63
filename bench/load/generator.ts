// The load generator's coordinator: spreads connections over worker threads,
// sends them commands and adds up their counters and latency histograms.
import { Worker } from "node:worker_threads";
import { Histogram } from "../lib/histogram.js";
import type { ClientKind, Command, Counters, MemberSpec, Reply, WorkerSetup } from "./messages.js";

export interface GeneratorOptions {
  url: string;
  kind: ClientKind;
  members: MemberSpec[];
  workers: number;
  sourceAddresses: string[];
  contentBytes: number;
}

export interface Snapshot {
  counters: Counters;
  latency: Histogram;
  /** Publish→ack latency (µs), refusals included. */
  ackLatency: Histogram;
  /** CPU seconds used by the whole generator process (all threads) so far. */
  cpuSeconds: number;
}

type Pending = (reply: Reply) => void;

const COMMAND_TIMEOUT_MS = 120_000;

export class LoadGenerator {
  readonly #workers: Worker[] = [];
  readonly #publishersPerWorker: number[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(opts: GeneratorOptions) {
    const count = Math.max(1, Math.min(opts.workers, opts.members.length));
    for (let w = 0; w < count; w++) {
      const members = opts.members.filter((_, i) => i % count === w);
      const sourceAddresses = opts.sourceAddresses.filter((_, i) => i % count === w);
      const setup: WorkerSetup = {
        index: w,
        url: opts.url,
        kind: opts.kind,
        members,
        sourceAddresses: sourceAddresses.length > 0 ? sourceAddresses : opts.sourceAddresses,
        contentBytes: opts.contentBytes,
        connectConcurrency: 64,
        maxPublisherBuffer: 1 << 20,
      };
      const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: setup });
      worker.on("message", (reply: Reply) => {
        const resolve = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        resolve?.(reply);
      });
      worker.on("error", (err) => process.stderr.write(`bench worker ${w}: ${err.message}\n`));
      this.#workers.push(worker);
      this.#publishersPerWorker.push(members.filter((m) => m.publisher).length);
    }
  }

  #ask(worker: Worker, cmd: Omit<Command, "id">): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`bench worker did not answer "${cmd.type}" in time`));
      }, COMMAND_TIMEOUT_MS);
      this.#pending.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      worker.postMessage({ ...cmd, id });
    });
  }

  #all(cmd: (w: number) => Omit<Command, "id">): Promise<Reply[]> {
    return Promise.all(this.#workers.map((worker, w) => this.#ask(worker, cmd(w))));
  }

  async connect(): Promise<{ ok: number; failed: number; firstError: string }> {
    const replies = await this.#all(() => ({ type: "connect" }));
    let ok = 0;
    let failed = 0;
    let firstError = "";
    for (const r of replies) {
      if (r.type !== "connected") continue;
      ok += r.ok;
      failed += r.failed;
      if (firstError === "") firstError = r.firstError;
    }
    return { ok, failed, firstError };
  }

  /** Total publishes per second over all publishers, split by each worker's share. */
  async setRate(perSecond: number): Promise<void> {
    const total = this.#publishersPerWorker.reduce((a, b) => a + b, 0);
    await this.#all((w) => ({
      type: "rate",
      perSecond: total === 0 ? 0 : (perSecond * (this.#publishersPerWorker[w] ?? 0)) / total,
    }));
  }

  async closedLoop(inflight: number): Promise<void> {
    await this.#all(() => ({ type: "closed-loop", inflight }));
  }

  async snapshot(resetLatency: boolean): Promise<Snapshot> {
    const replies = await this.#all(() => ({ type: "snapshot", resetLatency }));
    const counters: Counters = {
      delivered: 0,
      acks: 0,
      published: 0,
      skipped: 0,
      errors: 0,
      closed: 0,
    };
    const latency = new Histogram();
    const ackLatency = new Histogram();
    for (const r of replies) {
      if (r.type !== "snapshot") continue;
      ackLatency.add(new Histogram(r.ackLatency));
      for (const key of Object.keys(counters) as (keyof Counters)[])
        counters[key] += r.counters[key];
      latency.add(new Histogram(r.latency));
    }
    const usage = process.cpuUsage();
    return { counters, latency, ackLatency, cpuSeconds: (usage.user + usage.system) / 1e6 };
  }

  async stop(): Promise<void> {
    try {
      await this.#all(() => ({ type: "stop" }));
    } finally {
      await Promise.all(this.#workers.map((w) => w.terminate()));
    }
  }
}
