// Presence: who is connected and joined in a room right now, on every node.
//
// Each node knows its own members exactly and learns the others' through the
// room's broker channel (the one its messages use), with payloads that start
// with a 0x00 byte (never the first byte of a protobuf Envelope: field 0 does
// not exist) followed by small JSON:
//   hello  — "I opened this room": nodes whose members watch presence answer
//            with a snapshot, so this node learns there is interest.
//   sync   — "send me your members now": every node with members answers with
//            a snapshot (a node whose first watcher joins, or an API query).
//   snap   — one node's full member list for the room; sent in answer, and
//            every `heartbeatMs` while anyone watches the room. It replaces
//            what receivers held for that node, so a lost delta heals.
//   delta  — members that joined or left this node, batched over `coalesceMs`.
// Every payload says whether its sender has watchers (`w`): that is how nodes
// learn a room is watched. While nobody watches a room, nodes send nothing
// about it but the one `hello` when they open it; members who did not ask for
// presence get no frames at all.
//
// What a node heard from another expires `expiryMs` (3 heartbeats) after the
// last payload from it: a node killed without a goodbye has its members
// reported as left within 3 heartbeats plus one sweep (default 8 s → ≤ 25 s).
// A clean leave is a delta, so it reaches watchers within about two coalescing
// windows (≈ 200 ms).
//
// Watchers get diffs batched over `coalesceMs`, encoded once per codec and
// shared by every watcher that saw the same state (a watcher that joined
// inside the window gets its own, filtered, diff). A member present on two
// nodes at once (a takeover in flight) counts once: presence is the union by
// member id.
import { create } from "@bufbuild/protobuf";
import { envelope, type Codec } from "../protocol/codec.js";
import {
  PresenceDiffSchema,
  PresenceMemberSchema,
  PresenceStateSchema,
  type PresenceMember,
} from "../protocol/gen/roomcast/v1/envelope_pb.js";
import type { Logger } from "../observability/logging.js";
import type { Broker, Subscription } from "../ports/broker.js";
import type { Outlet } from "./outlet.js";

export interface PresenceOptions {
  /** Snapshot period while a room is watched; other nodes' entries expire after 3 of them. */
  readonly heartbeatMs: number;
  /** Changes are batched over this window into one diff. */
  readonly coalesceMs: number;
  /** How long a node that knew nothing of a room waits for other nodes' snapshots. */
  readonly syncWaitMs: number;
}

export const defaultPresenceOptions: PresenceOptions = {
  heartbeatMs: 8000,
  coalesceMs: 100,
  syncWaitMs: 300,
};

/** One present member; `userId` is '' for anonymous connections. */
export interface PresentMember {
  readonly memberId: string;
  readonly userId: string;
}

type Pair = [memberId: string, userId: string];

type Wire =
  | { readonly t: "hello" | "sync"; readonly n: string; readonly w: boolean }
  | { readonly t: "snap"; readonly n: string; readonly w: boolean; readonly m: Pair[] }
  | {
      readonly t: "delta";
      readonly n: string;
      readonly w: boolean;
      readonly j: Pair[];
      readonly l: string[];
    };

