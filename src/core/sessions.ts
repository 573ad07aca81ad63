// Resume tokens: 256 random bits, handed to the client once, stored only as a
// SHA-256 hash (a stolen database does not yield usable tokens).
import { createHash, randomBytes, randomUUID } from "node:crypto";

export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function newMemberId(): string {
  return randomUUID();
}
