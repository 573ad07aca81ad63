// One room message on its way to local members: decoded once, encoded at most
// once per codec, and the same bytes sent to every member ("encode once, send
// many").
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { delimit, jsonCodec, type Codec } from "../protocol/codec.js";
import {
  EnvelopeSchema,
  MessageSchema,
  type Message,
} from "../protocol/gen/roomcast/v1/envelope_pb.js";
import type { StoredMessage } from "../ports/store.js";

export class Delivery {
  readonly message: Message;
  readonly offset: bigint;
  #envelopeBytes: Uint8Array | undefined;
  #json: Uint8Array | undefined;
  #proto: Uint8Array | undefined;

  private constructor(message: Message, envelopeBytes?: Uint8Array) {
    this.message = message;
    this.offset = message.offset ?? 0n;
    this.#envelopeBytes = envelopeBytes;
  }

  static fromMessage(message: Message): Delivery {
    return new Delivery(message);
  }

  /** Decodes a broker payload (a binary Envelope holding a message); undefined when it is not one. */
  static fromEnvelopeBytes(bytes: Uint8Array): Delivery | undefined {
    const env = fromBinary(EnvelopeSchema, bytes);
    if (env.kind.case !== "message" || env.kind.value.offset === undefined) return undefined;
    return new Delivery(env.kind.value, bytes);
  }

  static fromStored(m: StoredMessage): Delivery {
    const message = create(MessageSchema, {
      target: m.room,
      content: m.content,
      messageId: m.messageId,
      sentAt: m.sentAt,
      senderId: m.senderId,
      offset: m.offset,
    });
    if (m.traceparent !== undefined) message.traceparent = m.traceparent;
    if (m.tracestate !== undefined) message.tracestate = m.tracestate;
    if (m.userId !== undefined) message.userId = m.userId;
    return new Delivery(message);
  }

  /** The binary Envelope, as the broker carries it between nodes. */
  envelopeBytes(): Uint8Array {
    return (this.#envelopeBytes ??= toBinary(
      EnvelopeSchema,
      create(EnvelopeSchema, { kind: { case: "message", value: this.message } }),
    ));
  }

  /** The frame payload for one codec, computed once and shared. */
  encoded(codec: Codec): Uint8Array {
    if (codec.binary) return (this.#proto ??= delimit(this.envelopeBytes()));
    return (this.#json ??= jsonCodec.encode(
      create(EnvelopeSchema, { kind: { case: "message", value: this.message } }),
    ));
  }
}
