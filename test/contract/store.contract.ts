// The one contract suite every Store adapter passes, run unchanged against
// each. `make` returns a new, unopened store on the suite's backend (for SQL
// adapters a new connection to the same file or database, so several stores
// stand for several nodes or processes).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import type { NewMessage, SessionRecord, Store, StoreCapabilities } from "../../src/ports/store.js";
import { StoreErrorCode } from "../../src/ports/store-error.js";
import { eventually } from "../helpers/eventually.js";

/** The configuration every adapter takes at construction, beside its own (path, url, ...). */
export interface StoreSettings {
  readonly dedupWindowMs: number;
}

/** Makes a new, unopened store configured with `settings`. */
export type StoreFactory = (settings: StoreSettings) => Promise<Store>;

export interface StoreContractOptions {
  /** Expected `capabilities`. */
  readonly capabilities: StoreCapabilities;
  /** True when stores from `make` share one backend (same file, same database). */
  readonly sharedBackend: boolean;
  /** Skip the whole suite (e.g. PostgreSQL is missing outside CI). */
  readonly skip?: boolean;
  /** Runs before the suite (start the server). */
  readonly before?: () => Promise<void>;
  /** Runs after the suite (stop the server, remove files). */
  readonly after?: () => Promise<void>;
  /** A factory of stores on a new, empty backend (new file, new database). */
  readonly fresh: () => Promise<StoreFactory>;
  /** Appends `count` messages to `room` from another OS process; resolves with their offsets. */
  readonly appendInProcess?: (room: string, count: number, idPrefix: string) => Promise<bigint[]>;
  /** Stops and restarts the backend server (network stores only). */
  readonly server?: { stop(): Promise<void>; start(): Promise<void> };
}

const run = randomBytes(3).toString("hex");
let counter = 0;
/** A name no other test (or earlier run on a reused backend) uses. */
function unique(label: string): string {
  counter += 1;
  return `${label}-${run}-${counter}`;
}

function message(id: string, extra: Partial<NewMessage> = {}): NewMessage {
  return {
    messageId: id,
    senderId: "sender-1",
    sentAt: "2026-01-02T03:04:05.678Z",
    content: `content of ${id}`,
    ...extra,
  };
}

/** 1n..n */
function range(n: number): bigint[] {
  return Array.from({ length: n }, (_, i) => BigInt(i + 1));
}

