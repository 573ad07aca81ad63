// The chaos checker: reads a whole recorded History (history.ts) after the
// faults are over and checks it against what docs/protocol.md promises,
// Jepsen-style, instead of asserting on single events while the run goes on.
//
// Publishing (per room and message_id, over all its attempts):
// - acked: stored exactly once, at the acked offset (else *lost*);
// - refused with a code that promises "not stored": not stored (else *phantom*);
// - unknown (connection lost before the answer, or a code that cannot know):
//   stored once or not at all;
// - no message_id is stored twice in a room (*duplicated*), nothing is stored
//   that nobody sent (*phantom*), and stored offsets run 1..head (a hole is a *gap*).
// Delivery (per connection and room):
// - nothing before room_joined, offsets strictly increasing and each the one
//   stored at that offset (else an *order violation*);
// - no skipped offset unless a room_joined{recovered: false} explains it
//   (counted as *unrecovered*); a stream joined with recovered: true starts at
//   or below where the peer stood + 1 (else a *gap*; replaying more than the
//   peer had is at-least-once across a crash and allowed);
// - a connection still open when the run settled reached the head (else *stalled*).
import type { History, Outcome, PublishOp, Stream, StoredRow } from "./history.js";

export interface CheckCounts {
  /** Publish attempts (message frames sent), and how they ended. */
  operations: number;
  acked: number;
  refused: number;
  unknown: number;
  /** Distinct (room, message_id) published. */
  messages: number;
  lost: number;
  duplicated: number;
  phantom: number;
  orderViolations: number;
  gaps: number;
  stalled: number;
  /** Skips explained by room_joined{recovered: false} (not failures). */
  unrecovered: number;
  deliveries: number;
  /** Connections whose session resumed. */
  resumes: number;
}

export interface CheckResult {
  readonly counts: CheckCounts;
  /** The first few problems of each kind, described. */
  readonly problems: readonly string[];
  /** No loss, duplicate, phantom, order violation, gap or stall. */
  readonly ok: boolean;
}

export interface CheckOptions {
  /**
   * Refusal codes after which the message may still have been stored (the
   * rest promise it was not). Default, as docs/errors.md says: `internal`,
   * and `unavailable` (a store that timed out may commit the append after
   * the answer; the hang-store nemesis found this).
   */
  readonly maybeStoredCodes?: readonly string[];
  /** Problems described per kind (default 5). */
  readonly examplesPerKind?: number;
}

type Kind = "lost" | "duplicated" | "phantom" | "orderViolations" | "gaps" | "stalled";

export function checkHistory(history: History, options: CheckOptions = {}): CheckResult {
  const maybeStored = new Set(options.maybeStoredCodes ?? ["internal", "unavailable"]);
  const perKind = options.examplesPerKind ?? 5;
  const counts: CheckCounts = {
    operations: 0,
    acked: 0,
    refused: 0,
    unknown: 0,
    messages: 0,
    lost: 0,
    duplicated: 0,
    phantom: 0,
    orderViolations: 0,
    gaps: 0,
    stalled: 0,
    unrecovered: 0,
    deliveries: 0,
    resumes: 0,
  };
  const problems: string[] = [];
  const shown = new Map<Kind, number>();
  const flag = (kind: Kind, text: string): void => {
    counts[kind]++;
    const n = shown.get(kind) ?? 0;
    if (n < perKind) problems.push(`${kind}: ${text}`);
    shown.set(kind, n + 1);
  };

  const stored = indexStore(history, flag);
  checkPublishes(history.ops, stored, counts, maybeStored, flag);
  for (const stream of history.streams) checkStream(stream, history, counts, flag);
  const ok =
    counts.lost +
      counts.duplicated +
      counts.phantom +
      counts.orderViolations +
      counts.gaps +
      counts.stalled ===
    0;
  return { counts, problems, ok };
}

/** room → message_id → the offsets it is stored at; flags holes and duplicates. */
function indexStore(
  history: History,
  flag: (kind: Kind, text: string) => void,
): Map<string, Map<string, number[]>> {
  const out = new Map<string, Map<string, number[]>>();
  for (const [room, { head, rows }] of history.store) {
    const ids = new Map<string, number[]>();
    out.set(room, ids);
    let expected = 1;
    for (const row of rows) {
      if (row.offset !== expected) {
        flag("gaps", `store ${room}: offset ${row.offset} follows ${expected - 1}`);
      }
      expected = row.offset + 1;
      const at = ids.get(row.messageId);
      if (at === undefined) ids.set(row.messageId, [row.offset]);
      else {
        at.push(row.offset);
        flag("duplicated", `store ${room}: ${row.messageId} stored at ${at.join(", ")}`);
      }
    }
    if (expected - 1 !== head) {
      flag("gaps", `store ${room}: head ${head} but the last stored offset is ${expected - 1}`);
    }
  }
  return out;
}

