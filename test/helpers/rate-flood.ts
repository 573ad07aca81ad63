// Flooding helpers shared by the rate limit tests: a publisher sends `n`
// messages with known ids as fast as it can, then the test collects one
// answer (ack or error) per message.
import { SignJWT } from "jose";
import type { TestClient } from "./client.js";
import { eventually } from "./eventually.js";

export interface FloodResult {
  readonly acked: string[];
  readonly refused: { ref: string; code: string; retryAfterMs: number }[];
}

/** Sends n publishes into `room` (ids `<prefix>-<i>`) and waits for an answer to each. */
export async function flood(
  c: TestClient,
  room: string,
  n: number,
  prefix: string,
): Promise<FloodResult> {
  for (let i = 0; i < n; i++) {
    c.send({ message: { target: room, content: `${prefix}-${i}`, message_id: `${prefix}-${i}` } });
  }
  const mine = (id: unknown) => String(id).startsWith(`${prefix}-`);
  const result = (): FloodResult => ({
    acked: c
      .all("ack")
      .map((a) => String(a["message_id"]))
      .filter(mine),
    refused: c
      .all("error")
      .filter((e) => mine(e["ref"]))
      .map((e) => ({
        ref: String(e["ref"]),
        code: String(e["code"]),
        retryAfterMs: Number(e["retry_after_ms"] ?? 0),
      })),
  });
  return eventually(
    () => {
      const r = result();
      return r.acked.length + r.refused.length >= n && r;
    },
    { timeoutMs: 20_000 },
  );
}

export const JWT_SECRET = "rate-limit-tests-secret-of-enough-length";

/** An HS256 token for `sub`, valid for an hour. */
export async function tokenFor(sub: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(JWT_SECRET));
}
