// Member: frames handled one at a time in order, publishes pipelined (and
// every other request waiting for them), the bad-frame window (and nothing
// applied after the close), waiting on its own backlog, and pausing the
// socket when frames queue up.
import assert from "node:assert/strict";
import { after, mock, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MemoryBroker } from "../../src/adapters/broker/memory-broker.js";
import { MemoryStore } from "../../src/adapters/store/memory-store.js";
import {
  MAX_PIPELINED,
  MAX_QUEUED_BYTES,
  MAX_QUEUED_FRAMES,
  Member,
  type InFlight,
  type MemberHost,
} from "../../src/core/member.js";
import { Router } from "../../src/core/router.js";
import { silentLogger } from "../../src/observability/logging.js";
import {
  MAX_ENVELOPES_PER_FRAME,
  envelope,
  jsonCodec,
  protoCodec,
} from "../../src/protocol/codec.js";
import { CloseCode, ErrorCode, WireError } from "../../src/protocol/errors.js";
import {
  JoinRoomSchema,
  MessageSchema,
  type Envelope,
} from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import { eventually } from "../helpers/eventually.js";
import { RecordingOutlet } from "../helpers/recording-outlet.js";
import { deferred, routerOptions, settle, type Deferred } from "../helpers/core.js";

const LIMIT = 10;
const R = "room-1";

/** A host that records what it is asked, like the router would be. */
class FakeHost implements MemberHost {
  readonly handled: Envelope[] = [];
  readonly events: string[] = [];
  /** Runs inside handle, before it returns. */
  during: ((env: Envelope, n: number) => Promise<void> | void) | undefined;

  async handle(_member: Member, env: Envelope): Promise<void> {
    const n = this.handled.length;
    this.handled.push(env);
    this.events.push(`start ${n}`);
    await this.during?.(env, n);
    this.events.push(`end ${n}`);
    if (env.kind.case === undefined) throw new WireError(ErrorCode.UnknownType);
  }
}

function newMember(outlet: RecordingOutlet, host: MemberHost, badFrameWindowMs = 60_000): Member {
  return new Member("m1", "u1", outlet, host, {
    badFrameLimit: LIMIT,
    badFrameWindowMs,
    rateLimitCloseAfter: 0,
    log: silentLogger(),
  });
}

function message(content: string, target = R): Envelope {
  return envelope({ case: "message", value: create(MessageSchema, { target, content }) });
}

function json(env: Envelope): Uint8Array {
  return jsonCodec.encode(env);
}

/** One binary frame holding every envelope, length-delimited. */
function protoFrame(...envs: (Envelope | "empty")[]): Uint8Array {
  return Buffer.concat(
    envs.map((e) => (e === "empty" ? new Uint8Array([0]) : protoCodec.encode(e))),
  );
}

function errorCodes(outlet: RecordingOutlet): string[] {
  return outlet.kinds("error").map((e) => e.code);
}

test("member - frames are handled one at a time, in the order received", async () => {
  const host = new FakeHost();
  // Handling takes a varying number of turns, so a concurrent or reordered
  // run would show in the events.
  host.during = (_env, n) => settle(n % 3);
  const member = newMember(new RecordingOutlet(), host);
  for (let i = 0; i < 20; i++) member.receive(json(message(`c${i}`)));
  await eventually(() => host.events.length === 40);
  const expected: string[] = [];
  for (let i = 0; i < 20; i++) expected.push(`start ${i}`, `end ${i}`);
  assert.deepEqual(host.events, expected);
  assert.deepEqual(
    host.handled.map((e) => (e.kind.case === "message" ? e.kind.value.content : "")),
    Array.from({ length: 20 }, (_, i) => `c${i}`),
  );
});

test("member - envelopes of one binary frame are handled in order, tasks enqueued after them wait", async () => {
  const host = new FakeHost();
  host.during = () => settle(1);
  const member = newMember(new RecordingOutlet(protoCodec), host);
  member.receive(protoFrame(message("a"), message("b"), message("c")));
  let ran = "";
  member.enqueue(() => {
    ran = host.events.join(",");
    return Promise.resolve();
  });
  await eventually(() => ran !== "");
  assert.equal(ran, "start 0,end 0,start 1,end 1,start 2,end 2");
});

