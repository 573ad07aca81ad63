// Group commit for Spanner appends, as postgres-append-batcher.ts does for
// PostgreSQL: appends that arrive while a group is in flight go together in
// one read-write transaction (one commit, one commit timestamp). Under light
// load each append still commits alone, at once.
//
// Why it is atomic and gap-free: the transaction reads each room's row (head,
// epoch) and the batch's dedup keys, then writes head + n, the messages and
// the keys. Spanner's read-write transactions are serializable and lock what
// they read, so two groups for one room (from two nodes) cannot both commit
// on the same head: one aborts and the client library re-runs it on the new
// head. Results are taken from the run that committed.
import { randomUUID } from "node:crypto";
import { Spanner, type Transaction } from "@google-cloud/spanner";
import type { AppendResult } from "../../ports/store.js";
import { GroupCommit, type PendingAppend } from "./group-commit.js";
import { toSpannerStoreError } from "./spanner-errors.js";

// A commit carries at most 80,000 mutations; a message is two (row + key).
const MAX_BATCH = 500;
// One group in flight per node: a second one would contend for the same room
// rows and abort, which in Spanner costs a full retry of the transaction.
const MAX_IN_FLIGHT = 1;

/** Runs `fn` in a read-write transaction (the store's, with its error wrapping and gate). */
export type Transact = <T>(fn: (tx: Transaction) => Promise<T>) => Promise<T>;

export class SpannerAppendBatcher extends GroupCommit {
  readonly #transact: Transact;
  readonly #windowMs: number;

  constructor(transact: Transact, dedupWindowMs: number) {
    super(MAX_BATCH, MAX_IN_FLIGHT);
    this.#transact = transact;
    this.#windowMs = Math.max(0, Math.trunc(dedupWindowMs));
  }

  protected override async commit(batch: readonly PendingAppend[]): Promise<void> {
    let results: AppendResult[];
    try {
      results = await this.#transact(async (tx) => {
        const now = Date.now();
        const rooms = [...new Set(batch.map((p) => p.room))];
        const [roomRows] = await tx.read("Rooms", {
          keys: rooms,
          columns: ["Room", "Head", "Epoch"],
          json: true,
          jsonOptions: { wrapNumbers: true },
        });
        const state = new Map<string, { head: bigint; epoch: string; isNew: boolean }>();
        for (const r of roomRows as { Room: string; Head: { value: string }; Epoch: string }[])
          state.set(r.Room, { head: BigInt(r.Head.value), epoch: r.Epoch, isNew: false });
        for (const room of rooms)
          if (!state.has(room)) state.set(room, { head: 0n, epoch: randomUUID(), isNew: true });

        const [keyRows] = await tx.read("Dedup", {
          keys: batch.map((p) => [p.room, p.message.messageId]),
          columns: ["Room", "MessageId", "Seq", "ExpiresAt"],
          json: true,
          jsonOptions: { wrapNumbers: true },
        });
        const seen = new Map<string, bigint>();
        for (const k of keyRows as {
          Room: string;
          MessageId: string;
          Seq: { value: string };
          ExpiresAt: Date;
        }[]) {
          if (k.ExpiresAt.getTime() > now) seen.set(key(k.Room, k.MessageId), BigInt(k.Seq.value));
        }

        const out: AppendResult[] = [];
        const messages: object[] = [];
        const dedup: object[] = [];
        const expiresAt = new Date(now + this.#windowMs);
        for (const { room, message } of batch) {
          const s = state.get(room)!;
          const dup = seen.get(key(room, message.messageId));
          if (dup !== undefined) {
            out.push({ offset: dup, duplicate: true, epoch: s.epoch });
            continue;
          }
          s.head += 1n;
          out.push({ offset: s.head, duplicate: false, epoch: s.epoch });
          messages.push({
            Room: room,
            Seq: s.head.toString(),
            MessageId: message.messageId,
            SenderId: message.senderId,
            SentAt: message.sentAt,
            Content: message.content,
            Traceparent: message.traceparent ?? null,
            Tracestate: message.tracestate ?? null,
            UserId: message.userId ?? null,
            StoredAt: Spanner.COMMIT_TIMESTAMP,
          });
          if (this.#windowMs > 0) {
            seen.set(key(room, message.messageId), s.head);
            dedup.push({
              Room: room,
              MessageId: message.messageId,
              Seq: s.head.toString(),
              ExpiresAt: expiresAt,
            });
          }
        }
        for (const [room, s] of state) {
          if (s.isNew)
            tx.insert("Rooms", {
              Room: room,
              Head: s.head.toString(),
              Epoch: s.epoch,
              CreatedAt: Spanner.COMMIT_TIMESTAMP,
            });
          else tx.update("Rooms", { Room: room, Head: s.head.toString() });
        }
        if (messages.length > 0) tx.insert("Messages", messages);
        if (dedup.length > 0) tx.upsert("Dedup", dedup);
        await tx.commit();
        return out;
      });
    } catch (err) {
      const wrapped = toSpannerStoreError("append", err);
      for (const p of batch) p.reject(wrapped);
      return;
    }
    for (const [i, p] of batch.entries()) p.resolve(results[i]!);
  }
}

function key(room: string, messageId: string): string {
  return `${room}\u0000${messageId}`;
}
