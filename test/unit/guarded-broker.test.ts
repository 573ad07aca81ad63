// The broker guard: timeouts and the shared breaker on every call, retries
// (within a budget) only for subscribe, never for publish; a late subscribe
// is taken back. Runs against a scripted Broker, no network.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GuardedBroker } from "../../src/adapters/broker/guarded-broker.js";
import { BrokerError, BrokerErrorCode } from "../../src/adapters/broker/broker-error.js";
import { RetryBudget, retrying } from "../../src/adapters/guard/retry.js";
import type {
  Broker,
  BrokerStatusListener,
  PayloadHandler,
  Subscription,
} from "../../src/ports/broker.js";
import { eventually } from "../helpers/eventually.js";

type Mode = "ok" | "hang" | "fail" | "late";

class ScriptedBroker implements Broker {
  readonly capabilities = { distributed: true };
  connected = true;
  mode: Mode = "ok";
  /** Calls that fail before `mode` applies. */
  failNext = 0;
  publishes = 0;
  subscribes = 0;
  /** Handlers currently subscribed (late ones included until taken back). */
  readonly live = new Set<PayloadHandler>();
  readonly #listeners: BrokerStatusListener[] = [];
  #release: (() => void) | undefined;

  open(): Promise<void> {
    return Promise.resolve();
  }
  onStatus(listener: BrokerStatusListener): void {
    this.#listeners.push(listener);
  }
  setConnected(connected: boolean): void {
    this.connected = connected;
    for (const l of this.#listeners) l(connected);
  }
  /** Lets a "late" subscribe complete. */
  finishLate(): void {
    this.#release?.();
  }
  #outcome<T>(value: () => T): Promise<T> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new BrokerError(BrokerErrorCode.OperationFailed, "boom"));
    }
    switch (this.mode) {
      case "hang":
        return new Promise<never>(() => undefined);
      case "fail":
        return Promise.reject(new BrokerError(BrokerErrorCode.OperationFailed, "boom"));
      case "late":
        return new Promise<T>((resolve) => {
          this.#release = () => resolve(value());
        });
      case "ok":
        return Promise.resolve(value());
    }
  }
  publish(): Promise<void> {
    this.publishes++;
    return this.#outcome(() => undefined);
  }
  publishControl(): Promise<void> {
    return this.publish();
  }
  subscribe(_room: string, handler: PayloadHandler): Promise<Subscription> {
    this.subscribes++;
    return this.#outcome(() => {
      this.live.add(handler);
      return {
        unsubscribe: () => {
          this.live.delete(handler);
          return Promise.resolve();
        },
      };
    });
  }
  subscribeControl(handler: PayloadHandler): Promise<Subscription> {
    return this.subscribe("", handler);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const fast = { retryBaseDelayMs: 1, retryMaxDelayMs: 5 };

test("broker guard - a hanging publish times out with code timeout and is not retried", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, { timeoutMs: 30, ...fast });
  inner.mode = "hang";
  await assert.rejects(broker.publish("r", new Uint8Array(1)), {
    name: "BrokerError",
    code: BrokerErrorCode.Timeout,
  });
  assert.equal(inner.publishes, 1);
});

test("broker guard - repeated failures open the breaker; a reconnect closes it", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, {
    timeoutMs: 1000,
    failures: 3,
    halfOpenAfterMs: 60_000,
  });
  inner.mode = "fail";
  for (let i = 0; i < 3; i++)
    await assert.rejects(broker.publish("r", new Uint8Array(1)), {
      code: BrokerErrorCode.OperationFailed,
    });
  assert.equal(broker.healthy, false);
  inner.mode = "ok";
  await assert.rejects(broker.publish("r", new Uint8Array(1)), {
    code: BrokerErrorCode.CircuitOpen,
  });
  assert.equal(inner.publishes, 3, "an open breaker makes no call");
  inner.setConnected(false);
  inner.setConnected(true);
  assert.equal(broker.healthy, true);
  await broker.publish("r", new Uint8Array(1));
});

test("broker guard - the breaker half-opens by itself", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, { timeoutMs: 1000, failures: 1, halfOpenAfterMs: 50 });
  inner.mode = "fail";
  await assert.rejects(broker.publishControl(new Uint8Array(1)));
  inner.mode = "ok";
  await eventually(async () => {
    await broker.publishControl(new Uint8Array(1));
    return true;
  });
  assert.equal(broker.healthy, true);
});

test("broker guard - a failed subscribe is retried and then succeeds", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, { timeoutMs: 1000, failures: 10, ...fast });
  inner.failNext = 2;
  const sub = await broker.subscribe("r", () => undefined);
  assert.equal(inner.subscribes, 3);
  assert.equal(inner.live.size, 1);
  await sub.unsubscribe();
  assert.equal(inner.live.size, 0);
});

test("broker guard - subscribe gives up after the attempts with the last code", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, {
    timeoutMs: 1000,
    failures: 10,
    subscribeAttempts: 3,
    ...fast,
  });
  inner.mode = "fail";
  await assert.rejects(
    broker.subscribeControl(() => undefined),
    {
      code: BrokerErrorCode.OperationFailed,
    },
  );
  assert.equal(inner.subscribes, 3);
});

test("broker guard - a subscribe that completes after its timeout is taken back", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, {
    timeoutMs: 20,
    failures: 10,
    subscribeAttempts: 1,
    ...fast,
  });
  inner.mode = "late";
  await assert.rejects(
    broker.subscribe("r", () => undefined),
    { code: BrokerErrorCode.Timeout },
  );
  inner.finishLate();
  await eventually(() => inner.subscribes === 1 && inner.live.size === 0);
});

test("broker guard - an open breaker is not retried", async () => {
  const inner = new ScriptedBroker();
  const broker = new GuardedBroker(inner, {
    timeoutMs: 1000,
    failures: 1,
    halfOpenAfterMs: 60_000,
    subscribeAttempts: 5,
    ...fast,
  });
  inner.mode = "fail";
  await assert.rejects(
    broker.subscribe("r", () => undefined),
    {
      code: BrokerErrorCode.CircuitOpen,
    },
  );
  assert.equal(inner.subscribes, 1);
});

test("retry - the budget bounds retries to its ratio plus the per-second floor", async () => {
  let now = 0;
  const budget = new RetryBudget({ ratio: 0.1, minPerSecond: 2, now: () => now });
  let calls = 0;
  const failing = () => {
    calls++;
    return Promise.reject(new Error("down"));
  };
  for (let i = 0; i < 20; i++) {
    await assert.rejects(
      retrying(failing, { attempts: 5, baseDelayMs: 0, maxDelayMs: 0, budget, random: () => 0 }),
    );
  }
  // 20 first attempts earn 2 retries, and the floor gives 2 more in this second.
  assert.equal(calls, 20 + 2 + 2);
  now += 1000;
  assert.equal(budget.tryWithdraw(), true, "the floor refills with time");
});

test("retry - the backoff is capped and fully jittered", async () => {
  const waits: number[] = [];
  const budget = new RetryBudget({ ratio: 10 });
  const started = Date.now();
  await assert.rejects(
    retrying(() => Promise.reject(new Error("down")), {
      attempts: 4,
      baseDelayMs: 10,
      maxDelayMs: 20,
      budget,
      random: () => 1,
      onRetry: () => waits.push(Date.now()),
    }),
  );
  // waits of 10, 20 and 20 (capped) ms: at least 50 ms in all
  assert.equal(waits.length, 3);
  assert.ok(Date.now() - started >= 45);
});