test("member - BAD_FRAME_LIMIT bad frames close with 1008 and nothing after them is applied", async () => {
  const store = new MemoryStore({ dedupWindowMs: 60_000 });
  const broker = new MemoryBroker();
  await broker.open();
  const router = new Router(
    store,
    broker,
    { ...routerOptions, badFrameLimit: LIMIT },
    silentLogger(),
  );
  after(() => router.close());
  const outlet = new RecordingOutlet(protoCodec);
  const member = router.attach(await router.openSession(undefined), outlet);
  const join = envelope({ case: "joinRoom", value: create(JoinRoomSchema, { roomId: R }) });
  const empties = Array.from({ length: 11 }, () => "empty" as const);
  member.receive(protoFrame(join, ...empties, message("x"), message("y")));
  // A later frame is not applied either.
  member.receive(protoFrame(message("z")));
  await eventually(() => outlet.closedWith !== undefined);
  assert.equal(outlet.closedWith, CloseCode.PolicyViolation);
  assert.equal(member.active, false);
  await settle();
  // The join was applied; the 11th empty envelope and the messages were not.
  assert.equal(outlet.kinds("roomJoined").length, 1);
  assert.deepEqual(
    errorCodes(outlet),
    Array.from({ length: LIMIT }, () => ErrorCode.UnknownType),
  );
  const page = await store.read(R, 0n, 10);
  assert.equal(page.head, 0n);
  assert.deepEqual(page.messages, []);
});

test("member - a frame of 8,000 empty envelopes (under the cap) handles no more than BAD_FRAME_LIMIT of them", async () => {
  const host = new FakeHost();
  const outlet = new RecordingOutlet(protoCodec);
  const member = newMember(outlet, host);
  member.receive(new Uint8Array(8000));
  await eventually(() => outlet.closedWith !== undefined);
  assert.equal(outlet.closedWith, CloseCode.PolicyViolation);
  await settle();
  assert.equal(host.handled.length, LIMIT);
  assert.equal(errorCodes(outlet).length, LIMIT);
  member.receive(protoFrame(message("late")));
  await settle();
  assert.equal(host.handled.length, LIMIT);
});

test("member - a frame of 40,000 empty envelopes (over the cap) closes with 1008 and handles none", async () => {
  assert.ok(40_000 > MAX_ENVELOPES_PER_FRAME);
  const host = new FakeHost();
  const outlet = new RecordingOutlet(protoCodec);
  const member = newMember(outlet, host);
  member.receive(new Uint8Array(40_000));
  await eventually(() => outlet.closedWith !== undefined);
  assert.equal(outlet.closedWith, CloseCode.PolicyViolation);
  await settle();
  assert.equal(host.handled.length, 0);
  member.receive(protoFrame(message("late")));
  await settle();
  assert.equal(host.handled.length, 0);
});

test("member - bad frames outside the window do not add up", async () => {
  mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
  try {
    const host = new FakeHost();
    const outlet = new RecordingOutlet();
    const member = newMember(outlet, host, 1000);
    const bad = new TextEncoder().encode("{}");
    for (let i = 0; i < LIMIT - 1; i++) member.receive(bad);
    await eventually(() => errorCodes(outlet).length === LIMIT - 1);
    mock.timers.tick(1001);
    for (let i = 0; i < LIMIT - 1; i++) member.receive(bad);
    await eventually(() => errorCodes(outlet).length === 2 * (LIMIT - 1));
    assert.equal(outlet.closedWith, undefined);
    // One more inside the second window reaches the limit.
    member.receive(bad);
    await eventually(() => outlet.closedWith !== undefined);
    assert.equal(outlet.closedWith, CloseCode.PolicyViolation);
  } finally {
    mock.timers.reset();
  }
});

test("member - a malformed frame gets bad_request and the connection stays open", async () => {
  const host = new FakeHost();
  const outlet = new RecordingOutlet();
  const member = newMember(outlet, host);
  member.receive(new TextEncoder().encode("{not json"));
  member.receive(new TextEncoder().encode("[]"));
  member.receive(json(message("ok")));
  await eventually(() => host.handled.length === 1);
  assert.deepEqual(errorCodes(outlet), [ErrorCode.BadRequest, ErrorCode.BadRequest]);
  assert.equal(outlet.closed, false);
});

test("member - an unexpected error is answered with internal and is not a bad frame", async () => {
  const host = new FakeHost();
  host.during = () => {
    throw new Error("bug");
  };
  const outlet = new RecordingOutlet();
  const member = newMember(outlet, host);
  for (let i = 0; i < LIMIT + 2; i++) member.receive(json(message(`c${i}`)));
  await eventually(() => errorCodes(outlet).length === LIMIT + 2);
  assert.ok(errorCodes(outlet).every((c) => c === ErrorCode.Internal));
  assert.equal(outlet.closed, false);
});

