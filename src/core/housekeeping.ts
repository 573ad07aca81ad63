// The periodic trim job: history beyond HISTORY_SIZE / HISTORY_TTL, expired
// sessions and dedup keys. Runs on every node; the store's deletes are
// idempotent, so overlapping runs are harmless.
import type { Logger } from "../observability/logging.js";
import type { Store, TrimPolicy } from "../ports/store.js";

export class Housekeeping {
  readonly #timer: NodeJS.Timeout;
  #running = false;

  constructor(store: Store, policy: TrimPolicy, intervalMs: number, log: Logger) {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = true;
      store
        .trim(policy)
        .then((deleted) => {
          if (deleted > 0) log.debug({ deleted }, "history trimmed");
        })
        .catch((err: unknown) => log.warn({ err }, "trim failed; retrying next interval"))
        .finally(() => (this.#running = false));
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
