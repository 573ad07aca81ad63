// Refusing an upgrade is an HTTP answer on the raw socket, never an open
// WebSocket. The body is JSON, `{"error":{"code":"...","message":"..."}}`,
// with a code of docs/errors.md (plus `not_found`).
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
  code: string,
  message: string = STATUS_CODES[status] ?? "",
  headers: Readonly<Record<string, string>> = {},
): void {
  refusals.set(socket, status);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}`,
    "Connection: close",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}
