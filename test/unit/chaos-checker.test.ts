// The chaos checker must be able to fail: a crafted history that keeps every
// promise passes, and each kind of violation planted in it is found.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkHistory, formatTable, type CheckCounts } from "../chaos/checker.js";
import type { History, Outcome, PublishOp, Stream, StreamEvent } from "../chaos/history.js";

const acked = (offset: number, duplicate = false): Outcome => ({
  type: "acked",
  offset,
  duplicate,
});
const refused = (code: string): Outcome => ({ type: "refused", code });
const unknown: Outcome = { type: "unknown" };

function op(peer: string, connection: number, messageId: string, outcome: Outcome): PublishOp {
  return { peer, connection, room: "r", messageId, outcome };
}

const joined = (offset: number, recovered = false): StreamEvent => ({
  kind: "joined",
  offset,
  recovered,
  epoch: "e1",
});
const ids = ["a", "b", "c", "d"];
const msg = (offset: number, id = ids[offset - 1]!): StreamEvent => ({
  kind: "message",
  offset,
  messageId: id,
});

function stream(
  peer: string,
  connection: number,
  events: StreamEvent[],
  extra: Partial<Stream> = {},
): Stream {
  return {
    peer,
    connection,
    node: "n0",
    room: "r",
    resumed: connection > 0,
    had: undefined,
    events,
    settled: true,
    ...extra,
  };
}

/**
 * Four stored messages. a and b acked; c's first attempt lost its connection
 * and the retry was acked as a duplicate; d's only attempt is unknown (it was
 * stored); e is unknown and not stored; f was rate limited. Four members: one
 * connected throughout, one that died and resumed (recovered, at least once:
 * offset 2 again), one that resumed with recovered: false, and one left
 * behind on a dead connection.
 */
function valid(): {
  ops: PublishOp[];
  streams: Stream[];
  rows: { offset: number; messageId: string }[];
  head: number;
} {
  return {
    ops: [
      op("p1", 0, "a", acked(1)),
      op("p1", 0, "b", acked(2)),
      op("p1", 0, "c", unknown),
      op("p1", 1, "c", acked(3, true)),
      op("p1", 1, "d", unknown),
      op("p1", 1, "e", unknown),
      op("p1", 1, "f", refused("rate_limited")),
    ],
    streams: [
      stream("s1", 0, [joined(0), msg(1), msg(2), msg(3), msg(4)]),
      stream("s2", 0, [joined(0), msg(1), msg(2)], { settled: false }),
      stream("s2", 1, [joined(4, true), msg(2), msg(3), msg(4)], { had: 2 }),
      stream("s3", 1, [joined(3), msg(4)], { had: 1 }),
    ],
    rows: ids.map((id, i) => ({ offset: i + 1, messageId: id })),
    head: 4,
  };
}

function check(h: ReturnType<typeof valid>, maybeStoredCodes?: readonly string[]) {
  const history: History = {
    ops: h.ops,
    streams: h.streams,
    store: new Map([["r", { head: h.head, rows: h.rows }]]),
  };
  return checkHistory(history, maybeStoredCodes === undefined ? {} : { maybeStoredCodes });
}

/** Applies `plant` to a valid history and checks that exactly `kind` went up. */
function detects(
  kind: keyof CheckCounts,
  plant: (h: ReturnType<typeof valid>) => void,
  expect: RegExp,
): void {
  const base = check(valid()).counts;
  const h = valid();
  plant(h);
  const result = check(h);
  assert.equal(result.ok, false, "the planted violation fails the check");
  assert.ok(result.counts[kind] > base[kind], `${kind} counted: ${JSON.stringify(result.counts)}`);
  assert.ok(
    result.problems.some((p) => p.startsWith(`${kind}: `) && expect.test(p)),
    `described: ${result.problems.join("; ")}`,
  );
}

