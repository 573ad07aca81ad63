// What every Broker adapter shares, so each adapter only moves bytes (the
// socket.io-redis-adapter split): room and control subjects, the open check
// before publish and subscribe, refusing a publish while disconnected (at most
// once: better an error than a late delivery after the reconnect), one broker
// interest per subject however many local handlers (RoomInterest), client
// library errors wrapped into BrokerError, status listeners, and close.
import type {
  Broker,
  BrokerCapabilities,
  BrokerStatusListener,
  PayloadHandler,
  Subscription,
} from "../../ports/broker.js";
import type { Logger } from "../../observability/logging.js";
import { BrokerError, BrokerErrorCode } from "./broker-error.js";
import { RoomInterest, type Detach } from "./room-interest.js";
import { checkPrefix, controlSubject, roomSubject } from "./room-subject.js";

export type { Detach } from "./room-interest.js";

export interface BrokerBaseOptions {
  /** How logs and error messages name the backend, e.g. "NATS". */
  readonly name: string;
  /** Subject prefix, dot-separated tokens. Default "roomcast". */
  readonly prefix: string | undefined;
  readonly log: Logger;
  /** State before open(): false for a network broker, true in-process. */
  readonly connected: boolean;
}

export abstract class BrokerBase implements Broker {
  abstract readonly capabilities: BrokerCapabilities;
  protected readonly log: Logger;
  readonly #name: string;
  readonly #prefix: string;
  readonly #interest: RoomInterest;
  readonly #listeners = new Set<BrokerStatusListener>();
  #connected: boolean;
  #closed = false;

  protected constructor(options: BrokerBaseOptions) {
    this.#name = options.name;
    this.#prefix = checkPrefix(options.prefix ?? "roomcast");
    this.log = options.log;
    this.#connected = options.connected;
    this.#interest = new RoomInterest((subject) => this.#attach(subject), this.log);
  }

  abstract open(): Promise<void>;

  /** True while the adapter may publish and subscribe: opened (or opening, if it says so) and not closed. */
  protected abstract get opened(): boolean;

  /**
   * Hands one payload to the broker. Runs synchronously up to the client's
   * write, so back-to-back publishes keep their order. Only called while
   * opened and connected.
   */
  protected abstract send(subject: string, payload: Uint8Array): void | Promise<void>;

  /** Takes the broker-side interest in a subject; resolves once the broker has it. */
  protected abstract attach(subject: string): Promise<Detach>;

  /** Drops the connection on close; the synchronous part runs before listeners hear `false`. */
  protected abstract release(subjects: readonly string[]): Promise<void>;

  get connected(): boolean {
    return this.#connected;
  }

  /** True once close() was called. */
  protected get closed(): boolean {
    return this.#closed;
  }

  onStatus(listener: BrokerStatusListener): void {
    this.#listeners.add(listener);
  }

  async publish(room: string, payload: Uint8Array): Promise<void> {
    await this.#publish(roomSubject(this.#prefix, room), payload);
  }

  async subscribe(room: string, handler: PayloadHandler): Promise<Subscription> {
    return await this.#subscribe(roomSubject(this.#prefix, room), handler);
  }

  async publishControl(payload: Uint8Array): Promise<void> {
    await this.#publish(controlSubject(this.#prefix), payload);
  }

  async subscribeControl(handler: PayloadHandler): Promise<Subscription> {
    return await this.#subscribe(controlSubject(this.#prefix), handler);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const subjects = this.#interest.subjects();
    this.#interest.clear();
    const released = this.release(subjects);
    this.setConnected(false);
    try {
      await released;
    } catch (err) {
      throw this.#wrap(err, `closing the ${this.#name} connection failed`);
    }
  }

  /** Hands a payload the broker delivered to this node's handlers of its subject. */
  protected deliver(subject: string, payload: Uint8Array): void {
    this.#interest.deliver(subject, payload);
  }

  /** Refuses a second open() and an open() after close(). */
  protected checkFirstOpen(): void {
    if (this.opened || this.#closed) {
      throw new BrokerError(BrokerErrorCode.NotOpen, "broker already opened or closed");
    }
  }

  /** Records the connection state and tells every status listener when it changed. */
  protected setConnected(connected: boolean): void {
    if (this.#connected === connected) return;
    this.#connected = connected;
    if (connected) this.log.info(`${this.#name} connected`);
    for (const listener of this.#listeners) {
      try {
        listener(connected);
      } catch (err) {
        this.log.error({ err }, "broker status listener threw");
      }
    }
  }

  async #publish(subject: string, payload: Uint8Array): Promise<void> {
    this.#checkOpen();
    if (!this.#connected) {
      throw new BrokerError(
        BrokerErrorCode.Disconnected,
        `${this.#name} is disconnected; publish dropped`,
      );
    }
    try {
      await this.send(subject, payload);
    } catch (err) {
      throw this.#wrap(err, `${this.#name} publish failed`);
    }
  }

  async #subscribe(subject: string, handler: PayloadHandler): Promise<Subscription> {
    this.#checkOpen();
    return await this.#interest.add(subject, handler);
  }

  async #attach(subject: string): Promise<Detach> {
    this.#checkOpen();
    let detach: Detach;
    try {
      detach = await this.attach(subject);
    } catch (err) {
      throw this.#wrap(err, `${this.#name} subscribe failed`);
    }
    return async () => {
      try {
        await detach();
      } catch (err) {
        throw this.#wrap(err, `${this.#name} unsubscribe failed`);
      }
    };
  }

  #checkOpen(): void {
    if (!this.opened) throw new BrokerError(BrokerErrorCode.NotOpen, "broker is not open");
  }

  /** A BrokerError passes as it is; anything else is the client library's and becomes its cause. */
  #wrap(err: unknown, message: string): BrokerError {
    return err instanceof BrokerError
      ? err
      : new BrokerError(BrokerErrorCode.OperationFailed, message, { cause: err });
  }
}
