// The queue behind a store's group commit: appends that arrive while a group
// is in flight wait, and go together as the next group (at most `maxBatch`,
// at most `maxInFlight` groups at once). Under light load every append goes
// alone, at once. Subclasses write one group (one round trip, one
// transaction) and settle each of its appends.
import type { AppendResult, NewMessage } from "../../ports/store.js";

export interface PendingAppend {
  readonly room: string;
  readonly message: NewMessage;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (err: unknown) => void;
}

export abstract class GroupCommit {
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #queue: PendingAppend[] = [];
  #inFlight = 0;

  constructor(maxBatch: number, maxInFlight: number) {
    this.#maxBatch = maxBatch;
    this.#maxInFlight = maxInFlight;
  }

  append(room: string, message: NewMessage): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ room, message, resolve, reject });
      this.#pump();
    });
  }

  /** Writes one group and settles every append in it (never rejects). */
  protected abstract commit(batch: readonly PendingAppend[]): Promise<void>;

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight++;
      void this.commit(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }
}