describe("chaos checker", () => {
  test("chaos checker - a history that keeps every promise passes", () => {
    const result = check(valid());
    assert.deepEqual(result.problems, []);
    assert.equal(result.ok, true);
    assert.deepEqual(
      {
        operations: result.counts.operations,
        acked: result.counts.acked,
        refused: result.counts.refused,
        unknown: result.counts.unknown,
        messages: result.counts.messages,
        unrecovered: result.counts.unrecovered,
        resumes: result.counts.resumes,
        deliveries: result.counts.deliveries,
      },
      {
        operations: 7,
        acked: 3,
        refused: 1,
        unknown: 3,
        messages: 6,
        unrecovered: 1,
        resumes: 2,
        deliveries: 10,
      },
    );
  });

  test("chaos checker - an acked message missing from the store is lost", () => {
    detects("lost", (h) => h.ops.push(op("p1", 1, "g", acked(5))), /g acked at 5, stored at none/);
  });

  test("chaos checker - an acked message stored at another offset is lost", () => {
    detects(
      "lost",
      (h) => {
        h.ops[0] = op("p1", 0, "a", acked(2));
      },
      /a acked at 2, stored at 1/,
    );
  });

  test("chaos checker - two acks of one message at different offsets are a loss", () => {
    detects("lost", (h) => h.ops.push(op("p1", 2, "a", acked(4, true))), /a acked at 1, 4/);
  });

  test("chaos checker - a message stored twice is duplicated", () => {
    detects(
      "duplicated",
      (h) => {
        h.rows.push({ offset: 5, messageId: "e" }, { offset: 6, messageId: "e" });
        h.head = 6;
      },
      /e stored at 5, 6/,
    );
  });

  test("chaos checker - a refused message that was stored is a phantom", () => {
    detects(
      "phantom",
      (h) => {
        h.ops[4] = op("p1", 1, "d", refused("rate_limited"));
      },
      /d refused \(rate_limited\) but stored at 4/,
    );
  });

  test("chaos checker - a stored message nobody published is a phantom", () => {
    detects(
      "phantom",
      (h) => {
        h.ops.splice(4, 1);
      },
      /d stored at 4 but never published/,
    );
  });

  test("chaos checker - codes that cannot know whether it was stored are unknown outcomes", () => {
    const h = valid();
    h.ops[4] = op("p1", 1, "d", refused("unavailable"));
    assert.equal(check(h).ok, true, "a store that timed out may commit later (docs/errors.md)");
    assert.equal(check(h, []).ok, false);
  });

  test("chaos checker - an offset repeated on one connection is an order violation", () => {
    detects(
      "orderViolations",
      (h) => {
        h.streams[0] = stream("s1", 0, [joined(0), msg(1), msg(2), msg(2), msg(3), msg(4)]);
      },
      /s1#0 .* offset 2 after 2/,
    );
  });

  test("chaos checker - offsets out of order on one connection are an order violation", () => {
    detects(
      "orderViolations",
      (h) => {
        h.streams[0] = stream("s1", 0, [joined(0), msg(1), msg(3), msg(2), msg(4)]);
      },
      /offset 2 after 3/,
    );
  });

  test("chaos checker - a message before room_joined is an order violation", () => {
    detects(
      "orderViolations",
      (h) => {
        h.streams[3] = stream("s3", 1, [msg(4), joined(3)], { had: 1 });
      },
      /offset 4 before room_joined/,
    );
  });

  test("chaos checker - a delivery that differs from the store is an order violation", () => {
    detects(
      "orderViolations",
      (h) => {
        h.streams[0] = stream("s1", 0, [joined(0), msg(1), msg(2), msg(3, "d"), msg(4)]);
      },
      /offset 3 delivered as d, stored as c/,
    );
  });

  test("chaos checker - a skipped offset on one connection is a gap", () => {
    detects(
      "gaps",
      (h) => {
        h.streams[0] = stream("s1", 0, [joined(0), msg(1), msg(2), msg(4)]);
      },
      /s1#0 .* offset 4 after 2/,
    );
  });

  test("chaos checker - a recovered resume that starts past where the peer stood is a gap", () => {
    detects(
      "gaps",
      (h) => {
        h.streams[2] = stream("s2", 1, [joined(4, true), msg(4)], { had: 2 });
      },
      /recovered resume from 2 starts at 4/,
    );
  });

  test("chaos checker - a live stream that starts past room_joined is a gap", () => {
    detects(
      "gaps",
      (h) => {
        h.streams[3] = stream("s3", 1, [joined(2), msg(4)], { had: 1 });
      },
      /offset 4 after 2/,
    );
  });

  test("chaos checker - a hole in the stored offsets is a gap", () => {
    detects(
      "gaps",
      (h) => {
        h.rows.splice(1, 1);
        h.ops.splice(1, 1);
        h.streams = [];
      },
      /store r: offset 3 follows 1/,
    );
  });

  test("chaos checker - a member connected at the end that never reached the head stalled", () => {
    detects(
      "stalled",
      (h) => {
        h.streams[0] = stream("s1", 0, [joined(0), msg(1), msg(2), msg(3)]);
      },
      /s1#0 .* stands at 3, head 4/,
    );
  });

  test("chaos checker - a skip announced by room_joined{recovered: false} is explained", () => {
    const h = valid();
    h.streams[0] = stream("s1", 0, [joined(0), msg(1), joined(3), msg(4)]);
    const result = check(h);
    assert.deepEqual(result.problems, []);
    assert.equal(result.counts.unrecovered, 2);
  });

  test("chaos checker - the table has a row per run and the issue's columns", () => {
    const lines = formatTable([
      { nemesis: "kill", broker: "nats", faults: "3 kills", seconds: 10, result: check(valid()) },
    ]);
    assert.equal(lines.length, 3);
    for (const col of [
      "operations",
      "acked",
      "refused",
      "unknown",
      "lost",
      "duplicated",
      "order violations",
      "gaps",
    ]) {
      assert.ok(lines[0]!.includes(` ${col} |`), col);
    }
    assert.match(
      lines[2]!,
      /\| kill \| nats \| 3 kills \| 10 \| 7 \| 3 \| 1 \| 3 \| 0 \|.* pass \|$/,
    );
  });
});
