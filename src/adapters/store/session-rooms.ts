// Session room lists are kept as JSON text in SQL stores; offsets as strings
// because JSON numbers lose precision past 2^53.
import type { SessionRoom } from "../../ports/store.js";

export function encodeRooms(rooms: readonly SessionRoom[]): string {
  return JSON.stringify(
    rooms.map((r) => ({
      room: r.room,
      offset: r.offset.toString(),
      epoch: r.epoch,
      ...(r.presence === true && { presence: true }),
    })),
  );
}

export function decodeRooms(text: string): SessionRoom[] {
  const raw = JSON.parse(text) as {
    room: string;
    offset: string;
    epoch: string;
    presence?: boolean;
  }[];
  return raw.map((r) => ({
    room: r.room,
    offset: BigInt(r.offset),
    epoch: r.epoch,
    ...(r.presence === true && { presence: true }),
  }));
}
