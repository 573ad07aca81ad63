// The publish timestamp travels inside the message content: "@<hrtime ns>|xxxx…"
// padded to a fixed size, so every server carries the same bytes and the receiver
// reads the stamp without parsing the whole JSON frame.
const MARKER = Buffer.from('"content":"@');
const AT = 0x40; // "@"

/** Monotonic nanoseconds, shared by every thread of the generator process. */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

export function makeContent(stampNs: number, bytes: number): string {
  const head = `@${stampNs}|`;
  return head.length >= bytes ? head : head + "x".repeat(bytes - head.length);
}

function digitsAt(text: { length: number }, at: (i: number) => number, start: number): number {
  let value = 0;
  let i = start;
  for (; i < text.length; i++) {
    const c = at(i);
    if (c < 0x30 || c > 0x39) break;
    value = value * 10 + (c - 0x30);
  }
  return i === start ? Number.NaN : value;
}

/** The stamp inside a JSON frame's content, or NaN when there is none. */
export function stampInFrame(frame: Buffer): number {
  const at = frame.indexOf(MARKER);
  if (at < 0) return Number.NaN;
  return digitsAt(frame, (i) => frame[i] ?? 0, at + MARKER.length);
}

/** The stamp at the start of a content string, or NaN. */
export function stampInContent(content: string): number {
  if (content.charCodeAt(0) !== AT) return Number.NaN;
  return digitsAt(content, (i) => content.charCodeAt(i), 1);
}
