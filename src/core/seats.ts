// A member's joined rooms, by room id.
//
// Most connections are in one room, so the first seat is held in a field and
// a Map is made only for a second one: a Map holding one seat is about 180
// bytes of heap, held by every idle connection (docs/benchmarks.md, "The
// heap per idle connection, by kind"). Iteration keeps the order of
// joining, as a Map's would: the field only takes a seat while the Map is
// empty, so it always holds the oldest.
import type { Seat } from "./room.js";

export class Seats {
  #first: Seat | undefined;
  #rest: Map<string, Seat> | undefined;

  get size(): number {
    return (this.#first === undefined ? 0 : 1) + (this.#rest?.size ?? 0);
  }

  get(roomId: string): Seat | undefined {
    const first = this.#first;
    if (first !== undefined && first.room.id === roomId) return first;
    return this.#rest?.get(roomId);
  }

  has(roomId: string): boolean {
    return this.get(roomId) !== undefined;
  }

  /** Seats `seat` under its room's id, in place of any seat there already. */
  set(seat: Seat): void {
    const roomId = seat.room.id;
    const first = this.#first;
    if (first !== undefined && first.room.id === roomId) {
      this.#first = seat;
    } else if (first === undefined && (this.#rest === undefined || this.#rest.size === 0)) {
      this.#first = seat;
    } else {
      (this.#rest ??= new Map()).set(roomId, seat);
    }
  }

  delete(roomId: string): boolean {
    const first = this.#first;
    if (first !== undefined && first.room.id === roomId) {
      this.#first = undefined;
      return true;
    }
    return this.#rest?.delete(roomId) ?? false;
  }

  clear(): void {
    this.#first = undefined;
    this.#rest = undefined;
  }

  *values(): IterableIterator<Seat> {
    if (this.#first !== undefined) yield this.#first;
    if (this.#rest !== undefined) yield* this.#rest.values();
  }

  /** The room ids, a copy: the caller may leave rooms while it walks them. */
  ids(): string[] {
    return Array.from(this.values(), (seat) => seat.room.id);
  }
}
