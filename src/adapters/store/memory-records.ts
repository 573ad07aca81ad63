// The memory store's per-room records, kept outside the V8 heap: a room's
// history and its dedup keys are bytes in fixed-size chunks taken from one
// pool of large slabs.
//
// Why: a busy node holds hundreds of thousands of stored messages and dedup
// keys (up to HISTORY_SIZE per room, a DEDUP_WINDOW of publishes). As
// JavaScript objects each was three or four heap objects (the record, its
// id, time and content strings, a map entry), all promoted out of the young
// generation and all marked again by every major collection; on one core
// that marking stalled deliveries for 100-230 ms (docs/benchmarks.md), and
// the stalls grew with the history. Bytes in a Buffer are neither copied by
// scavenges nor traced by marking.
//
// Why a pool: V8 counts array-buffer memory when it decides to collect, and
// an old-generation ArrayBuffer is freed only by a major collection. Buffers
// grown by doubling left their old copies behind as garbage, which made a
// major collection every few seconds (measured: every 2-4 s in the
// many-rooms benchmark). Chunks are reused instead, so the array-buffer
// memory only grows while the history does.
//
// Strings are stored as UTF-8. A record or key with a string that is not
// well-formed UTF-16 (a lone surrogate, which UTF-8 cannot carry) is stored
// as UTF-16 instead, so every string reads back exactly as it was written.
import { randomInt } from "node:crypto";
import type { NewMessage, StoredMessage } from "../../ports/store.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** `String.prototype.isWellFormed` (Node 20 has it; TypeScript's ES2023 lib does not). */
interface MaybeWellFormed {
  isWellFormed(): boolean;
}
const wellFormed = (s: string): boolean => (s as unknown as MaybeWellFormed).isWellFormed();

/** Bytes one string may take at most: UTF-8 needs up to 3 per UTF-16 unit, UTF-16 2. */
const maxBytes = (s: string): number => 3 * s.length;

// ---------------------------------------------------------------------------
// The chunk pool

export const CHUNK_BYTES = 4096;
const SLAB_BYTES = 1 << 20;
const CHUNKS_PER_SLAB = SLAB_BYTES / CHUNK_BYTES;
/** Free chunks kept beyond which a wholly free slab is let go. */
const KEEP_FREE = 2 * CHUNKS_PER_SLAB;

const free: Buffer[] = [];
/** Free chunks per slab. */
const freeInSlab = new Map<ArrayBufferLike, number>();

/** A chunk of at least `bytes`: a pooled one, or one of its own when larger. */
function takeChunk(bytes: number): Buffer {
  if (bytes > CHUNK_BYTES) return Buffer.allocUnsafeSlow(bytes);
  if (free.length === 0) {
    const slab = new ArrayBuffer(SLAB_BYTES);
    for (let at = 0; at < SLAB_BYTES; at += CHUNK_BYTES)
      free.push(Buffer.from(slab, at, CHUNK_BYTES));
    freeInSlab.set(slab, CHUNKS_PER_SLAB);
  }
  const chunk = free.pop()!;
  freeInSlab.set(chunk.buffer, freeInSlab.get(chunk.buffer)! - 1);
  return chunk;
}

function giveChunk(chunk: Buffer): void {
  const slab = chunk.buffer;
  const n = freeInSlab.get(slab);
  if (n === undefined) return; // a chunk of its own: the collector frees it
  free.push(chunk);
  freeInSlab.set(slab, n + 1);
  if (n + 1 === CHUNKS_PER_SLAB && free.length > KEEP_FREE) {
    // A wholly free slab, and enough free besides: give its memory back.
    freeInSlab.delete(slab);
    let kept = 0;
    for (const c of free) if (c.buffer !== slab) free[kept++] = c;
    free.length = kept;
  }
}

/** The pool's state, for tests: slabs held and chunks free. */
export function chunkPool(): { slabs: number; free: number } {
  return { slabs: freeInSlab.size, free: free.length };
}

/**
 * A queue of variable-size entries in chunks, oldest first. An entry never
 * spans chunks: one that does not fit in the rest of the last chunk starts
 * the next. Entries are addressed by chunk sequence number × CHUNK_BYTES +
 * byte position (a chunk larger than CHUNK_BYTES holds one entry, at 0);
 * sequence numbers only grow, so a dropped chunk's entries are told apart
 * from live ones. Every entry starts with its own length (u32).
 */
class ChunkQueue {
  #chunks: Buffer[] = [];
  /** Bytes used in each chunk. */
  #ends: number[] = [];
  /** Number (counted since the queue began) of each chunk's first entry. */
  #firsts: number[] = [];
  /** Index in #chunks of the oldest chunk held; those before it are gone. */
  #head = 0;
  /** Sequence number of #chunks[0]. */
  #base = 0;
  /** Position of the oldest live entry in the head chunk. */
  #frontAt = 0;
  /** Numbers of the oldest live entry and of the next one. */
  #front = 0;
  #next = 0;