test("member - once condemned, neither the rest of the frame nor queued frames are applied", async () => {
  const host = new FakeHost();
  const outlet = new RecordingOutlet(protoCodec);
  const member = newMember(outlet, host);
  host.during = (_env, n) => {
    if (n === 1) member.condemn(CloseCode.PolicyViolation);
  };
  member.receive(protoFrame(message("a"), message("b"), message("c")));
  member.receive(protoFrame(message("d")));
  let ran = false;
  member.enqueue(() => {
    ran = true;
    return Promise.resolve();
  });
  await eventually(() => outlet.closedWith !== undefined);
  await settle();
  assert.equal(host.handled.length, 2);
  assert.equal(ran, false);
});

test("member - while the outlet is backlogged the next envelope waits for it to drain", async () => {
  const host = new FakeHost();
  const outlet = new RecordingOutlet(protoCodec);
  // Every reply leaves the peer behind.
  host.during = () => {
    outlet.backlogged = true;
  };
  const member = newMember(outlet, host);
  member.receive(protoFrame(message("a"), message("b"), message("c")));
  member.receive(protoFrame(message("d")));
  for (let n = 1; n <= 4; n++) {
    await settle();
    assert.equal(host.handled.length, n);
    outlet.drain();
  }
  await settle();
  assert.equal(host.handled.length, 4);
});

test("member - more than MAX_QUEUED_FRAMES queued frames pause reading; it resumes once the queue empties", async () => {
  class CountingOutlet extends RecordingOutlet {
    pauses = 0;
    resumes = 0;
    override pauseReading(): void {
      this.pauses++;
      super.pauseReading();
    }
    override resumeReading(): void {
      this.resumes++;
      super.resumeReading();
    }
  }
  const host = new FakeHost();
  const gate = deferred();
  host.during = () => gate.promise;
  const outlet = new CountingOutlet();
  const member = newMember(outlet, host);
  // The first frame is being handled (and holds the queue); N more wait.
  const n = MAX_QUEUED_FRAMES;
  for (let i = 0; i < n + 1; i++) member.receive(json(message(`c${i}`)));
  await settle();
  assert.equal(host.handled.length, 1);
  assert.equal(outlet.readingPaused, false);
  member.receive(json(message("over-1")));
  assert.equal(outlet.readingPaused, true);
  member.receive(json(message("over-2")));
  assert.equal(outlet.pauses, 1);
  gate.resolve();
  await eventually(() => host.events.length === 2 * (n + 3));
  assert.equal(outlet.readingPaused, false);
  assert.equal(outlet.resumes, 1);
  // Below the threshold again: no pause.
  for (let i = 0; i < 5; i++) member.receive(json(message(`d${i}`)));
  await eventually(() => host.events.length === 2 * (n + 8));
  assert.equal(outlet.pauses, 1);
});

test("member - more than MAX_QUEUED_BYTES of queued frames pause reading", async () => {
  const host = new FakeHost();
  const gate = deferred();
  host.during = () => gate.promise;
  const outlet = new RecordingOutlet();
  const member = newMember(outlet, host);
  const big = json(message("x".repeat(300 * 1024)));
  // One frame is being handled; three wait (about 900 KiB): still reading.
  for (let i = 0; i < 4; i++) member.receive(big);
  await settle();
  assert.equal(outlet.readingPaused, false);
  member.receive(big);
  assert.ok(4 * big.byteLength > MAX_QUEUED_BYTES);
  assert.equal(outlet.readingPaused, true);
  gate.resolve();
  await eventually(() => !outlet.readingPaused);
});

test("member - a member closed while paused does not resume reading", async () => {
  const host = new FakeHost();
  const gate = deferred();
  host.during = () => gate.promise;
  const outlet = new RecordingOutlet();
  const member = newMember(outlet, host);
  for (let i = 0; i < MAX_QUEUED_FRAMES + 2; i++) member.receive(json(message(`c${i}`)));
  assert.equal(outlet.readingPaused, true);
  member.condemn(CloseCode.PolicyViolation);
  gate.resolve();
  await settle();
  assert.equal(host.handled.length, 1);
  assert.equal(outlet.readingPaused, true);
});

/** A host whose publishes stay in flight until the test completes them. */
class PipelineHost implements MemberHost {
  readonly handled: string[] = [];
  readonly inFlight: { content: string; done: Deferred; fail?: WireError }[] = [];

