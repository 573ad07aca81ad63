// Checks what chaos peers recorded against the ordering guarantee of
// docs/protocol.md: on one connection a member receives each room's messages
// in offset order, with no gap and no duplicate, replay and live alike.
import type { ConnectionRecord } from "./chaos-peer.js";

export interface StreamCounts {
  /** (connection, room) pairs that received at least one message. */
  streams: number;
  deliveries: number;
  /** An offset received again on the same connection. */
  repeats: number;
  /** An offset lower than the highest received before it (a repeat of an older one counts in both). */
  reorders: number;
  /** An offset more than one above the highest received before it. */
  gaps: number;
  /** Messages that arrived before the connection's room_joined for the room. */
  early: number;
  /**
   * recovered:true streams whose first offset is beyond what the peer had
   * before this connection + 1 (delivery across a crash is at least once).
   */
  lost: number;
}

export interface StreamReport {
  /** By how the room was joined on the connection: "recovered", "not recovered", "plain". */
  readonly byJoin: Map<string, StreamCounts>;
  readonly total: StreamCounts;
  readonly connections: number;
  /** A few offending streams, described for the failure message. */
  readonly examples: string[];
}

const MAX_EXAMPLES = 6;

function zero(): StreamCounts {
  return {
    streams: 0,
    deliveries: 0,
    repeats: 0,
    reorders: 0,
    gaps: 0,
    early: 0,
    lost: 0,
  };
}

export function checkStreams(connections: readonly ConnectionRecord[]): StreamReport {
  const byJoin = new Map<string, StreamCounts>();
  const total = zero();
  const examples: string[] = [];
  for (const conn of connections) {
    for (const [room, rec] of conn.rooms) {
      if (rec.offsets.length === 0) continue;
      const kind =
        rec.joined === undefined
          ? "no room_joined"
          : rec.joined.recovered
            ? "recovered"
            : conn.before.has(room)
              ? "not recovered"
              : "plain";
      const counts = byJoin.get(kind) ?? zero();
      byJoin.set(kind, counts);
      const c = zero();
      c.streams = 1;
      c.deliveries = rec.offsets.length;
      c.early = rec.early;
      const seen = new Set<number>();
      let top = -1;
      let firstBad = -1;
      for (const [i, offset] of rec.offsets.entries()) {
        if (top >= 0) {
          if (seen.has(offset)) c.repeats++;
          if (offset < top) c.reorders++;
          else if (offset > top + 1) c.gaps++;
          if (firstBad < 0 && offset !== top + 1) firstBad = i;
        }
        seen.add(offset);
        top = Math.max(top, offset);
      }
      const first = rec.offsets[0]!;
      const had = conn.before.get(room);
      if (rec.joined?.recovered === true && had !== undefined && first > had + 1) c.lost = 1;
      for (const key of Object.keys(c) as (keyof StreamCounts)[]) {
        counts[key] += c[key];
        total[key] += c[key];
      }
      if (firstBad >= 0 && examples.length < MAX_EXAMPLES) {
        const around = rec.offsets.slice(Math.max(0, firstBad - 4), firstBad + 6);
        examples.push(
          `${conn.peer} connection ${conn.index} (node ${conn.node}, resumed ${String(conn.resumed)}) ` +
            `room ${room} joined ${JSON.stringify(rec.joined)} had ${String(had)}: ` +
            `offsets ${first}..., at #${firstBad}: ${around.join(",")}`,
        );
      }
    }
  }
  return { byJoin, total, connections: connections.length, examples };
}

/** A small fixed-width table of the counts, one row per kind of join and a total. */
export function formatReport(title: string, report: StreamReport): string[] {
  const cols: (keyof StreamCounts)[] = [
    "streams",
    "deliveries",
    "repeats",
    "reorders",
    "gaps",
    "early",
    "lost",
  ];
  const rows: [string, StreamCounts][] = [...report.byJoin, ["total", report.total]];
  const head = ["join".padEnd(16), ...cols.map((c) => c.padStart(11))].join("");
  const lines = [`${title}: ${report.connections} connections`, head];
  for (const [name, c] of rows)
    lines.push([name.padEnd(16), ...cols.map((k) => String(c[k]).padStart(11))].join(""));
  return lines;
}
