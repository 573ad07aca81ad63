// Node's socket error codes that mean "the server is not reachable right
// now" (refused, reset, timed out, no route, no such name — or, for a Unix
// socket path, no server behind it): a store maps them to `unavailable`.
export const SOCKET_UNAVAILABLE: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