  get empty(): boolean {
    return this.#head === this.#chunks.length;
  }

  /** Live entries. */
  get size(): number {
    return this.#next - this.#front;
  }

  /** Room for an entry of up to `bytes`: returns [chunk, position]; commit with `added`. */
  reserve(bytes: number): [Buffer, number] {
    const last = this.#chunks.length - 1;
    if (last >= this.#head && this.#ends[last]! + bytes <= this.#chunks[last]!.length) {
      return [this.#chunks[last]!, this.#ends[last]!];
    }
    if (this.#head * 2 > this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#ends.splice(0, this.#head);
      this.#firsts.splice(0, this.#head);
      this.#base += this.#head;
      this.#head = 0;
    }
    const chunk = takeChunk(bytes);
    this.#chunks.push(chunk);
    this.#ends.push(0);
    this.#firsts.push(this.#next);
    if (this.#chunks.length - 1 === this.#head) this.#frontAt = 0;
    return [chunk, 0];
  }

  /** Commits the entry just written at the reserved place, `bytes` long. */
  added(bytes: number): void {
    const last = this.#ends.length - 1;
    this.#ends[last] = this.#ends[last]! + bytes;
    this.#next++;
  }

  /** The newest entry's address (after `added`). */
  lastAddress(at: number): number {
    return (this.#base + this.#chunks.length - 1) * CHUNK_BYTES + at;
  }

  /** The oldest live entry as [chunk, position], or undefined. */
  front(): [Buffer, number] | undefined {
    return this.empty ? undefined : [this.#chunks[this.#head]!, this.#frontAt];
  }

  /** Drops the oldest live entry. */
  shift(): void {
    const chunk = this.#chunks[this.#head]!;
    this.#frontAt += chunk.readUInt32LE(this.#frontAt);
    this.#front++;
    if (this.#frontAt < this.#ends[this.#head]!) return;
    // The head chunk is used up: give it back (the last one too, when empty).
    giveChunk(chunk);
    this.#head++;
    this.#frontAt = 0;
    if (this.empty) this.clear();
  }

  clear(): void {
    for (let i = this.#head; i < this.#chunks.length; i++) giveChunk(this.#chunks[i]!);
    this.#base += this.#chunks.length;
    this.#chunks = [];
    this.#ends = [];
    this.#firsts = [];
    this.#head = 0;
    this.#frontAt = 0;
    this.#front = this.#next;
  }

  /** The chunk and position of a live address, or undefined if it was dropped. */
  at(address: number): [Buffer, number] | undefined {
    const seq = Math.floor(address / CHUNK_BYTES);
    const at = address - seq * CHUNK_BYTES;
    const i = seq - this.#base;
    if (i < this.#head || i >= this.#chunks.length) return undefined;
    if (i === this.#head && at < this.#frontAt) return undefined;
    return [this.#chunks[i]!, at];
  }

  /** Calls fn for every live entry, oldest first. */
  forEach(fn: (chunk: Buffer, at: number, address: number) => void): void {
    for (let i = this.#head; i < this.#chunks.length; i++) {
      const chunk = this.#chunks[i]!;
      const end = this.#ends[i]!;
      for (let at = i === this.#head ? this.#frontAt : 0; at < end; at += chunk.readUInt32LE(at)) {
        fn(chunk, at, (this.#base + i) * CHUNK_BYTES + at);
      }
    }
  }

  /** The i-th live entry (0 = oldest): found by its chunk's first number, then a walk. */
  nth(i: number): [Buffer, number] {
    const index = this.#front + i;
    let lo = this.#head;
    let hi = this.#chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#firsts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    const chunk = this.#chunks[lo]!;
    let at = 0;
    for (let n = this.#firsts[lo]!; n < index; n++) at += chunk.readUInt32LE(at);
    return [chunk, at];
  }
}

function put(b: Buffer, at: number, s: string, enc: "utf8" | "utf16le"): number {
  const n = b.write(s, at + 4, enc);
  b.writeUInt32LE(n, at);
  return at + 4 + n;
}

// ---------------------------------------------------------------------------
// History

const TRACEPARENT = 1;
const TRACESTATE = 2;
const USER_ID = 4;
/** The record's strings are UTF-16, not UTF-8 (one of them is not well-formed). */
const WIDE = 8;
/** length u32, storedAt f64, flags u8 */
const RECORD_HEAD = 13;

/**
 * One room's history, oldest first: record i of `length` live ones. A
 * record is [length u32][storedAt f64][flags u8] then each string as
 * [bytes u32][bytes]: messageId, senderId, sentAt, content, and the optional
 * traceparent, tracestate and userId when flagged.
 */
export class HistoryLog {
  readonly #queue = new ChunkQueue();

  /** Live records. */
  get length(): number {
    return this.#queue.size;
  }

  append(m: NewMessage, storedAt: number): void {
    let flags = 0;
    let wide = !(
      wellFormed(m.messageId) &&
      wellFormed(m.senderId) &&
      wellFormed(m.sentAt) &&
      wellFormed(m.content)
    );
    let chars = m.messageId.length + m.senderId.length + m.sentAt.length + m.content.length;
    let fields = 4;
    if (m.traceparent !== undefined) {
      flags |= TRACEPARENT;
      chars += m.traceparent.length;
      fields++;
      wide ||= !wellFormed(m.traceparent);
    }
    if (m.tracestate !== undefined) {
      flags |= TRACESTATE;
      chars += m.tracestate.length;
      fields++;
      wide ||= !wellFormed(m.tracestate);
    }
    if (m.userId !== undefined) {
      flags |= USER_ID;
      chars += m.userId.length;
      fields++;
      wide ||= !wellFormed(m.userId);
    }
    if (wide) flags |= WIDE;
    const enc = wide ? "utf16le" : "utf8";
    let bound = RECORD_HEAD + 4 * fields + 3 * chars;
    // A record too large for a pooled chunk gets a chunk of its exact size.
    if (bound > CHUNK_BYTES) bound = exactSize(m, enc, fields);
    const [b, start] = this.#queue.reserve(bound);
    b.writeDoubleLE(storedAt, start + 4);
    b[start + 12] = flags;
    let at = start + RECORD_HEAD;
    at = put(b, at, m.messageId, enc);
    at = put(b, at, m.senderId, enc);
    at = put(b, at, m.sentAt, enc);
    at = put(b, at, m.content, enc);
    if (m.traceparent !== undefined) at = put(b, at, m.traceparent, enc);
    if (m.tracestate !== undefined) at = put(b, at, m.tracestate, enc);
    if (m.userId !== undefined) at = put(b, at, m.userId, enc);
    b.writeUInt32LE(at - start, start);
    this.#queue.added(at - start);
  }

  /** Forgets every record and gives the chunks back (a closed store). */
  clear(): void {
    this.#queue.clear();
  }

  /** When the i-th live record (0 = oldest) was stored. */
  storedAt(i: number): number {
    const [b, at] = this.#record(i);
    return b.readDoubleLE(at + 4);
  }

  /** Forgets the n oldest live records. */
  drop(n: number): void {
    for (let k = Math.min(n, this.length); k > 0; k--) this.#queue.shift();
  }

  /** The i-th live record (0 = oldest), in the port's shape. */
  message(i: number, room: string, offset: bigint): StoredMessage {
    const [b, start] = this.#record(i);
    const flags = b[start + 12]!;
    const enc = flags & WIDE ? "utf16le" : "utf8";
    let at = start + RECORD_HEAD;
    const field = (): string => {
      const n = b.readUInt32LE(at);
      const s = b.toString(enc, at + 4, at + 4 + n);
      at += 4 + n;
      return s;
    };
    const m: Mutable<StoredMessage> = {
      messageId: field(),
      senderId: field(),
      sentAt: field(),
      content: field(),
      room,
      offset,
    };
    if (flags & TRACEPARENT) m.traceparent = field();
    if (flags & TRACESTATE) m.tracestate = field();
    if (flags & USER_ID) m.userId = field();
    return m;
  }

  #record(i: number): [Buffer, number] {
    if (i < 0 || i >= this.length) throw new RangeError(`no record ${i} of ${this.length}`);
    return this.#queue.nth(i);
  }
}

function exactSize(m: NewMessage, enc: "utf8" | "utf16le", fields: number): number {
  let n = RECORD_HEAD + 4 * fields;
  for (const s of [m.messageId, m.senderId, m.sentAt, m.content]) n += Buffer.byteLength(s, enc);
  for (const s of [m.traceparent, m.tracestate, m.userId]) {
    if (s !== undefined) n += Buffer.byteLength(s, enc);
  }
  return n;
}

// ---------------------------------------------------------------------------
// Dedup keys

/** Keyed per process, so no one can aim ids at one probe sequence. */
const SEED = randomInt(0x7fffffff);

/** FNV-1a over the UTF-16 units, seeded. */
function hashOf(id: string): number {
  let h = (0x811c9dc5 ^ SEED) | 0;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** length u32, hash u32, expiry f64, offset f64, wide u8, id bytes */
const KEY_HEAD = 25;

let scratch = Buffer.allocUnsafeSlow(512);

/** Writes id into the scratch buffer as it would be stored; returns its byte length. */
function encode(id: string, wide: boolean): number {
  if (scratch.length < maxBytes(id)) scratch = Buffer.allocUnsafeSlow(maxBytes(id) * 2);
  return scratch.write(id, 0, wide ? "utf16le" : "utf8");
}

/**
 * A room's dedup keys: message id → offset, with each key's expiry. Keys
 * are added with now + the window, so they expire in the order added: they
 * sit in a chunk queue, and expiring drops from its front, O(expired).
 * Lookups go through an open-addressing table (linear probing) of entry
 * addresses: a slot whose entry expired is skipped by lookups and reused by
 * inserts, and the table is rebuilt from the live entries when it fills.
 * Offsets stay far below 2^53, so they are kept as plain numbers.
 */
export class DedupKeys {
  readonly #hash: (id: string) => number;
  readonly #queue = new ChunkQueue();
  /** Entry address + 1 per slot; 0 is an empty slot. */
  #slots = new Float64Array(16);
  /** Slots not empty (live or expired). */
  #filled = 0;

  /** `hash` is for tests, which make every id collide. */
  constructor(hash: (id: string) => number = hashOf) {
    this.#hash = hash;
  }

  /** Live keys (for tests). */
  get size(): number {
    return this.#queue.size;
  }

  /** Forgets every key and gives the chunks back (a closed store). */
  clear(): void {
    this.#queue.clear();
    this.#slots = new Float64Array(16);
    this.#filled = 0;
  }

  offset(id: string): bigint | undefined {
    const hash = this.#hash(id) >>> 0;
    const mask = this.#slots.length - 1;
    // Encoded only once a hash matches: a miss (the usual case) compares no bytes.
    let wide = 0;
    let encoded = -1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = this.#slots[i]!;
      if (slot === 0) return undefined;
      const place = this.#queue.at(slot - 1);
      if (place === undefined) continue;
      const [b, at] = place;
      if (b.readUInt32LE(at + 4) !== hash) continue;
      if (encoded < 0) {
        wide = wellFormed(id) ? 0 : 1;
        encoded = encode(id, wide === 1);
      }
      const length = b.readUInt32LE(at) - KEY_HEAD;
      if (
        length === encoded &&
        b[at + 24] === wide &&
        b.compare(scratch, 0, encoded, at + KEY_HEAD, at + KEY_HEAD + encoded) === 0
      ) {
        return BigInt(b.readDoubleLE(at + 16));
      }
    }
  }

  /** Adds a key that is not there (the caller looked it up first). */
  add(id: string, offset: bigint, expiresAt: number): void {
    const hash = this.#hash(id) >>> 0;
    const wide = !wellFormed(id);
    const enc = wide ? "utf16le" : "utf8";
    let bound = KEY_HEAD + maxBytes(id);
    if (bound > CHUNK_BYTES) bound = KEY_HEAD + Buffer.byteLength(id, enc);
    const [b, at] = this.#queue.reserve(bound);
    const n = b.write(id, at + KEY_HEAD, enc);
    b.writeUInt32LE(KEY_HEAD + n, at);
    b.writeUInt32LE(hash, at + 4);
    b.writeDoubleLE(expiresAt, at + 8);
    b.writeDoubleLE(Number(offset), at + 16);
    b[at + 24] = wide ? 1 : 0;
    this.#queue.added(KEY_HEAD + n);
    this.#place(this.#queue.lastAddress(at), hash);
    if (this.#filled * 2 > this.#slots.length) this.#rebuild();
  }

  expire(now: number): void {
    for (let f = this.#queue.front(); f !== undefined; f = this.#queue.front()) {
      const [b, at] = f;
      if (b.readDoubleLE(at + 8) > now) return;
      this.#queue.shift();
    }
    // All expired: start the table afresh (no dead slots to skip).
    if (this.#filled > 0) {
      this.#slots = new Float64Array(16);
      this.#filled = 0;
    }
  }

  /** Puts an entry in the first empty or expired slot of its probe sequence. */
  #place(address: number, hash: number): void {
    const mask = this.#slots.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = this.#slots[i]!;
      if (slot === 0) this.#filled++;
      else if (this.#queue.at(slot - 1) !== undefined) continue;
      this.#slots[i] = address + 1;
      return;
    }
  }

  /** A table at most a quarter full of the live entries, without dead slots. */
  #rebuild(): void {
    let size = 16;
    while (this.#queue.size * 4 > size) size *= 2;
    this.#slots = new Float64Array(size);
    this.#filled = 0;
    this.#queue.forEach((b, at, address) => this.#place(address, b.readUInt32LE(at + 4)));
  }
}
