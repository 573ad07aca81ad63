// Reconnect policy: exponential backoff with full jitter (a random delay in
// [0, min(max, initial × 2^attempt)), so a fleet of clients cut off together
// does not come back together), and what each close code means for a client
// (PROTOCOL.md, "Close codes").

export interface BackoffOptions {
  /** The cap of the first attempt's delay. Default 500 ms. */
  readonly initialDelayMs: number;
  /** The largest delay. Default 30 s. */
  readonly maxDelayMs: number;
}

export const defaultBackoff: BackoffOptions = { initialDelayMs: 500, maxDelayMs: 30_000 };

/** The delay before reconnect attempt `attempt` (0 for the first). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = defaultBackoff,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * cap);
}

export const CloseAction = {
  /** Reconnect with backoff and resume the session. */
  Reconnect: "reconnect",
  /** The token expired (4501): get a new one through getToken, then reconnect. */
  NewToken: "new-token",
  /** Do not reconnect automatically. */
  Stop: "stop",
} as const;
export type CloseAction = (typeof CloseAction)[keyof typeof CloseAction];

/** Close codes that a reconnect cannot fix: the client sent something the server refuses. */
const clientFault = new Set([1002, 1003, 1007, 1008, 1009, 1010]);

export function closeAction(code: number): CloseAction {
  if (code === 4501) return CloseAction.NewToken;
  if (code >= 4500 && code <= 4999) return CloseAction.Stop;
  if (clientFault.has(code)) return CloseAction.Stop;
  // 4000–4499, 1001 going away, 1012 restart, 1013 try again later, and the
  // network failures (1005, 1006) and 1011.
  return CloseAction.Reconnect;
}
