// Local handlers per broker subject, shared by every adapter: a node holds ONE
// broker subscription per subject however many local handlers it has, taken
// with the first handler and dropped with the last. Attach and detach for one
// subject run one at a time, so a subscribe racing an unsubscribe never leaves
// the broker with an interest nobody holds (or without one somebody holds).
import type { PayloadHandler, Subscription } from "../../ports/broker.js";
import type { Logger } from "../../observability/logging.js";

/** Takes the broker-side interest in a subject; resolves to the function that drops it. */
export type Attach = (subject: string) => Promise<Detach>;
export type Detach = () => Promise<void>;

interface Entry {
  /** One wrapper object per subscribe call, so the same function subscribed twice counts twice. */
  readonly handlers: Set<{ readonly handler: PayloadHandler }>;
  detach: Detach | undefined;
  /** Tail of this subject's attach/detach queue; never rejects. */
  queue: Promise<void>;
}

export class RoomInterest {
  readonly #attach: Attach;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();

  constructor(attach: Attach, log: Logger) {
    this.#attach = attach;
    this.#log = log;
  }

  /** Adds a handler; resolves once the broker holds the subject's interest. */
  async add(subject: string, handler: PayloadHandler): Promise<Subscription> {
    let entry = this.#entries.get(subject);
    if (entry === undefined) {
      entry = { handlers: new Set(), detach: undefined, queue: Promise.resolve() };
      this.#entries.set(subject, entry);
    }
    const token = { handler };
    entry.handlers.add(token);
    const e = entry;
    try {
      await this.#serial(e, async () => {
        if (e.detach === undefined && e.handlers.size > 0) e.detach = await this.#attach(subject);
      });
    } catch (err) {
      e.handlers.delete(token);
      this.#forgetIfIdle(subject, e);
      throw err;
    }
    return {
      unsubscribe: async () => {
        if (!e.handlers.delete(token)) return; // second unsubscribe is a no-op
        await this.#serial(e, async () => {
          if (e.detach !== undefined && e.handlers.size === 0) {
            const detach = e.detach;
            e.detach = undefined;
            await detach();
          }
          this.#forgetIfIdle(subject, e);
        });
      },
    };
  }

  /** Hands one payload to every current handler of the subject. */
  deliver(subject: string, payload: Uint8Array): void {
    const entry = this.#entries.get(subject);
    if (entry === undefined) return;
    for (const { handler } of entry.handlers) {
      try {
        handler(payload);
      } catch (err) {
        // One faulty handler must not starve the others of the same payload.
        this.#log.error({ err, subject }, "broker payload handler threw");
      }
    }
  }

  /** Subjects this node holds or is taking an interest in (to drop them all on close). */
  subjects(): string[] {
    return [...this.#entries.keys()];
  }

  /** Forgets every handler without talking to the broker (the connection is closing). */
  clear(): void {
    for (const entry of this.#entries.values()) {
      entry.handlers.clear();
      entry.detach = undefined;
    }
    this.#entries.clear();
  }

  #serial(entry: Entry, step: () => Promise<void>): Promise<void> {
    const run = entry.queue.then(step);
    entry.queue = run.catch(() => undefined);
    return run;
  }

  #forgetIfIdle(subject: string, entry: Entry): void {
    if (
      entry.handlers.size === 0 &&
      entry.detach === undefined &&
      this.#entries.get(subject) === entry
    ) {
      this.#entries.delete(subject);
    }
  }
}
