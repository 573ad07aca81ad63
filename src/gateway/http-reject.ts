// Refusing an upgrade is an HTTP answer on the raw socket, never an open WebSocket.
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

export function rejectUpgrade(
  socket: Duplex,
  status: number,
  body: string = STATUS_CODES[status] ?? "",
  headers: Readonly<Record<string, string>> = {},
): void {
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
