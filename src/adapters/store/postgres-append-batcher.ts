// Group commit for appends. Appends that arrive while earlier ones are in
// flight go to the database together, as one roomcast_append_batch call: one
// round trip, one transaction, one WAL flush for the whole group. Under light
// load every append still goes alone, at once. A hot room gains the most:
// its appends serialize on the room's row lock, and a group holds the lock
// once instead of once per message.
import { randomUUID } from "node:crypto";
import { GroupCommit, type PendingAppend } from "./group-commit.js";
import { StoreError, StoreErrorCode } from "../../ports/store-error.js";

interface BatchRow {
  o_idx: number;
  o_seq: string;
  o_duplicate: boolean;
  o_epoch: string;
}

/** Runs one SQL statement (the store's query with its error wrapping). */
export type BatchQuery = (
  text: string,
  params: readonly unknown[],
) => Promise<{ rows: BatchRow[] }>;

const MAX_BATCH = 500;
// One group in flight: a second one would only wait on the same row locks and
// split the group in two, halving what each commit carries. Measured on this
// machine's PostgreSQL, one room, 32 concurrent appenders: 2 in flight
// ~4,000 msg/s, 1 in flight 7,663 msg/s.
const MAX_IN_FLIGHT = 1;

export class AppendBatcher extends GroupCommit {
  readonly #query: BatchQuery;
  /** The dedup window as int8 text, as every batch passes it. */
  readonly #windowMs: string;

  constructor(query: BatchQuery, dedupWindowMs: number) {
    super(MAX_BATCH, MAX_IN_FLIGHT);
    this.#query = query;
    this.#windowMs = String(Math.max(0, Math.trunc(dedupWindowMs)));
  }

  protected override async commit(batch: readonly PendingAppend[]): Promise<void> {
    const items = batch.map(({ room, message }) => ({
      room,
      id: message.messageId,
      sender: message.senderId,
      sentAt: message.sentAt,
      content: message.content,
      traceparent: message.traceparent ?? null,
      tracestate: message.tracestate ?? null,
      user: message.userId ?? null,
      epoch: randomUUID(),
    }));
    try {
      const { rows } = await this.#query(
        "SELECT o_idx, o_seq, o_duplicate, o_epoch FROM roomcast_append_batch($1::jsonb, $2::bigint)",
        [JSON.stringify(items), this.#windowMs],
      );
      if (rows.length !== batch.length)
        throw new StoreError(
          StoreErrorCode.Conflict,
          `postgres append: a batch of ${batch.length} returned ${rows.length} rows`,
        );
      for (const row of rows) {
        batch[row.o_idx]?.resolve({
          offset: BigInt(row.o_seq),
          duplicate: row.o_duplicate,
          epoch: row.o_epoch,
        });
      }
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
