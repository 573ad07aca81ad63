// A reconnecting client for chaos tests. It joins its rooms and records, per
// connection and per room, every offset it receives (replay and live alike),
// acks what it has, and when the connection is lost resumes on another live
// node with its session token. A publishing peer sends uniquely identified
// messages at a steady pace and retries every unacknowledged one with the same
// message_id until it is acknowledged, as a client honouring the protocol's
// idempotency would (or, with `retry: false`, gives up on a message whose
// attempt was refused or lost with its connection, so some outcomes stay
// unknown). Every attempt and every room frame is recorded for the checker
// (history.ts).
import { setTimeout as delay } from "node:timers/promises";
import { TestClient, type Frame } from "../helpers/client.js";
import type { PublishOp, Stream, StreamEvent } from "./history.js";

export interface RoomRecord {
  /** This connection's room_joined for the room, once it arrived. */
  joined: { readonly offset: number; readonly recovered: boolean } | undefined;
  /** Offsets received in the room on this connection, in arrival order. */
  readonly offsets: number[];
  /** Messages that arrived before this connection's room_joined. */
  early: number;
  /** Every room_joined and message of the room on this connection, in arrival order. */
  readonly events: StreamEvent[];
}

export interface ConnectionRecord {
  readonly peer: string;
  /** The peer's n-th connection, from 0. */
  readonly index: number;
  readonly node: string;
  /** The `session` frame's `resumed`, once it arrived. */
  resumed: boolean | undefined;
  readonly rooms: Map<string, RoomRecord>;
  /** The highest offset the peer had in each room before this connection. */
  readonly before: ReadonlyMap<string, number>;
  /** Error codes received, with their ref. */
  readonly errors: string[];
  /** Publish attempts awaiting their answer on this connection, by message_id, oldest first. */
  readonly pending: Map<string, PublishOp[]>;
}

export interface LiveNode {
  readonly label: string;
  readonly wsUrl: string;
}

export interface PeerOptions {
  readonly name: string;
  readonly rooms: readonly string[];
  /** The nodes up right now; read at every (re)connect. */
  readonly nodes: () => readonly LiveNode[];
  /** The node of the first connection. */
  readonly firstNode?: string;
  /** Messages per second (0: subscribe only). */
  readonly publishRate?: number;
  /**
   * Send a message again (same message_id) until it is acknowledged
   * (default). false: each message is sent once; a refusal or a lost
   * connection ends it, with that outcome.
   */
  readonly retry?: boolean;
}

export interface Acked {
  readonly room: string;
  readonly offset: number;
  readonly duplicate: boolean;
}

interface Outgoing {
  readonly room: string;
  sentAt: number;
}

const ACK_EVERY_MS = 150;
/** An unacknowledged publish is sent again (same message_id) after this long. */
const RESEND_AFTER_MS = 2000;
/** Publishing pauses while this many messages wait for their ack. */
const MAX_IN_FLIGHT = 100;
const CONNECT_TIMEOUT_MS = 3000;
const RECONNECT_PAUSE_MS = 50;

export class ChaosPeer {
  readonly name: string;
  readonly rooms: readonly string[];
  readonly connections: ConnectionRecord[] = [];
  /** message_id → its ack, for every acknowledged message. */
  readonly acked = new Map<string, Acked>();
  /** Acks for a message_id already acknowledged (a resend raced its ack). */
  lateAcks = 0;
  /** Every publish attempt, in sending order, with its outcome once known. */
  readonly ops: PublishOp[] = [];
  readonly #opts: PeerOptions;
  readonly #retry: boolean;
  /** Unacknowledged messages in sending order. */
  readonly #unacked = new Map<string, Outgoing>();
  /** The highest offset received in each room, on any connection, and the room's epoch. */
  readonly #last = new Map<string, number>();
  readonly #epochs = new Map<string, string>();
  #token: string | undefined;
  #client: TestClient | undefined;
  #conn: ConnectionRecord | undefined;
  #stopped = false;
  #publishing: boolean;
  #seq = 0;
  #loop: Promise<void> | undefined;

