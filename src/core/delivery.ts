// One room message on its way to local members: decoded once, encoded at most
// once per codec, and the same bytes sent to every member ("encode once, send
// many").
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { delimit, envelope, jsonCodec, type Codec } from "../protocol/codec.js";
import {
  EnvelopeSchema,
  MessageSchema,
  RoomJoinedSchema,
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
    const payload = Delivery.fromRoomPayload(bytes);
    return payload instanceof Delivery ? payload : undefined;
  }

  /**
   * Decodes what a room's broker subject carries: a stored message, or a
   * head announcement (see broker-fanout.ts) as the bigint offset it names.
   * Undefined for anything else, which nodes ignore (so a node never trips
   * on a payload kind a newer node sends).
   */
  static fromRoomPayload(bytes: Uint8Array): Delivery | bigint | undefined {
    const env = fromBinary(EnvelopeSchema, bytes);
    if (env.kind.case === "message") {
      return env.kind.value.offset === undefined ? undefined : new Delivery(env.kind.value, bytes);
    }
    if (env.kind.case === "roomJoined") return env.kind.value.offset;
    return undefined;
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
    return (this.#json ??= jsonCodec.encode(envelope({ case: "message", value: this.message })));
  }
}

/**
 * A head announcement: "this room's stored history reaches `offset`", a
 * `room_joined` envelope on the room's broker subject (a few bytes; nodes
 * without the room ignore it, older nodes drop it as a non-message).
 */
export function headAnnouncement(roomId: string, offset: bigint): Uint8Array {
  return toBinary(
    EnvelopeSchema,
    create(EnvelopeSchema, {
      kind: { case: "roomJoined", value: create(RoomJoinedSchema, { roomId, offset }) },
    }),
  );
}