/** True for a presence payload on a room channel (not a message Envelope). */
export function isPresencePayload(payload: Uint8Array): boolean {
  return payload.length > 0 && payload[0] === 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeWire(msg: Wire): Uint8Array {
  const json = encoder.encode(JSON.stringify(msg));
  const out = new Uint8Array(json.length + 1);
  out.set(json, 1);
  return out;
}

function decodeWire(payload: Uint8Array): Wire | undefined {
  try {
    const v = JSON.parse(decoder.decode(payload.subarray(1))) as Record<string, unknown>;
    if (typeof v["n"] !== "string" || typeof v["w"] !== "boolean") return undefined;
    const pairs = (x: unknown): x is Pair[] =>
      Array.isArray(x) &&
      x.every(
        (p) =>
          Array.isArray(p) &&
          p.length === 2 &&
          typeof p[0] === "string" &&
          typeof p[1] === "string",
      );
    switch (v["t"]) {
      case "hello":
      case "sync":
        return { t: v["t"], n: v["n"], w: v["w"] };
      case "snap":
        return pairs(v["m"]) ? { t: "snap", n: v["n"], w: v["w"], m: v["m"] } : undefined;
      case "delta": {
        const l = v["l"];
        if (!pairs(v["j"]) || !Array.isArray(l) || !l.every((x) => typeof x === "string"))
          return undefined;
        return { t: "delta", n: v["n"], w: v["w"], j: v["j"], l };
      }
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

interface Watcher {
  readonly outlet: Outlet;
  /** The room's version when it got its presence_state: earlier changes are in it. */
  readonly since: number;
}

interface Change {
  readonly v: number;
  readonly memberId: string;
  readonly userId: string;
  readonly joined: boolean;
}

interface RemoteNode {
  readonly members: Map<string, string>;
  expiresAt: number;
}

class PresenceRoom {
  readonly id: string;
  /** This node's members: member id → user id. */
  readonly local = new Map<string, string>();
  readonly watchers = new Map<string, Watcher>();
  readonly remote = new Map<string, RemoteNode>();
  /** The union over this node and the others, with how many sources hold each member. */
  readonly union = new Map<string, { userId: string; refs: number }>();
  version = 0;
  /** Changes not yet sent to watchers (recorded only while there are watchers). */
  changes: Change[] = [];
  /** This node's changes not yet sent to the other nodes. */
  readonly outJoined = new Map<string, string>();
  readonly outLeft = new Set<string>();
  timer: NodeJS.Timeout | undefined;
  /** Joins and queries in progress. */
  holds = 0;
  subscription: Promise<Subscription | undefined> | undefined;
  /** Resolves once other nodes had `syncWaitMs` to answer a sync; reset when watchers leave. */
  synced: Promise<void> | undefined;
  remoteInterestUntil = 0;

  constructor(id: string) {
    this.id = id;
  }

  get idle(): boolean {
    return this.local.size === 0 && this.holds === 0 && this.watchers.size === 0;
  }
}

export class Presence {
  readonly #broker: Broker;
  readonly #nodeId: string;
  readonly #opts: PresenceOptions;
  readonly #expiryMs: number;
  readonly #log: Logger;
  readonly #distributed: boolean;
  readonly #rooms = new Map<string, PresenceRoom>();
  readonly #heartbeat: NodeJS.Timeout | undefined;
  readonly #sweep: NodeJS.Timeout | undefined;

  constructor(broker: Broker, nodeId: string, opts: PresenceOptions, log: Logger) {
    this.#broker = broker;
    this.#nodeId = nodeId;
    this.#opts = opts;
    this.#expiryMs = 3 * opts.heartbeatMs;
    this.#log = log;
    this.#distributed = broker.capabilities.distributed;
    if (this.#distributed) {
      this.#heartbeat = setInterval(() => this.#beat(), opts.heartbeatMs);
      this.#heartbeat.unref();
      this.#sweep = setInterval(() => this.#expire(), Math.min(1000, opts.heartbeatMs));
      this.#sweep.unref();
    }
  }

  /**
   * Makes this node's view of the room complete before a watcher joins (or an
   * API query reads it): the first time, asks every node for its members and
   * waits `syncWaitMs` for the answers. Pair with `release`.
   */
  async prepare(roomId: string, watch: boolean): Promise<void> {
    const room = this.#room(roomId);
    room.holds++;
    if (!this.#distributed) return;
    if (room.synced === undefined || !watch) {
      // Without watchers, nobody kept what other nodes said up to date (they
      // send nothing about an unwatched room): start over from their answers.
      if (room.watchers.size === 0) this.#forgetRemote(room);
      const synced = (async () => {
        await room.subscription;
        this.#send(room, { t: "sync", n: this.#nodeId, w: watch || room.watchers.size > 0 });
        await new Promise((r) => setTimeout(r, this.#opts.syncWaitMs));
      })();
      if (watch) room.synced = synced;
      await synced;
      return;
    }
    await room.synced;
  }

  release(roomId: string): void {
    const room = this.#rooms.get(roomId);
    if (room === undefined) return;
    room.holds--;
    this.#maybeClose(room);
  }

  /**
   * A member joined the room on this node (its room_joined is out). With an
   * outlet it watches: it gets presence_state now and diffs from then on.
   */
  enter(roomId: string, memberId: string, userId: string, watcher?: Outlet): void {
    const room = this.#room(roomId);
    if (!room.local.has(memberId)) {
      room.local.set(memberId, userId);
      this.#add(room, memberId, userId);
      room.outLeft.delete(memberId);
      room.outJoined.set(memberId, userId);
      this.#schedule(room);
    }
    if (watcher !== undefined) this.watch(roomId, memberId, watcher);
  }

  /** A member already in the room starts watching (a second join with presence). */
  watch(roomId: string, memberId: string, outlet: Outlet): void {
    const room = this.#room(roomId);
    const first = room.watchers.size === 0;
    room.watchers.set(memberId, { outlet, since: room.version });
    const members = [...room.union].map(([id, u]) => member(id, u.userId));
    outlet.send(
      outlet.codec.encode(
        envelope({
          case: "presenceState",
          value: create(PresenceStateSchema, { roomId, members }),
        }),
      ),
    );
    // Nodes that opened the room while nobody watched it sent nothing: tell them.
    if (first && this.#distributed) this.#snapshot(room);
  }

  /** The member left the room on this node (leave, socket closed, takeover). Idempotent. */
  exit(roomId: string, memberId: string): void {
    const room = this.#rooms.get(roomId);
    if (room === undefined) return;
    room.watchers.delete(memberId);
    if (room.watchers.size === 0) room.synced = undefined;
    if (!room.local.delete(memberId)) return;
    this.#remove(room, memberId);
    if (!room.outJoined.delete(memberId)) room.outLeft.add(memberId);
    this.#schedule(room);
  }

  /** Every member present in the room now, on every node (for the server API). */
  async query(roomId: string): Promise<PresentMember[]> {
    const room = this.#room(roomId);
    const warm = room.synced !== undefined && room.watchers.size > 0;
    if (warm) {
      await room.synced;
    } else {
      await this.prepare(roomId, false);
      this.release(roomId);
    }
    return [...room.union].map(([memberId, u]) => ({ memberId, userId: u.userId }));
  }

  /**
   * Stops. A node shutting down (drain) says goodbye: an empty snapshot for
   * every watched room it has members in, so watchers elsewhere see them
   * leave at once rather than after the expiry.
   */
  close(): void {
    clearInterval(this.#heartbeat);
    clearInterval(this.#sweep);
    for (const room of this.#rooms.values()) {
      if (this.#distributed && room.local.size > 0 && this.#interested(room)) {
        this.#send(room, { t: "snap", n: this.#nodeId, w: false, m: [] });
      }
      clearTimeout(room.timer);
      void room.subscription?.then((s) => s?.unsubscribe()).catch(() => undefined);
    }
    this.#rooms.clear();
  }

  // ---- the union and the watchers' diffs -----------------------------------

  #room(roomId: string): PresenceRoom {
    let room = this.#rooms.get(roomId);
    if (room === undefined) {
      const created = new PresenceRoom(roomId);
      room = created;
      this.#rooms.set(roomId, room);
      if (this.#distributed) {
        created.subscription = this.#broker
          .subscribe(roomId, (payload) => {
            if (isPresencePayload(payload)) this.#receive(created, payload);
          })
          .then(
            (s) => {
              this.#send(created, { t: "hello", n: this.#nodeId, w: created.watchers.size > 0 });
              return s;
            },
            (err: unknown) => {
              this.#log.warn({ err, room: roomId }, "presence subscription failed");
              return undefined;
            },
          );
      }
    }
    return room;
  }

  #add(room: PresenceRoom, memberId: string, userId: string): void {
    const u = room.union.get(memberId);
    if (u !== undefined) {
      u.refs++;
      return;
    }
    room.union.set(memberId, { userId, refs: 1 });
    this.#changed(room, memberId, userId, true);
  }

  #remove(room: PresenceRoom, memberId: string): void {
    const u = room.union.get(memberId);
    if (u === undefined) return;
    if (--u.refs > 0) return;
    room.union.delete(memberId);
    this.#changed(room, memberId, u.userId, false);
  }

  #changed(room: PresenceRoom, memberId: string, userId: string, joined: boolean): void {
    room.version++;
    if (room.watchers.size === 0) return;
    room.changes.push({ v: room.version, memberId, userId, joined });
    this.#schedule(room);
  }

  #schedule(room: PresenceRoom): void {
    room.timer ??= setTimeout(() => this.#flush(room), this.#opts.coalesceMs);
  }

  #flush(room: PresenceRoom): void {
    room.timer = undefined;
    if (room.outJoined.size > 0 || room.outLeft.size > 0) {
      if (this.#distributed && this.#interested(room)) {
        this.#send(room, {
          t: "delta",
          n: this.#nodeId,
          w: room.watchers.size > 0,
          j: [...room.outJoined],
          l: [...room.outLeft],
        });
      }
      room.outJoined.clear();
      room.outLeft.clear();
    }
    const changes = room.changes;
    room.changes = [];
    if (changes.length > 0 && room.watchers.size > 0) this.#tellWatchers(room, changes);
    this.#maybeClose(room);
  }

  #tellWatchers(room: PresenceRoom, changes: readonly Change[]): void {
    const first = changes[0]!.v;
    // Watchers that saw none of these changes share one diff, encoded once per codec.
    let shared: ReturnType<typeof netDiff> | undefined;
    const frames = new Map<Codec, Uint8Array>();
    for (const w of room.watchers.values()) {
      let frame: Uint8Array | undefined;
      if (w.since < first) {
        shared ??= netDiff(changes, 0);
        if (shared.joined.length + shared.left.length === 0) continue;
        frame = frames.get(w.outlet.codec);
        if (frame === undefined) {
          frame = encodeDiff(w.outlet.codec, room.id, shared);
          frames.set(w.outlet.codec, frame);
        }
      } else {
        const own = netDiff(changes, w.since);
        if (own.joined.length + own.left.length === 0) continue;
        frame = encodeDiff(w.outlet.codec, room.id, own);
      }
      w.outlet.send(frame);
    }
  }

  #maybeClose(room: PresenceRoom): void {
    if (!room.idle || room.timer !== undefined || this.#rooms.get(room.id) !== room) return;
    this.#rooms.delete(room.id);
    void room.subscription
      ?.then((s) => s?.unsubscribe())
      .catch((err: unknown) =>
        this.#log.debug({ err, room: room.id }, "presence unsubscribe failed"),
      );
  }

  // ---- other nodes ------------------------------------------------------------

  #interested(room: PresenceRoom): boolean {
    return room.watchers.size > 0 || Date.now() < room.remoteInterestUntil;
  }

  #send(room: PresenceRoom, msg: Wire): void {
    this.#broker
      .publish(room.id, encodeWire(msg))
      .catch((err: unknown) =>
        this.#log.debug(
          { err, room: room.id },
          "presence publish failed; the next heartbeat heals it",
        ),
      );
  }

  #snapshot(room: PresenceRoom): void {
    this.#send(room, {
      t: "snap",
      n: this.#nodeId,
      w: room.watchers.size > 0,
      m: [...room.local],
    });
  }

  #receive(room: PresenceRoom, payload: Uint8Array): void {
    const msg = decodeWire(payload);
    if (msg === undefined) {
      this.#log.debug({ room: room.id }, "undecodable presence payload dropped");
      return;
    }
    if (msg.n === this.#nodeId || this.#rooms.get(room.id) !== room) return;
    if (msg.w) {
      const was = this.#interested(room);
      room.remoteInterestUntil = Date.now() + this.#expiryMs;
      // Newly watched: what this node sent while nobody watched was nothing.
      if (!was && room.local.size > 0 && msg.t !== "sync") this.#snapshot(room);
    }
    switch (msg.t) {
      case "hello":
        if (room.watchers.size > 0) this.#snapshot(room);
        return;
      case "sync":
        if (room.local.size > 0 || room.watchers.size > 0) this.#snapshot(room);
        return;
      case "snap": {
        const node = this.#node(room, msg.n);
        const next = new Map(msg.m);
        for (const id of [...node.members.keys()]) {
          if (next.has(id)) continue;
          node.members.delete(id);
          this.#remove(room, id);
        }
        for (const [id, userId] of next) {
          if (node.members.has(id)) continue;
          node.members.set(id, userId);
          this.#add(room, id, userId);
        }
        if (node.members.size === 0) room.remote.delete(msg.n);
        return;
      }
      case "delta": {
        const node = this.#node(room, msg.n);
        for (const id of msg.l) if (node.members.delete(id)) this.#remove(room, id);
        for (const [id, userId] of msg.j) {
          if (node.members.has(id)) continue;
          node.members.set(id, userId);
          this.#add(room, id, userId);
        }
        if (node.members.size === 0) room.remote.delete(msg.n);
        return;
      }
    }
  }

  #node(room: PresenceRoom, nodeId: string): RemoteNode {
    let node = room.remote.get(nodeId);
    if (node === undefined) {
      node = { members: new Map(), expiresAt: 0 };
      room.remote.set(nodeId, node);
    }
    node.expiresAt = Date.now() + this.#expiryMs;
    return node;
  }

  /** Every heartbeat: a snapshot of each watched room this node has members in. */
  #beat(): void {
    for (const room of this.#rooms.values()) {
      if (room.local.size > 0 && this.#interested(room)) this.#snapshot(room);
    }
  }

  #forgetRemote(room: PresenceRoom): void {
    for (const node of room.remote.values()) {
      for (const id of node.members.keys()) this.#remove(room, id);
    }
    room.remote.clear();
  }

  /** Drops what nodes that went silent had (a crash: no goodbye). */
  #expire(): void {
    const now = Date.now();
    for (const room of this.#rooms.values()) {
      for (const [nodeId, node] of room.remote) {
        if (node.expiresAt > now) continue;
        room.remote.delete(nodeId);
        for (const id of node.members.keys()) this.#remove(room, id);
      }
    }
  }
}