  constructor(opts: PeerOptions) {
    this.#opts = opts;
    this.name = opts.name;
    this.rooms = opts.rooms;
    this.#publishing = (opts.publishRate ?? 0) > 0;
    this.#retry = opts.retry ?? true;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops sending new messages; unacknowledged ones are still retried. */
  stopPublishing(): void {
    this.#publishing = false;
  }

  get unacked(): number {
    return this.#unacked.size;
  }

  /** Connected, with room_joined for every room on this connection. */
  get ready(): boolean {
    const conn = this.#conn;
    if (conn === undefined || this.#client?.ws.readyState !== 1) return false;
    return this.rooms.every((r) => conn.rooms.get(r)?.joined !== undefined);
  }

  /** The highest offset of `room` received on the current connection. */
  current(room: string): number {
    return Math.max(0, ...(this.#conn?.rooms.get(room)?.offsets ?? []));
  }

  /** The node of the current connection, if connected. */
  get node(): string | undefined {
    return this.#client?.ws.readyState === 1 ? this.#conn?.node : undefined;
  }

  /**
   * Sends `n` messages at once (round-robin over the rooms) and returns their
   * ids; used to have publishes in flight on a node when it is killed.
   */
  burst(n: number): string[] {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const room = this.rooms[this.#seq % this.rooms.length]!;
      const id = `${this.name}-${this.#seq++}`;
      this.#unacked.set(id, { room, sentAt: 0 });
      ids.push(id);
    }
    this.#flush();
    return ids;
  }

  /** Publishes one message, retried like the others until `acked` has it. */
  publishOne(room: string, messageId: string): void {
    this.#unacked.set(messageId, { room, sentAt: 0 });
    this.#flush();
  }

  /**
   * Every room stream of every connection, for the checker. `settled`: the
   * run has settled, so the current connection's streams must be at the head.
   */
  streams(settled: boolean): Stream[] {
    const open = this.#client?.ws.readyState === 1;
    return this.connections.flatMap((conn) =>
      [...conn.rooms].map(([room, rec]) => ({
        peer: conn.peer,
        connection: conn.index,
        node: conn.node,
        room,
        resumed: conn.resumed,
        had: conn.before.get(room),
        events: rec.events,
        settled: settled && open && conn === this.#conn,
      })),
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#client?.ws.terminate();
    await this.#loop;
  }

  async #run(): Promise<void> {
    let previous = this.#opts.firstNode;
    let first = true;
    while (!this.#stopped) {
      const nodes = this.#opts.nodes();
      // The first connection goes where it is told; a reconnect goes elsewhere when it can.
      const candidates = first
        ? nodes.filter((n) => n.label === previous)
        : nodes.filter((n) => n.label !== previous);
      const pool = candidates.length > 0 ? candidates : nodes;
      const node = pool[Math.floor(Math.random() * pool.length)];
      if (node === undefined) {
        await delay(RECONNECT_PAUSE_MS);
        continue;
      }
      let client: TestClient;
      try {
        client = await withTimeout(
          TestClient.connect(node.wsUrl, this.#token === undefined ? {} : { session: this.#token }),
          CONNECT_TIMEOUT_MS,
        );
      } catch {
        // Refused, 503 while starting, or killed mid-handshake: try another node.
        previous = node.label;
        await delay(RECONNECT_PAUSE_MS);
        continue;
      }
      first = false;
      previous = node.label;
      if (this.#stopped) {
        client.ws.terminate();
        break;
      }
      await this.#serve(client, node.label);
    }
  }

  async #serve(client: TestClient, node: string): Promise<void> {
    const before = new Map<string, number>();
    for (const [room, last] of this.#last) before.set(room, last);
    const conn: ConnectionRecord = {
      peer: this.name,
      index: this.connections.length,
      node,
      resumed: undefined,
      rooms: new Map(
        this.rooms.map((r) => [r, { joined: undefined, offsets: [], early: 0, events: [] }]),
      ),
      before,
      errors: [],
      pending: new Map(),
    };
    this.connections.push(conn);
    this.#client = client;
    this.#conn = conn;
    let cursor = 0;
    const drain = () => {
      while (cursor < client.frames.length) this.#onFrame(client, conn, client.frames[cursor++]!);
    };
    client.ws.on("message", drain);
    drain();
    const acked = new Map<string, number>();
    const ackTimer = setInterval(() => {
      for (const [room, rec] of conn.rooms) {
        const top = Math.max(0, ...rec.offsets);
        if (top > (acked.get(room) ?? 0) && rec.joined !== undefined) {
          acked.set(room, top);
          client.send({ ack: { room_id: room, offset: String(top) } });
        }
      }
    }, ACK_EVERY_MS);
    const rate = this.#opts.publishRate ?? 0;
    const publishTimer =
      rate > 0 ? setInterval(() => this.#publishNext(), Math.max(1, 1000 / rate)) : undefined;
    const resendTimer = setInterval(() => this.#flush(), RESEND_AFTER_MS / 4);
    await client.closed;
    clearInterval(ackTimer);
    clearInterval(publishTimer);
    clearInterval(resendTimer);
    drain();
    if (this.#conn === conn) this.#conn = undefined;
    // Attempts never answered: their outcome is unknown.
    for (const [id, ops] of conn.pending) {
      for (const op of ops) op.outcome = { type: "unknown" };
      if (!this.#retry) this.#unacked.delete(id);
    }
    conn.pending.clear();
  }

  /** The oldest attempt of `id` on `conn` still awaiting its answer. */
  #answered(conn: ConnectionRecord, id: string): PublishOp | undefined {
    const ops = conn.pending.get(id);
    const op = ops?.shift();
    if (ops?.length === 0) conn.pending.delete(id);
    return op;
  }

  #onFrame(client: TestClient, conn: ConnectionRecord, frame: Frame): void {
    const session = frame["session"];
    const joined = frame["room_joined"];
    const message = frame["message"];
    const ack = frame["ack"];
    const error = frame["error"];
    if (session !== undefined) {
      this.#token = String(session["token"]);
      conn.resumed = session["resumed"] === true;
      const kept = new Set((session["rooms"] as string[] | undefined) ?? []);
      // A fresh session (the token was spent by a connection that died before
      // its `session` frame arrived) joins again, from where the peer stands.
      for (const room of this.rooms) if (!kept.has(room)) this.#join(client, room);
    } else if (joined !== undefined) {
      const rec = conn.rooms.get(String(joined["room_id"]));
      const offset = Number(joined["offset"]);
      const recovered = joined["recovered"] === true;
      const epoch = String(joined["epoch"]);
      rec?.events.push({ kind: "joined", offset, recovered, epoch });
      if (rec !== undefined && rec.joined === undefined) {
        rec.joined = { offset, recovered };
        const room = String(joined["room_id"]);
        if (this.#epochs.get(room) !== epoch) this.#last.delete(room);
        this.#epochs.set(room, epoch);
        // Live from `offset` without a replay: the peer stands there now.
        if (!recovered && offset > (this.#last.get(room) ?? 0)) this.#last.set(room, offset);
        if (this.ready) this.#flush(true);
      }
    } else if (message !== undefined) {
      const room = String(message["target"]);
      const rec = conn.rooms.get(room);
      if (rec === undefined) return;
      const offset = Number(message["offset"]);
      rec.offsets.push(offset);
      rec.events.push({ kind: "message", offset, messageId: String(message["message_id"]) });
      if (rec.joined === undefined) rec.early++;
      if (offset > (this.#last.get(room) ?? 0)) this.#last.set(room, offset);
    } else if (ack !== undefined) {
      const id = String(ack["message_id"]);
      const op = this.#answered(conn, id);
      if (op !== undefined) {
        op.outcome = {
          type: "acked",
          offset: Number(ack["offset"]),
          duplicate: ack["duplicate"] === true,
        };
      }
      if (this.#unacked.delete(id)) {
        this.acked.set(id, {
          room: String(ack["room_id"]),
          offset: Number(ack["offset"]),
          duplicate: ack["duplicate"] === true,
        });
      } else {
        this.lateAcks++;
      }
    } else if (error !== undefined) {
      const code = String(error["code"]);
      const ref = String(error["ref"]);
      conn.errors.push(`${code}:${ref}`);
      const op = this.#answered(conn, ref);
      if (op !== undefined) {
        op.outcome = { type: "refused", code };
        if (!this.#retry) this.#unacked.delete(ref);
      }
      // A join refused while the store was busy is asked again; publishes are
      // retried by the resend timer.
      if (this.rooms.includes(ref) && conn.rooms.get(ref)?.joined === undefined) {
        // A position the room no longer knows (it cannot happen in one epoch):
        // join from the head rather than stall.
        if (code === "offset_out_of_range") this.#last.delete(ref);
        const wait = Number(error["retry_after_ms"] ?? 100);
        setTimeout(() => {
          if (client.ws.readyState === 1) this.#join(client, ref);
        }, wait).unref();
      }
    }
  }

  #join(client: TestClient, room: string): void {
    const last = this.#last.get(room);
    const epoch = this.#epochs.get(room) ?? "";
    client.send({
      join_room:
        last === undefined
          ? { room_id: room }
          : { room_id: room, since: { offset: String(last), epoch } },
    });
  }

  #publishNext(): void {
    if (!this.#publishing || !this.ready || this.#unacked.size >= MAX_IN_FLIGHT) return;
    const room = this.rooms[this.#seq % this.rooms.length]!;
    const id = `${this.name}-${this.#seq++}`;
    this.#unacked.set(id, { room, sentAt: 0 });
    this.#flush();
  }

  /**
   * Sends unacknowledged messages never sent or sent too long ago (all of them
   * when `all`); without retries, only those never sent.
   */
  #flush(all = false): void {
    const client = this.#client;
    const conn = this.#conn;
    if (!this.ready || client === undefined || conn === undefined) return;
    const now = Date.now();
    for (const [id, out] of this.#unacked) {
      if (out.sentAt !== 0 && (!this.#retry || (!all && now - out.sentAt < RESEND_AFTER_MS))) {
        continue;
      }
      out.sentAt = now;
      const op: PublishOp = {
        peer: this.name,
        connection: conn.index,
        room: out.room,
        messageId: id,
        outcome: undefined,
      };
      this.ops.push(op);
      const pending = conn.pending.get(id);
      if (pending === undefined) conn.pending.set(id, [op]);
      else pending.push(op);
      client.send({ message: { target: out.room, content: id, message_id: id } });
    }
  }
}

function withTimeout(p: Promise<TestClient>, ms: number): Promise<TestClient> {
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
  });
  // A connection that opens after the timeout is closed, not leaked.
  p.then((c) => timedOut && c.ws.terminate()).catch(() => undefined);
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
