// The two subprotocols. JSON frames are one envelope each; binary frames carry
// one or more length-delimited protobuf envelopes (the server may coalesce).
// The protobuf codec goes through protojson so the client logic sees the same
// objects either way; a client is not a hot path.
import { fromBinary, fromJson, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import { EnvelopeSchema } from "./gen/roomcast/v1/envelope_pb.js";
import type { WireEnvelope } from "./wire.js";

export const Subprotocol = {
  json: "roomcast.v1.json",
  protobuf: "roomcast.v1.proto",
} as const;

export type Protocol = keyof typeof Subprotocol;

export interface Codec {
  readonly subprotocol: string;
  encode(envelope: WireEnvelope): string | Uint8Array;
  /** Every envelope of one received frame. Throws on an undecodable frame. */
  decode(data: unknown): WireEnvelope[];
}

function bytesOf(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError("binary frame expected (set binaryType to arraybuffer)");
}

const jsonCodec: Codec = {
  subprotocol: Subprotocol.json,
  encode: (envelope) => JSON.stringify(envelope),
  decode(data) {
    const text = typeof data === "string" ? data : new TextDecoder().decode(bytesOf(data));
    return [JSON.parse(text) as WireEnvelope];
  },
};

const protobufCodec: Codec = {
  subprotocol: Subprotocol.protobuf,
  encode(envelope) {
    const message = fromJson(EnvelopeSchema, envelope as JsonValue, { ignoreUnknownFields: true });
    return new BinaryWriter().bytes(toBinary(EnvelopeSchema, message)).finish();
  },
  decode(data) {
    const reader = new BinaryReader(bytesOf(data));
    const out: WireEnvelope[] = [];
    while (reader.pos < reader.len) {
      const message = fromBinary(EnvelopeSchema, reader.bytes());
      out.push(toJson(EnvelopeSchema, message, { useProtoFieldName: true }) as WireEnvelope);
    }
    return out;
  },
};

export function codecFor(protocol: Protocol): Codec {
  return protocol === "protobuf" ? protobufCodec : jsonCodec;
}
