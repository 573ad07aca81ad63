// Messages every node exchanges on the broker's control channel. JSON: rare,
// small, and readable with `nats sub` / `redis-cli subscribe` when debugging.
export type ControlMessage =
  /** A session was resumed on node `from`: whoever still holds it closes it (4001). */
  | { readonly type: "takeover"; readonly memberId: string; readonly from: string }
  /** Close every socket of `userId` on every node with `code`. */
  | { readonly type: "close_user"; readonly userId: string; readonly code: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeControl(msg: ControlMessage): Uint8Array {
  return encoder.encode(JSON.stringify(msg));
}

/** Undefined for anything that is not a control message this version knows. */
export function decodeControl(payload: Uint8Array): ControlMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(payload));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    v["type"] === "takeover" &&
    typeof v["memberId"] === "string" &&
    typeof v["from"] === "string"
  ) {
    return { type: "takeover", memberId: v["memberId"], from: v["from"] };
  }
  if (
    v["type"] === "close_user" &&
    typeof v["userId"] === "string" &&
    typeof v["code"] === "number"
  ) {
    return { type: "close_user", userId: v["userId"], code: v["code"] };
  }
  return undefined;
}
