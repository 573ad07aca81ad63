// Codecs turn frames into envelopes and back; the subprotocol picks one.
// Pure: no I/O. Decoding failures throw DecodeError (wire code bad_request).
import { create, fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  EnvelopeSchema,
  type Ack,
  type Envelope,
  type Message,
} from "./gen/roomcast/v1/envelope_pb.js";

export const Subprotocol = {
  Json: "roomcast.v1.json",
  Proto: "roomcast.v1.proto",
} as const;
export type Subprotocol = (typeof Subprotocol)[keyof typeof Subprotocol];

export const supportedSubprotocols: readonly Subprotocol[] = [Subprotocol.Json, Subprotocol.Proto];

export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

export interface Codec {
  readonly subprotocol: Subprotocol;
  /** Frames of this codec are binary WebSocket frames. */
  readonly binary: boolean;
  /** Decodes one frame into the envelopes it carries, in order. */
  decode(frame: Uint8Array): Envelope[];
  /**
   * Encodes one envelope as a frame payload. For the binary codec the result
   * is length-delimited, so payloads concatenate into one valid frame.
   */
  encode(envelope: Envelope): Uint8Array;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** protojson: proto field names out, both spellings in, unknown fields ignored, uint64 as strings. */
export const jsonCodec: Codec = {
  subprotocol: Subprotocol.Json,
  binary: false,
  decode(frame) {
    let text: string;
    try {
      text = utf8.decode(frame);
    } catch (err) {
      throw new DecodeError("frame is not valid UTF-8", { cause: err });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DecodeError("frame is not valid JSON", { cause: err });
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new DecodeError("frame must be a JSON object holding one envelope");
    }
    try {
      return [fromJson(EnvelopeSchema, value as JsonValue, { ignoreUnknownFields: true })];
    } catch (err) {
      throw new DecodeError(err instanceof Error ? err.message : "invalid envelope", {
        cause: err,
      });
    }
  },
  encode(envelope) {
    return utf8Encoder.encode(encodeJsonText(envelope));
  },
};

/** The JSON text of one envelope (implicit defaults such as `false` are written out). */
export function encodeJsonText(envelope: Envelope): string {
  // The two kinds on the publish path are built directly, in the field order
  // and with the presence rules protojson uses (test/unit/codec.test.ts
  // checks they match it); reflection costs more than the rest of a publish.
  switch (envelope.kind.case) {
    case "message":
      return JSON.stringify({ message: messageJson(envelope.kind.value) });
    case "ack":
      return JSON.stringify({ ack: ackJson(envelope.kind.value) });
    default:
      return JSON.stringify(
        toJson(EnvelopeSchema, envelope, { useProtoFieldName: true, alwaysEmitImplicit: true }),
      );
  }
}

function messageJson(m: Message): Record<string, string> {
  const out: Record<string, string> = { target: m.target, content: m.content };
  if (m.messageId !== undefined) out["message_id"] = m.messageId;
  if (m.sentAt !== undefined) out["sent_at"] = m.sentAt;
  if (m.senderId !== undefined) out["sender_id"] = m.senderId;
  if (m.offset !== undefined) out["offset"] = m.offset.toString();
  if (m.traceparent !== undefined) out["traceparent"] = m.traceparent;
  if (m.tracestate !== undefined) out["tracestate"] = m.tracestate;
  return out;
}

function ackJson(a: Ack): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = { room_id: a.roomId };
  if (a.messageId !== undefined) out["message_id"] = a.messageId;
  out["offset"] = a.offset.toString();
  if (a.duplicate !== undefined) out["duplicate"] = a.duplicate;
  return out;
}

/** Varint length-delimited protobuf envelopes, one or more per binary frame. */
export const protoCodec: Codec = {
  subprotocol: Subprotocol.Proto,
  binary: true,
  decode(frame) {
    const reader = new BinaryReader(frame);
    const out: Envelope[] = [];
    try {
      while (reader.pos < reader.len) {
        out.push(fromBinary(EnvelopeSchema, reader.bytes()));
      }
    } catch (err) {
      throw new DecodeError("frame is not a sequence of length-delimited envelopes", {
        cause: err,
      });
    }
    if (out.length === 0) throw new DecodeError("empty frame");
    return out;
  },
  encode(envelope) {
    return delimit(toBinary(EnvelopeSchema, envelope));
  },
};

/** Prefixes already-encoded envelope bytes with their varint length. */
export function delimit(envelopeBytes: Uint8Array): Uint8Array {
  return new BinaryWriter().bytes(envelopeBytes).finish();
}

export function codecFor(subprotocol: Subprotocol): Codec {
  return subprotocol === Subprotocol.Proto ? protoCodec : jsonCodec;
}

/**
 * Picks the subprotocol from the client's offer (in the client's order).
 * None offered → JSON; only unsupported ones → undefined (HTTP 400).
 */
export function negotiate(offered: readonly string[]): Subprotocol | undefined {
  if (offered.length === 0) return Subprotocol.Json;
  return offered.find((p): p is Subprotocol =>
    (supportedSubprotocols as readonly string[]).includes(p),
  );
}

export function envelope(kind: Envelope["kind"]): Envelope {
  return create(EnvelopeSchema, { kind });
}