function member(memberId: string, userId: string): PresenceMember {
  return create(PresenceMemberSchema, userId === "" ? { memberId } : { memberId, userId });
}

/** The net effect of the changes after version `after`: who is new, who is gone. */
function netDiff(
  changes: readonly Change[],
  after: number,
): { joined: PresenceMember[]; left: PresenceMember[] } {
  const first = new Map<string, Change>();
  const last = new Map<string, Change>();
  for (const c of changes) {
    if (c.v <= after) continue;
    if (!first.has(c.memberId)) first.set(c.memberId, c);
    last.set(c.memberId, c);
  }
  const joined: PresenceMember[] = [];
  const left: PresenceMember[] = [];
  for (const [id, f] of first) {
    const l = last.get(id)!;
    // Joined then left (or left then back) inside one batch: no net change.
    if (f.joined !== l.joined) continue;
    (l.joined ? joined : left).push(member(id, l.userId));
  }
  return { joined, left };
}

function encodeDiff(
  codec: Codec,
  roomId: string,
  diff: { joined: PresenceMember[]; left: PresenceMember[] },
): Uint8Array {
  return codec.encode(
    envelope({
      case: "presenceDiff",
      value: create(PresenceDiffSchema, { roomId, joined: diff.joined, left: diff.left }),
    }),
  );
}
