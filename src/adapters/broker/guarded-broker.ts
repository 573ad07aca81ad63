// Every broker call gets a timeout and goes through one circuit breaker (the
// CallGuard the store guard uses), so a hung broker (a SIGSTOPped server, a
// black-holed route) answers quickly with a BrokerError instead of holding
// joins and publishes. The breaker closes as soon as the adapter reports it
// reconnected, and otherwise half-opens by itself.
//
// Retries only where a repeat cannot deliver anything twice:
// - subscribe and subscribeControl are retried (backoff with jitter, within a
//   retry budget). A subscribe that timed out but completes later is
//   unsubscribed again, so a retry never leaves two handlers behind.
// - publish and publishControl are never retried here. Core NATS and Redis
//   pub/sub have no message ids, so a publish that timed out may have been
//   delivered; repeating it could deliver it twice. The core's BrokerFanout
//   re-announces a room's head after a failed publish instead, which
//   receivers treat by offset (a duplicate offset is dropped), and presence
//   heartbeats repeat on their own timer.
import type {
  Broker,
  BrokerCapabilities,
  BrokerStatusListener,
  PayloadHandler,
  Subscription,
} from "../../ports/broker.js";
import { silentLogger, type Logger } from "../../observability/logging.js";
import { CallGuard, type BreakerOptions, type GuardErrors } from "../guard/call-guard.js";
import { RetryBudget, retrying } from "../guard/retry.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";

export interface GuardedBrokerOptions extends BreakerOptions {
  /** Attempts in all for a subscribe, the first included. Default 3. */
  readonly subscribeAttempts?: number;
  /** Backoff before the first retry, doubling, fully jittered. Default 100 ms. */
  readonly retryBaseDelayMs?: number;
  /** Longest backoff between retries. Default 2000 ms. */
  readonly retryMaxDelayMs?: number;
  /** Retries earned per call (see RetryBudget). Default 0.1. */
  readonly retryBudget?: number;
  readonly log?: Logger;
}

const brokerErrors: GuardErrors = {
  refused: (what) =>
    new BrokerError(BrokerErrorCode.CircuitOpen, `broker ${what} refused: circuit open`),
  timedOut: (what, ms) =>
    new BrokerError(BrokerErrorCode.Timeout, `broker ${what} timed out after ${ms} ms`),
  failed: (what, err) =>
    err instanceof BrokerError
      ? err
      : new BrokerError(BrokerErrorCode.OperationFailed, `broker ${what} failed`, { cause: err }),
};

export class GuardedBroker implements Broker {
  readonly #inner: Broker;
  readonly #guard: CallGuard;
  readonly #budget: RetryBudget;
  readonly #attempts: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #log: Logger;

  constructor(inner: Broker, options: GuardedBrokerOptions) {
    this.#inner = inner;
    this.#guard = new CallGuard(brokerErrors, options);
    this.#budget = new RetryBudget({ ratio: options.retryBudget ?? 0.1 });
    this.#attempts = options.subscribeAttempts ?? 3;
    this.#baseDelayMs = options.retryBaseDelayMs ?? 100;
    this.#maxDelayMs = options.retryMaxDelayMs ?? 2000;
    this.#log = (options.log ?? silentLogger()).child({ component: "broker-guard" });
    // The adapter knows best when the broker is back: no need to wait for a trial call.
    inner.onStatus((connected) => {
      if (connected) this.#guard.reset();
    });
  }

  get capabilities(): BrokerCapabilities {
    return this.#inner.capabilities;
  }

  get connected(): boolean {
    return this.#inner.connected;
  }

  /** False while the breaker is open (the broker failed repeatedly). */
  get healthy(): boolean {
    return this.#guard.healthy;
  }

  open(): Promise<void> {
    return this.#inner.open();
  }

  onStatus(listener: BrokerStatusListener): void {
    this.#inner.onStatus(listener);
  }

  publish(room: string, payload: Uint8Array): Promise<void> {
    return this.#guard.call("publish", () => this.#inner.publish(room, payload));
  }

  publishControl(payload: Uint8Array): Promise<void> {
    return this.#guard.call("publishControl", () => this.#inner.publishControl(payload));
  }

  subscribe(room: string, handler: PayloadHandler): Promise<Subscription> {
    return this.#subscribe("subscribe", () => this.#inner.subscribe(room, handler));
  }

  subscribeControl(handler: PayloadHandler): Promise<Subscription> {
    return this.#subscribe("subscribeControl", () => this.#inner.subscribeControl(handler));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  #subscribe(what: string, subscribe: () => Promise<Subscription>): Promise<Subscription> {
    return retrying(() => this.#subscribeOnce(what, subscribe), {
      attempts: this.#attempts,
      baseDelayMs: this.#baseDelayMs,
      maxDelayMs: this.#maxDelayMs,
      budget: this.#budget,
      retryable: (err) =>
        !this.#guard.refusedByBreaker(err) &&
        !(err instanceof BrokerError && err.code === BrokerErrorCode.NotOpen) &&
        !(err instanceof BrokerError && err.code === BrokerErrorCode.InvalidName),
      onRetry: (attempt, err) => this.#log.debug({ err, attempt }, `broker ${what} retried`),
    });
  }

  async #subscribeOnce(
    what: string,
    subscribe: () => Promise<Subscription>,
  ): Promise<Subscription> {
    let started: Promise<Subscription> | undefined;
    try {
      return await this.#guard.call(what, () => (started = subscribe()));
    } catch (err) {
      // Timed out but may still succeed: take the late subscription back.
      started?.then(
        (late) =>
          late.unsubscribe().catch((e: unknown) => {
            this.#log.debug({ err: e }, `dropping a late broker ${what} failed`);
          }),
        () => undefined,
      );
      throw err;
    }
  }
}
