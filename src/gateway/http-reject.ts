// Refusing an upgrade is an HTTP answer on the raw socket, never an open WebSocket.
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/** The status each refused upgrade was answered with, for the upgrade's trace span. */
const refusals = new WeakMap<Duplex, number>();

/** What an upgrade was answered: its refusal status, 101 once upgraded, undefined if the socket died first. */
export function upgradeStatus(socket: Duplex): number | undefined {
  return refusals.get(socket) ?? (socket.destroyed ? undefined : 101);
}

export function rejectUpgrade(
  socket: Duplex,
  status: number,
  body: string = STATUS_CODES[status] ?? "",
  headers: Readonly<Record<string, string>> = {},
): void {
  refusals.set(socket, status);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    "Connection: close",
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}