function checkPublishes(
  ops: readonly PublishOp[],
  stored: Map<string, Map<string, number[]>>,
  counts: CheckCounts,
  maybeStored: ReadonlySet<string>,
  flag: (kind: Kind, text: string) => void,
): void {
  const byMessage = new Map<string, { room: string; id: string; outcomes: Outcome[] }>();
  for (const op of ops) {
    counts.operations++;
    const outcome: Outcome = op.outcome ?? { type: "unknown" };
    counts[outcome.type]++;
    const key = `${op.room}\u0000${op.messageId}`;
    const entry = byMessage.get(key) ?? { room: op.room, id: op.messageId, outcomes: [] };
    entry.outcomes.push(outcome);
    byMessage.set(key, entry);
  }
  counts.messages = byMessage.size;
  for (const { room, id, outcomes } of byMessage.values()) {
    const at = stored.get(room)?.get(id) ?? [];
    const acks = outcomes.flatMap((o) => (o.type === "acked" ? [o.offset] : []));
    if (acks.length > 0) {
      const offsets = [...new Set(acks)];
      if (offsets.length > 1 || at.length === 0 || !at.includes(offsets[0]!)) {
        flag(
          "lost",
          `${room}/${id} acked at ${offsets.join(", ")}, stored at ${at.join(", ") || "none"}`,
        );
      }
      continue;
    }
    const definite = outcomes.every((o) => o.type === "refused" && !maybeStored.has(o.code));
    if (definite && at.length > 0) {
      const codes = outcomes.map((o) => (o.type === "refused" ? o.code : o.type));
      flag("phantom", `${room}/${id} refused (${codes.join(", ")}) but stored at ${at.join(", ")}`);
    }
  }
  // Stored messages nobody sent.
  for (const [room, ids] of stored) {
    for (const [id, at] of ids) {
      if (!byMessage.has(`${room}\u0000${id}`)) {
        flag("phantom", `${room}/${id} stored at ${at.join(", ")} but never published`);
      }
    }
  }
}

function checkStream(
  stream: Stream,
  history: History,
  counts: CheckCounts,
  flag: (kind: Kind, text: string) => void,
): void {
  const where = `${stream.peer}#${stream.connection} (node ${stream.node}) ${stream.room}`;
  const room = history.store.get(stream.room);
  const rows = new Map<number, StoredRow>((room?.rows ?? []).map((r) => [r.offset, r]));
  let started = false;
  /** The last offset the stream stands at (received, or where live started). */
  let top: number | undefined;
  /** A recovered join: the first message must be at or below this. */
  let firstAtMost: number | undefined;
  for (const ev of stream.events) {
    if (ev.kind === "joined") {
      if (!started) {
        started = true;
        if (ev.recovered) {
          if (stream.had !== undefined) firstAtMost = stream.had + 1;
        } else {
          top = ev.offset;
          if (stream.had !== undefined && ev.offset > stream.had) counts.unrecovered++;
        }
      } else if (!ev.recovered && top !== undefined && ev.offset > top) {
        // The room skipped history it could not read (trimmed): told, so explained.
        counts.unrecovered++;
        top = ev.offset;
      }
      continue;
    }
    counts.deliveries++;
    const row = rows.get(ev.offset);
    if (row === undefined) {
      flag("orderViolations", `${where}: offset ${ev.offset} (${ev.messageId}) is not stored`);
    } else if (row.messageId !== ev.messageId) {
      flag(
        "orderViolations",
        `${where}: offset ${ev.offset} delivered as ${ev.messageId}, stored as ${row.messageId}`,
      );
    }
    if (!started) {
      flag("orderViolations", `${where}: offset ${ev.offset} before room_joined`);
      top = Math.max(top ?? 0, ev.offset);
      continue;
    }
    if (top === undefined) {
      if (firstAtMost !== undefined && ev.offset > firstAtMost) {
        flag(
          "gaps",
          `${where}: recovered resume from ${String(stream.had)} starts at ${ev.offset}`,
        );
      }
      top = ev.offset;
    } else if (ev.offset <= top) {
      flag("orderViolations", `${where}: offset ${ev.offset} after ${top}`);
    } else {
      if (ev.offset > top + 1) flag("gaps", `${where}: offset ${ev.offset} after ${top}`);
      top = ev.offset;
    }
  }
  if (stream.resumed === true && stream.events.length > 0 && isFirstRoom(stream, history)) {
    counts.resumes++;
  }
  if (stream.settled) {
    const head = room?.head ?? 0;
    if (!started) flag("stalled", `${where}: never joined (head ${head})`);
    else if ((top ?? 0) < head) flag("stalled", `${where}: stands at ${String(top)}, head ${head}`);
  }
}

/** Counts each resumed connection once (on its first room's stream). */
function isFirstRoom(stream: Stream, history: History): boolean {
  const first = history.streams.find(
    (s) => s.peer === stream.peer && s.connection === stream.connection,
  );
  return first === stream;
}

/** The columns of the results table, in order, with their headers. */
export const TABLE_COLUMNS: readonly (readonly [keyof CheckCounts, string])[] = [
  ["operations", "operations"],
  ["acked", "acked"],
  ["refused", "refused"],
  ["unknown", "unknown"],
  ["lost", "lost"],
  ["duplicated", "duplicated"],
  ["phantom", "phantom"],
  ["orderViolations", "order violations"],
  ["gaps", "gaps"],
  ["stalled", "stalled"],
  ["unrecovered", "recovered: false"],
  ["resumes", "resumes"],
  ["deliveries", "deliveries"],
];

export interface ResultRow {
  readonly nemesis: string;
  readonly broker: string;
  /** What the nemesis did, e.g. "7 kills". */
  readonly faults: string;
  readonly seconds: number;
  readonly result: CheckResult;
}

/** A Markdown table: one row per run, then a verdict column. */
export function formatTable(rows: readonly ResultRow[]): string[] {
  const head = ["nemesis", "broker", "faults", "s", ...TABLE_COLUMNS.map(([, h]) => h), "verdict"];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => " --- ").join("|")}|`];
  for (const r of rows) {
    const cells = [
      r.nemesis,
      r.broker,
      r.faults,
      String(Math.round(r.seconds)),
      ...TABLE_COLUMNS.map(([k]) => String(r.result.counts[k])),
      r.result.ok ? "pass" : "**FAIL**",
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines;
}