  handle(_member: Member, env: Envelope): Promise<InFlight | undefined> {
    if (env.kind.case !== "message") {
      this.handled.push(env.kind.case ?? "unknown");
      return Promise.resolve(undefined);
    }
    const content = env.kind.value.content;
    this.handled.push(content);
    if (content === "refused") return Promise.reject(new WireError(ErrorCode.Forbidden));
    const done = deferred();
    const entry = { content, done };
    this.inFlight.push(entry);
    return Promise.resolve({
      done: done.promise.then(() => {
        const failed = (entry as { fail?: WireError }).fail;
        if (failed !== undefined) throw failed;
      }),
    });
  }

  completeAll(): void {
    for (const e of this.inFlight.splice(0)) e.done.resolve();
  }
}

function joinEnv(roomId = R): Envelope {
  return envelope({ case: "joinRoom", value: create(JoinRoomSchema, { roomId }) });
}

test("member - publishes are pipelined; a later join waits for every publish before it", async () => {
  const host = new PipelineHost();
  const member = newMember(new RecordingOutlet(), host);
  for (const c of ["a", "b", "c"]) member.receive(json(message(c)));
  member.receive(json(joinEnv()));
  member.receive(json(message("d")));
  await eventually(() => host.handled.length === 3);
  await settle();
  // All three publishes are in flight at once; the join has not run.
  assert.deepEqual(host.handled, ["a", "b", "c"]);
  assert.equal(host.inFlight.length, 3);
  host.completeAll();
  await eventually(() => host.handled.length === 5);
  assert.deepEqual(host.handled, ["a", "b", "c", "joinRoom", "d"]);
});

test("member - acks are not held back by publishes in flight", async () => {
  const host = new PipelineHost();
  const member = newMember(new RecordingOutlet(), host);
  member.receive(json(message("a")));
  member.receive(
    json(
      envelope({
        case: "ack",
        value: {
          $typeName: "roomcast.v1.Ack",
          roomId: R,
          offset: 1n,
          messageId: "",
          duplicate: false,
        },
      }),
    ),
  );
  await eventually(() => host.handled.length === 2);
  assert.deepEqual(host.handled, ["a", "ack"]);
  host.completeAll();
});

test("member - at most MAX_PIPELINED publishes are in flight; the next waits for the oldest", async () => {
  const host = new PipelineHost();
  const member = newMember(new RecordingOutlet(), host);
  for (let i = 0; i <= MAX_PIPELINED; i++) member.receive(json(message(`m${i}`)));
  await eventually(() => host.inFlight.length === MAX_PIPELINED);
  await settle();
  assert.equal(host.handled.length, MAX_PIPELINED);
  host.inFlight.shift()!.done.resolve();
  await eventually(() => host.handled.length === MAX_PIPELINED + 1);
  assert.equal(host.handled.at(-1), `m${MAX_PIPELINED}`);
  host.completeAll();
});

test("member - a publish that fails in flight is answered with its error; later ones go on", async () => {
  const host = new PipelineHost();
  const outlet = new RecordingOutlet();
  const member = newMember(outlet, host);
  member.receive(json(message("a")));
  member.receive(json(message("b")));
  await eventually(() => host.inFlight.length === 2);
  (host.inFlight[0] as { fail?: WireError }).fail = new WireError(ErrorCode.Unavailable);
  host.completeAll();
  await eventually(() => errorCodes(outlet).length === 1);
  assert.deepEqual(errorCodes(outlet), [ErrorCode.Unavailable]);
  assert.equal(member.active, true);
});

test("member - a task enqueued after publishes runs once they are complete", async () => {
  const host = new PipelineHost();
  const member = newMember(new RecordingOutlet(), host);
  member.receive(json(message("a")));
  let ran = false;
  member.enqueue(() => {
    ran = true;
    return Promise.resolve();
  });
  await eventually(() => host.inFlight.length === 1);
  await settle();
  assert.equal(ran, false);
  host.completeAll();
  await eventually(() => ran);
});

test("member - an error reply waits for the publishes before it, so replies keep the request order", async () => {
  const host = new PipelineHost();
  const outlet = new RecordingOutlet();
  const member = newMember(outlet, host);
  member.receive(json(message("a")));
  member.receive(json(message("refused")));
  await eventually(() => host.handled.length === 2);
  await settle();
  assert.deepEqual(errorCodes(outlet), []);
  host.completeAll();
  await eventually(() => errorCodes(outlet).length === 1);
  assert.deepEqual(errorCodes(outlet), [ErrorCode.Forbidden]);
});