function sorted(offsets: readonly bigint[]): bigint[] {
  return [...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const WINDOW = 60_000;
const LONG = { dedupWindowMs: WINDOW };
// Long enough that a call right after an append is reliably inside it.
const SHORT_WINDOW = 500;
const DAY = 86_400_000;
const KEEP_ALL = { maxPerRoom: 1_000_000, maxAgeMs: DAY };

export function storeContract(name: string, make: StoreFactory, opts: StoreContractOptions): void {
  /** An opened store on the suite's backend, closed when the test ends. */
  async function opened(
    t: TestContext,
    factory: StoreFactory = make,
    settings: StoreSettings = LONG,
  ): Promise<Store> {
    const store = await factory(settings);
    t.after(() => store.close());
    await store.open();
    return store;
  }

  /** n opened stores: on one backend when it is shared, else one store n times. */
  async function several(t: TestContext, n: number): Promise<Store[]> {
    if (!opts.sharedBackend) {
      const one = await opened(t);
      return Array.from({ length: n }, () => one);
    }
    return Promise.all(Array.from({ length: n }, () => opened(t)));
  }

  async function openedFresh(t: TestContext): Promise<Store> {
    return opened(t, await opts.fresh());
  }

  async function appendMany(store: Store, room: string, n: number, prefix: string) {
    const out = [];
    for (let i = 0; i < n; i++) out.push(await store.append(room, message(`${prefix}-${i}`)));
    return out;
  }

  void describe(name, { skip: opts.skip === true, timeout: 120_000 }, () => {
    if (opts.before !== undefined) before(opts.before);
    if (opts.after !== undefined) after(opts.after);

    void it("store - states its capabilities", async (t) => {
      const store = await opened(t);
      assert.deepEqual({ ...store.capabilities }, opts.capabilities);
    });

    void it("store - read of a new room creates its epoch, head 0, oldest 1", async (t) => {
      const store = await opened(t);
      const room = unique("new");
      const page = await store.read(room, 0n, 10);
      assert.deepEqual(page.messages, []);
      assert.equal(page.head, 0n);
      assert.equal(page.oldest, 1n);
      assert.ok(page.epoch.length > 0);
      const appended = await store.append(room, message("m1"));
      assert.deepEqual(appended, { offset: 1n, duplicate: false, epoch: page.epoch });
      assert.equal((await store.read(room, 0n, 0)).epoch, page.epoch);
    });

    void it("store - append assigns contiguous bigint offsets from 1 per room", async (t) => {
      const store = await opened(t);
      const [a, b] = [unique("a"), unique("b")];
      const got: Record<string, bigint[]> = { [a]: [], [b]: [] };
      for (let i = 0; i < 5; i++) {
        for (const room of [a, b]) {
          const r = await store.append(room, message(`${room}-${i}`));
          assert.equal(typeof r.offset, "bigint");
          assert.equal(r.duplicate, false);
          got[room]?.push(r.offset);
        }
      }
      assert.deepEqual(got, { [a]: range(5), [b]: range(5) });
      const epochA = (await store.read(a, 0n, 0)).epoch;
      assert.notEqual(epochA, (await store.read(b, 0n, 0)).epoch);
    });

    void it("store - read pages after an offset, ascending, with every field intact", async (t) => {
      const store = await opened(t);
      const room = unique("read");
      const traced = message("traced", {
        content: "héllo 👋 ✓ \"quoted\" 'single' \\ back",
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate: "vendor=value",
        userId: "alice@example.com",
      });
      await store.append(room, traced);
      await appendMany(store, room, 9, "plain");

      const all = await store.read(room, 0n, 100);
      assert.deepEqual(
        all.messages.map((m) => m.offset),
        range(10),
      );
      assert.deepEqual(all.messages[0], { ...traced, room, offset: 1n });
      const plain = all.messages[1];
      assert.ok(plain !== undefined);
      assert.deepEqual(plain, { ...message("plain-0"), room, offset: 2n });
      assert.equal("traceparent" in plain, false);
      assert.equal("userId" in plain, false);
      assert.equal(all.head, 10n);
      assert.equal(all.oldest, 1n);

      const page = await store.read(room, 3n, 4);
      assert.deepEqual(
        page.messages.map((m) => m.offset),
        [4n, 5n, 6n, 7n],
      );
      assert.equal(page.head, 10n);
      assert.equal(page.epoch, all.epoch);

      assert.deepEqual((await store.read(room, 10n, 5)).messages, []);
      assert.deepEqual((await store.read(room, 99n, 5)).messages, []);
      const meta = await store.read(room, 0n, 0);
      assert.deepEqual(meta, { messages: [], head: 10n, epoch: all.epoch, oldest: 1n });
    });

    void it("store - a duplicate messageId returns the original offset and stores nothing", async (t) => {
      const store = await opened(t);
      const [room, other] = [unique("dup"), unique("dup-other")];
      const first = await store.append(room, message("x"));
      await store.append(room, message("y"));
      const again = await store.append(room, message("x", { content: "changed" }));
      assert.deepEqual(again, { offset: 1n, duplicate: true, epoch: first.epoch });
      const page = await store.read(room, 0n, 10);
      assert.equal(page.head, 2n);
      assert.deepEqual(
        page.messages.map((m) => m.content),
        ["content of x", "content of y"],
      );
      // The key is per room.
      assert.deepEqual(
        { ...(await store.append(other, message("x"))), epoch: "" },
        { offset: 1n, duplicate: false, epoch: "" },
      );
    });

    void it("store - dedup keys outlive the trimmed message", async (t) => {
      const store = await openedFresh(t);
      const room = unique("dedup-trim");
      await appendMany(store, room, 3, "m");
      assert.equal(await store.trim({ maxPerRoom: 0, maxAgeMs: DAY }), 3);
      assert.deepEqual((await store.read(room, 0n, 10)).messages, []);
      const again = await store.append(room, message("m-1"));
      assert.equal(again.duplicate, true);
      assert.equal(again.offset, 2n);
      assert.equal((await store.read(room, 0n, 10)).head, 3n);
    });

    void it("store - an expired dedup key lets the id be stored again", async (t) => {
      const store = await opened(t, make, { dedupWindowMs: SHORT_WINDOW });
      const room = unique("dedup-expiry");
      const first = Date.now();
      assert.equal((await store.append(room, message("z"))).offset, 1n);
      // Every try inside the configured window is a duplicate (stores
      // nothing); the first one after it stores the message at the next offset.
      const stored = await eventually(async () => {
        const r = await store.append(room, message("z"));
        return r.duplicate ? undefined : r;
      });
      assert.equal(stored.offset, 2n);
      assert.ok(Date.now() - first >= SHORT_WINDOW, "the key must hold for the whole window");
      // Again after a trim swept (or will sweep) the expired key; the new key
      // holds as the first did.
      await eventually(async () => {
        await store.trim(KEEP_ALL);
        return !(await store.append(room, message("z"))).duplicate;
      });
      assert.equal((await store.append(room, message("z"))).duplicate, true);
      assert.equal((await store.read(room, 0n, 0)).head, 3n);
    });

    void it("store - trim by size keeps the newest maxPerRoom messages, head and epoch", async (t) => {
      const store = await openedFresh(t);
      const [big, small] = [unique("big"), unique("small")];
      await appendMany(store, big, 10, "b");
      await appendMany(store, small, 3, "s");
      const epoch = (await store.read(big, 0n, 0)).epoch;
      assert.equal(await store.trim({ maxPerRoom: 4, maxAgeMs: DAY }), 6);
      const page = await store.read(big, 0n, 100);
      assert.deepEqual(
        page.messages.map((m) => m.offset),
        [7n, 8n, 9n, 10n],
      );
      assert.equal(page.oldest, 7n);
      assert.equal(page.head, 10n);
      assert.equal(page.epoch, epoch);
      assert.deepEqual(
        (await store.read(big, 7n, 2)).messages.map((m) => m.offset),
        [8n, 9n],
      );
      assert.equal((await store.read(small, 0n, 100)).messages.length, 3);
      assert.equal(await store.trim({ maxPerRoom: 4, maxAgeMs: DAY }), 0);
      assert.equal((await store.append(big, message("b-next"))).offset, 11n);
    });

    void it("store - trim by age empties a quiet room, whose head and epoch remain", async (t) => {
      const store = await openedFresh(t);
      const room = unique("aged");
      const first = await store.append(room, message("a-0"));
      await appendMany(store, room, 2, "a-rest");
      assert.equal(await store.trim(KEEP_ALL), 0);
      assert.equal((await store.read(room, 0n, 10)).messages.length, 3);
      assert.equal(await store.trim({ maxPerRoom: 1000, maxAgeMs: 0 }), 3);
      assert.deepEqual(await store.read(room, 0n, 10), {
        messages: [],
        head: 3n,
        epoch: first.epoch,
        oldest: 4n,
      });
      assert.deepEqual(await store.append(room, message("a-new")), {
        offset: 4n,
        duplicate: false,
        epoch: first.epoch,
      });
      assert.equal((await store.read(room, 0n, 10)).oldest, 4n);
    });

    void it("store - resume rotates the token: the old hash works once, then never", async (t) => {
      const store = await opened(t);
      const record: SessionRecord = {
        memberId: unique("member"),
        userId: "alice",
        rooms: [
          { room: "r1", offset: 2n ** 60n + 3n, epoch: "e1" },
          { room: "r2", offset: 0n, epoch: "" },
        ],
      };
      const [h1, h2, h3] = [unique("h1"), unique("h2"), unique("h3")];
      await store.createSession(record, h1, Date.now() + WINDOW);
      assert.deepEqual(await store.resumeSession(h1, h2, Date.now() + WINDOW, "alice"), record);
      assert.equal(await store.resumeSession(h1, h3, Date.now() + WINDOW, "alice"), undefined);
      assert.deepEqual(await store.resumeSession(h2, h3, Date.now() + WINDOW, "alice"), record);
      assert.equal(
        await store.resumeSession(unique("unknown"), h1, Date.now() + WINDOW, "alice"),
        undefined,
      );
    });

    void it("store - another user's token resumes nothing and leaves the session to its owner", async (t) => {
      const store = await opened(t);
      const record: SessionRecord = { memberId: unique("member"), userId: "alice", rooms: [] };
      const [h1, h2, h3] = [unique("h1"), unique("h2"), unique("h3")];
      await store.createSession(record, h1, Date.now() + WINDOW);
      assert.equal(await store.resumeSession(h1, h2, Date.now() + WINDOW, "mallory"), undefined);
      assert.equal(await store.resumeSession(h1, h2, Date.now() + WINDOW, ""), undefined);
      // The owner's token was not rotated by the attempts: it resumes, once.
      assert.deepEqual(await store.resumeSession(h1, h3, Date.now() + WINDOW, "alice"), record);
      assert.equal(
        await store.resumeSession(h2, unique("h4"), Date.now() + WINDOW, "alice"),
        undefined,
      );
    });

    void it("store - an expired session is not resumable", async (t) => {
      const store = await opened(t);
      const h = unique("h");
      await store.createSession(
        { memberId: unique("m"), userId: "", rooms: [] },
        h,
        Date.now() - 1,
      );
      assert.equal(await store.resumeSession(h, unique("h2"), Date.now() + WINDOW, ""), undefined);
    });

    void it("store - saveSession replaces the rooms and extends the expiry", async (t) => {
      const store = await opened(t);
      const memberId = unique("m");
      const [h1, h2] = [unique("h1"), unique("h2")];
      const shortExpiry = Date.now() + 300;
      await store.createSession(
        { memberId, userId: "", rooms: [{ room: "old", offset: 1n, epoch: "e" }] },
        h1,
        shortExpiry,
      );
      const rooms = [{ room: "new", offset: 2n ** 63n - 1n, epoch: "e2" }];
      await store.saveSession(memberId, rooms, Date.now() + WINDOW);
      await eventually(() => Date.now() > shortExpiry + 5);
      assert.deepEqual(await store.resumeSession(h1, h2, Date.now() + WINDOW, ""), {
        memberId,
        userId: "",
        rooms,
      });
      // Unknown and expired members are ignored: nothing is created or revived.
      await store.saveSession(unique("nobody"), rooms, Date.now() + WINDOW);
      const expired = unique("expired");
      const h3 = unique("h3");
      await store.createSession({ memberId: expired, userId: "u", rooms: [] }, h3, Date.now() - 1);
      await store.saveSession(expired, rooms, Date.now() + WINDOW);
      assert.equal(
        await store.resumeSession(h3, unique("h4"), Date.now() + WINDOW, "u"),
        undefined,
      );
    });

    void it("store - trim removes expired sessions and keeps live ones", async (t) => {
      const store = await openedFresh(t);
      const [live, dead] = [unique("live"), unique("dead")];
      await store.createSession(
        { memberId: live, userId: "u", rooms: [] },
        live,
        Date.now() + WINDOW,
      );
      await store.createSession({ memberId: dead, userId: "u", rooms: [] }, dead, Date.now() - 1);
      await store.trim(KEEP_ALL);
      assert.equal(
        (await store.resumeSession(live, unique("x"), Date.now() + WINDOW, "u"))?.memberId,
        live,
      );
      assert.equal(
        await store.resumeSession(dead, unique("y"), Date.now() + WINDOW, "u"),
        undefined,
      );
    });

    void it("store - revokeUserSessions ends every session of that user only", async (t) => {
      const store = await opened(t);
      const user = unique("user");
      const [a, b, other] = [unique("a"), unique("b"), unique("other")];
      const rooms = [{ room: "r", offset: 1n, epoch: "e" }];
      await store.createSession({ memberId: a, userId: user, rooms }, a, Date.now() + WINDOW);
      await store.createSession({ memberId: b, userId: user, rooms }, b, Date.now() + WINDOW);
      const otherUser = unique("user");
      await store.createSession(
        { memberId: other, userId: otherUser, rooms },
        other,
        Date.now() + WINDOW,
      );
      await store.revokeUserSessions(user);
      await store.revokeUserSessions(user); // idempotent
      // A save after the revocation (a socket closing on some node) revives nothing.
      await store.saveSession(a, rooms, Date.now() + WINDOW);
      assert.equal(await store.resumeSession(a, unique("x"), Date.now() + WINDOW, user), undefined);
      assert.equal(await store.resumeSession(b, unique("y"), Date.now() + WINDOW, user), undefined);
      assert.equal(
        (await store.resumeSession(other, unique("z"), Date.now() + WINDOW, otherUser))?.memberId,
        other,
      );
      // The user may connect again: a new session works.
      const fresh = unique("fresh");
      await store.createSession(
        { memberId: fresh, userId: user, rooms },
        fresh,
        Date.now() + WINDOW,
      );
      assert.equal(
        (await store.resumeSession(fresh, unique("w"), Date.now() + WINDOW, user))?.memberId,
        fresh,
      );
    });

    void it("store - a session room keeps its presence flag", async (t) => {
      const store = await opened(t);
      const memberId = unique("m");
      const [h1, h2] = [unique("h1"), unique("h2")];
      const rooms = [
        { room: "p", offset: 3n, epoch: "e", presence: true },
        { room: "q", offset: 4n, epoch: "e" },
      ];
      await store.createSession({ memberId, userId: "", rooms: [] }, h1, Date.now() + WINDOW);
      await store.saveSession(memberId, rooms, Date.now() + WINDOW);
      assert.deepEqual((await store.resumeSession(h1, h2, Date.now() + WINDOW, ""))?.rooms, rooms);
    });

    void it("store - of concurrent resumes of one hash exactly one wins", async (t) => {
      const stores = await several(t, 4);
      const memberId = unique("m");
      const h = unique("h");
      await stores[0]?.createSession({ memberId, userId: "u", rooms: [] }, h, Date.now() + WINDOW);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          stores[i % stores.length]!.resumeSession(h, unique(`new-${i}`), Date.now() + WINDOW, "u"),
        ),
      );
      assert.equal(results.filter((r) => r !== undefined).length, 1);
    });

    void it("store - concurrent appends on one store get offsets 1..N", async (t) => {
      const store = await opened(t);
      const room = unique("conc");
      const n = 200;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => store.append(room, message(`c-${i}`))),
      );
      assert.deepEqual(sorted(results.map((r) => r.offset)), range(n));
      const page = await store.read(room, 0n, n + 10);
      assert.deepEqual(
        page.messages.map((m) => m.offset),
        range(n),
      );
      assert.equal(new Set(page.messages.map((m) => m.messageId)).size, n);
    });

    void it("store - appends called without waiting keep their call order per room", async (t) => {
      const store = await opened(t);
      const rooms = [unique("order-a"), unique("order-b"), unique("order-c")];
      const n = 90;
      // Interleaved over three rooms, with a duplicate among them; a member
      // pipelining its publishes relies on this order.
      const calls = Array.from({ length: n }, (_, i) => ({
        room: rooms[i % rooms.length]!,
        id: i === 45 ? "o-0" : `o-${i}`,
      }));
      const results = await Promise.all(calls.map((c) => store.append(c.room, message(c.id))));
      for (const room of rooms) {
        const mine = results.filter((_, i) => calls[i]!.room === room && !results[i]!.duplicate);
        assert.deepEqual(
          mine.map((r) => r.offset),
          range(mine.length),
          `offsets of ${room} in call order`,
        );
        const page = await store.read(room, 0n, n);
        assert.deepEqual(
          page.messages.map((m) => m.messageId),
          calls.filter((c, i) => c.room === room && !results[i]!.duplicate).map((c) => c.id),
        );
      }
      // o-0 went to rooms[0] first; the repeat at 45 went to rooms[0] too.
      assert.equal(results[45]!.duplicate, true);
      assert.equal(results[45]!.offset, 1n);
    });

    void it(
      "store - concurrent appends from several stores on one backend get offsets 1..N",
      { skip: !opts.sharedBackend },
      async (t) => {
        const stores = await several(t, 4);
        const room = unique("multi");
        const perStore = 60;
        const results = await Promise.all(
          stores.flatMap((s, si) =>
            Array.from({ length: perStore }, (_, i) => s.append(room, message(`s${si}-${i}`))),
          ),
        );
        const n = stores.length * perStore;
        assert.deepEqual(sorted(results.map((r) => r.offset)), range(n));
        const page = await stores[0]!.read(room, 0n, n + 10);
        assert.deepEqual(
          page.messages.map((m) => m.offset),
          range(n),
        );
      },
    );

    void it(
      "store - concurrent appends from several processes get offsets 1..N",
      { skip: opts.appendInProcess === undefined },
      async (t) => {
        const spawnAppend = opts.appendInProcess;
        assert.ok(spawnAppend !== undefined);
        const store = await opened(t);
        const room = unique("procs");
        const [processes, perProcess, local] = [4, 100, 50];
        const [fromProcesses, fromHere] = await Promise.all([
          Promise.all(
            Array.from({ length: processes }, (_, p) => spawnAppend(room, perProcess, `p${p}`)),
          ),
          Promise.all(
            Array.from({ length: local }, (_, i) => store.append(room, message(`here-${i}`))),
          ),
        ]);
        const n = processes * perProcess + local;
        const offsets = [...fromProcesses.flat(), ...fromHere.map((r) => r.offset)];
        assert.deepEqual(sorted(offsets), range(n));
        const page = await store.read(room, 0n, n + 10);
        assert.deepEqual(
          page.messages.map((m) => m.offset),
          range(n),
        );
        assert.equal(page.head, BigInt(n));
      },
    );

    void it("store - one messageId appended concurrently is stored once", async (t) => {
      const stores = await several(t, 4);
      const room = unique("same-id");
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          stores[i % stores.length]!.append(room, message("once")),
        ),
      );
      assert.equal(results.filter((r) => !r.duplicate).length, 1);
      assert.deepEqual(new Set(results.map((r) => r.offset)), new Set([1n]));
      assert.equal((await stores[0]!.read(room, 0n, 10)).head, 1n);
    });

    if (opts.capabilities.durable) {
      void it("store - a reopened store keeps history, epochs, dedup keys and sessions", async (t) => {
        const factory = await opts.fresh();
        const room = unique("durable");
        const h1 = unique("h1");
        const record = { memberId: unique("m"), userId: "u", rooms: [] };
        const first = await factory(LONG);
        await first.open();
        const appended = await first.append(room, message("kept"));
        await first.createSession(record, h1, Date.now() + WINDOW);
        await first.close();

        const second = await opened(t, factory);
        const page = await second.read(room, 0n, 10);
        assert.equal(page.epoch, appended.epoch);
        assert.deepEqual(
          page.messages.map((m) => m.messageId),
          ["kept"],
        );
        assert.equal((await second.append(room, message("kept"))).duplicate, true);
        assert.deepEqual(
          await second.resumeSession(h1, unique("h2"), Date.now() + WINDOW, record.userId),
          record,
        );
      });
    } else {
      void it("store - a new instance starts new epochs (nothing survives it)", async (t) => {
        const factory = await opts.fresh();
        const room = unique("ephemeral");
        const a = await opened(t, factory);
        const b = await opened(t, factory);
        const epochA = (await a.append(room, message("m"))).epoch;
        const pageB = await b.read(room, 0n, 10);
        assert.notEqual(pageB.epoch, epochA);
        assert.equal(pageB.head, 0n);
      });
    }

    void it("store - several stores opening a fresh backend at once all work", async (t) => {
      const factory = await opts.fresh();
      const stores = await Promise.all(Array.from({ length: 4 }, () => factory(LONG)));
      t.after(() => Promise.all(stores.map((s) => s.close())));
      await Promise.all(stores.map((s) => s.open()));
      const room = unique("fresh");
      const offsets = [];
      for (const [i, s] of stores.entries()) {
        offsets.push((await s.append(room, message(`m-${i}`))).offset);
      }
      assert.deepEqual(offsets, opts.sharedBackend ? range(4) : [1n, 1n, 1n, 1n]);
    });

    void it("store - calls after close reject with StoreError unavailable", async (t) => {
      const store = await opened(t);
      await store.close();
      const rejected = { name: "StoreError", code: StoreErrorCode.Unavailable };
      const room = unique("closed");
      await assert.rejects(store.append(room, message("m")), rejected);
      await assert.rejects(store.read(room, 0n, 1), rejected);
      await assert.rejects(
        store.createSession({ memberId: "m", userId: "", rooms: [] }, "h", Date.now() + WINDOW),
        rejected,
      );
      await assert.rejects(store.resumeSession("h", "h2", Date.now() + WINDOW, ""), rejected);
      await assert.rejects(store.saveSession("m", [], Date.now() + WINDOW), rejected);
      await assert.rejects(store.trim(KEEP_ALL), rejected);
    });

    void it(
      "store - calls reject while the server is down and the same store recovers",
      { skip: opts.server === undefined },
      async (t) => {
        const server = opts.server;
        assert.ok(server !== undefined);
        const store = await opened(t);
        const room = unique("outage");
        const first = await store.append(room, message("before"));
        await server.stop();
        let restarted = false;
        t.after(async () => {
          if (!restarted) await server.start();
        });
        const started = Date.now();
        const down = { name: "StoreError", code: StoreErrorCode.Unavailable };
        await assert.rejects(store.append(room, message("during")), down);
        await assert.rejects(store.read(room, 0n, 10), down);
        assert.ok(Date.now() - started < 30_000, "calls must fail, not hang");
        await server.start();
        restarted = true;
        // Retrying with one messageId is idempotent, like a client's retry.
        const last = await eventually(() => store.append(room, message("after")), {
          timeoutMs: 20_000,
        });
        assert.deepEqual(last, { offset: 2n, duplicate: false, epoch: first.epoch });
        assert.equal((await store.read(room, 0n, 10)).head, 2n);
      },
    );
  });
}
