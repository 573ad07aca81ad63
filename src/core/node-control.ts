// Messages every node exchanges on the broker's control channel. JSON: rare,
// small, and readable with `nats sub` / `redis-cli subscribe` when debugging.
import { randomUUID } from "node:crypto";
import type { CloseCode } from "../protocol/errors.js";
import type { Logger } from "../observability/logging.js";
import type { Broker, Subscription } from "../ports/broker.js";

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

/** What a control message acts on: this node's sessions. */
export interface ControlTarget {
  takenOverElsewhere(memberId: string): void;
  closeUser(userId: string, code: CloseCode): void;
}

/**
 * The node's end of the control channel: it tells other nodes when this one
 * resumed a session (so whoever still holds it closes it) and asks every node
 * to close a user's sockets; it applies what other nodes ask.
 */
export class NodeControl {
  /** Names this node on the control channel. */
  readonly nodeId = randomUUID();
  readonly #broker: Broker;
  readonly #target: ControlTarget;
  readonly #log: Logger;
  #subscription: Subscription | undefined;

  constructor(broker: Broker, target: ControlTarget, log: Logger) {
    this.#broker = broker;
    this.#target = target;
    this.#log = log;
  }

  async start(): Promise<void> {
    this.#subscription = await this.#broker.subscribeControl((payload) => {
      const msg = decodeControl(payload);
      if (msg === undefined) {
        this.#log.warn("unknown control message dropped");
        return;
      }
      this.#apply(msg);
    });
  }

  #apply(msg: ControlMessage): void {
    switch (msg.type) {
      case "takeover":
        if (msg.from !== this.nodeId) this.#target.takenOverElsewhere(msg.memberId);
        return;
      case "close_user":
        this.#target.closeUser(msg.userId, msg.code as CloseCode);
        return;
    }
  }

  /** A session was resumed here: another node may still hold it. Never rejects. */
  async announceTakeover(memberId: string): Promise<void> {
    if (!this.#broker.capabilities.distributed) return;
    await this.#broker
      .publishControl(encodeControl({ type: "takeover", memberId, from: this.nodeId }))
      .catch((err: unknown) => this.#log.warn({ err }, "takeover notice not sent"));
  }

  /** Closes every socket of a user on every node (this one included, through the broker). */
  async closeUser(userId: string, code: CloseCode): Promise<void> {
    await this.#broker.publishControl(encodeControl({ type: "close_user", userId, code }));
  }

  async close(): Promise<void> {
    await this.#subscription?.unsubscribe().catch(() => undefined);
  }
}
