// Client-generated message ids: 128 random bits, hex. getRandomValues works in
// every browser context (randomUUID needs a secure one) and in Node ≥ 20.

export function messageId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
