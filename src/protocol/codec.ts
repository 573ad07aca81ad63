// Codecs turn frames into envelopes and back; the subprotocol picks one.
// Pure: no I/O. Decoding failures throw DecodeError (wire code bad_request).
// The input rules (docs/protocol.md, "Input rules") are enforced here, except
// field values, which validate.ts checks.
import {
  ScalarType,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type JsonValue,
} from "@bufbuild/protobuf";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  EnvelopeSchema,
  MessageSchema,
  type Ack,
  type Envelope,
  type Message,
} from "./gen/roomcast/v1/envelope_pb.js";
import { findBadUint64 } from "./json-int64.js";

export const Subprotocol = {
  Json: "roomcast.v1.json",
  Proto: "roomcast.v1.proto",
} as const;
export type Subprotocol = (typeof Subprotocol)[keyof typeof Subprotocol];

export const supportedSubprotocols: readonly Subprotocol[] = [Subprotocol.Json, Subprotocol.Proto];

/**
 * Envelopes one binary frame may carry. A 64 KiB frame of empty envelopes
 * would otherwise be 65,536 requests, each earning an `error` frame.
 */
export const MAX_ENVELOPES_PER_FRAME = 8192;

/**
 * Nesting levels (objects and arrays) a JSON frame may have. A publish needs
 * 2; the limit is checked on the bytes before JSON.parse, so a deeply nested
 * frame costs one pass over it and never reaches a recursive walk.
 */
export const MAX_JSON_DEPTH = 32;

/** The frame, or one envelope in it, is malformed: wire code `bad_request`. */
export class DecodeError extends Error {
  override readonly name: string = "DecodeError";
}

/**
 * The frame carries more than MAX_ENVELOPES_PER_FRAME envelopes. No client
 * does that by mistake, so the consumer treats it as a policy violation
 * (close 1008) rather than as one more bad frame.
 */
export class FrameTooLargeError extends DecodeError {
  override readonly name: string = "FrameTooLargeError";
}

export interface Codec {
  readonly subprotocol: Subprotocol;
  /** Frames of this codec are binary WebSocket frames. */
  readonly binary: boolean;
  /**
   * Decodes one frame into the envelopes it carries, in order. Throws
   * DecodeError when the frame as a whole is malformed (FrameTooLargeError
   * when it carries too many envelopes). Envelopes are decoded as they are
   * iterated: a DecodeError thrown by the iteration means that envelope is
   * malformed and the rest of the frame is lost, while the ones before it
   * were good. Work is linear in the frame's size.
   */
  decode(frame: Uint8Array): Iterable<Envelope>;
  /**
   * Encodes one envelope as a frame payload. For the binary codec the result
   * is length-delimited, so payloads concatenate into one valid frame.
   */
  encode(envelope: Envelope): Uint8Array;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** protojson: proto field names out, both spellings in, unknown fields ignored, uint64 as strings. */
export const jsonCodec: Codec = {
  subprotocol: Subprotocol.Json,
  binary: false,
  decode(frame) {
    if (jsonDepthExceeds(frame, MAX_JSON_DEPTH)) {
      throw new DecodeError(`frame is nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
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
    const publish = plainPublish(value);
    if (publish !== undefined) return [publish];
    // fromJson itself refuses a field given in both spellings and two kinds.
    const bad = findBadUint64(EnvelopeSchema, value);
    if (bad !== undefined) {
      throw new DecodeError(
        `${bad.parent.typeName}.${bad.name} must be a string of decimal digits that fits uint64, or a safe non-negative integer`,
      );
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
    // Buffer.from takes small strings from Node's pool: cheaper than TextEncoder.
    return Buffer.from(encodeJsonText(envelope), "utf8");
  },
};

/** The Message fields a client's publish may carry as strings, by both spellings. */
const MESSAGE_STRING_FIELDS: ReadonlyMap<string, keyof Message> = new Map(
  MessageSchema.fields
    .filter((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING)
    .flatMap((f) => [
      [f.name, f.localName as keyof Message],
      [f.jsonName, f.localName as keyof Message],
    ]),
);

/**
 * The envelope of the common publish, `{"message":{...}}` with nothing but
 * string fields, built directly: fromJson's reflection (and the uint64 walk)
 * cost more than the rest of decoding such a frame. Undefined for anything
 * else, including any frame fromJson would refuse (a field in both
 * spellings, a null, a number), which then takes the general path: the
 * result is always the one fromJson gives (test/unit/codec.test.ts).
 */
export function plainPublish(value: object): Envelope | undefined {
  let fields: unknown;
  for (const key in value) {
    if (key !== "message") return undefined;
    fields = (value as Record<string, unknown>)[key];
  }
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) return undefined;
  const message: Message = { $typeName: "roomcast.v1.Message", target: "", content: "" };
  let seen = 0;
  for (const key in fields) {
    const field = MESSAGE_STRING_FIELDS.get(key);
    const v = (fields as Record<string, unknown>)[key];
    if (field === undefined || typeof v !== "string") return undefined;
    const bit = FIELD_BIT[field]!;
    if ((seen & bit) !== 0) return undefined;
    seen |= bit;
    (message as Record<string, unknown>)[field] = v;
  }
  return { $typeName: "roomcast.v1.Envelope", kind: { case: "message", value: message } };
}

/** One bit per Message field, to see one given in both spellings. */
const FIELD_BIT: Readonly<Record<string, number>> = Object.fromEntries(
  MessageSchema.fields.map((f, i) => [f.localName, 1 << i]),
);

/**
 * True when the JSON bytes open more than `max` objects/arrays at once.
 * Brackets inside strings do not count; bytes of multi-byte UTF-8 characters
 * are >= 0x80 and never look like ASCII punctuation. Malformed JSON is left to
 * JSON.parse.
 */
export function jsonDepthExceeds(bytes: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) {
      inString = true;
    } else if (b === 0x7b || b === 0x5b) {
      if (++depth > max) return true;
    } else if (b === 0x7d || b === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** The JSON text of one envelope (implicit defaults such as `false` are written out). */
export function encodeJsonText(envelope: Envelope): string {
  // The two kinds on the publish path are built directly, in the field order
  // and with the presence rules protojson uses (test/unit/codec.test.ts
  // checks they match it); reflection costs more than the rest of a publish.
  switch (envelope.kind.case) {
    case "message":
      return messageText(envelope.kind.value);
    case "ack":
      return ackText(envelope.kind.value);
    default:
      return JSON.stringify(
        toJson(EnvelopeSchema, envelope, { useProtoFieldName: true, alwaysEmitImplicit: true }),
      );
  }
}

/** A message as the JSON subprotocol writes it (also the server API's history items). */
export function messageJson(m: Message): Record<string, string> {
  const out: Record<string, string> = { target: m.target, content: m.content };
  if (m.messageId !== undefined) out["message_id"] = m.messageId;
  if (m.sentAt !== undefined) out["sent_at"] = m.sentAt;
  if (m.senderId !== undefined) out["sender_id"] = m.senderId;
  if (m.offset !== undefined) out["offset"] = m.offset.toString();
  if (m.traceparent !== undefined) out["traceparent"] = m.traceparent;
  if (m.tracestate !== undefined) out["tracestate"] = m.tracestate;
  if (m.userId !== undefined) out["user_id"] = m.userId;
  return out;
}

/** `{"message":{...}}`, written as JSON.stringify({ message: messageJson(m) }) would write it. */
function messageText(m: Message): string {
  let s = `{"message":{"target":${quote(m.target)},"content":${quote(m.content)}`;
  if (m.messageId !== undefined) s += `,"message_id":${quote(m.messageId)}`;
  if (m.sentAt !== undefined) s += `,"sent_at":${quote(m.sentAt)}`;
  if (m.senderId !== undefined) s += `,"sender_id":${quote(m.senderId)}`;
  if (m.offset !== undefined) s += `,"offset":"${m.offset}"`;
  if (m.traceparent !== undefined) s += `,"traceparent":${quote(m.traceparent)}`;
  if (m.tracestate !== undefined) s += `,"tracestate":${quote(m.tracestate)}`;
  if (m.userId !== undefined) s += `,"user_id":${quote(m.userId)}`;
  return `${s}}}`;
}

/** `{"ack":{...}}`, in protojson's field order. */
function ackText(a: Ack): string {
  let s = `{"ack":{"room_id":${quote(a.roomId)}`;
  if (a.messageId !== undefined) s += `,"message_id":${quote(a.messageId)}`;
  s += `,"offset":"${a.offset}"`;
  if (a.duplicate !== undefined) s += `,"duplicate":${a.duplicate}`;
  return `${s}}}`;
}

/** Strings JSON.stringify writes as they are: no quote, backslash, control character or surrogate. */
// eslint-disable-next-line no-control-regex -- control characters are what JSON escapes
const PLAIN = /^[^"\\\u0000-\u001f\ud800-\udfff]*$/;

/** JSON.stringify(s), without its cost for the usual string that needs no escaping. */
function quote(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** Varint length-delimited protobuf envelopes, one or more per binary frame. */
export const protoCodec: Codec = {
  subprotocol: Subprotocol.Proto,
  binary: true,
  decode(frame) {
    return new ProtoFrame(frame, scanFrame(frame));
  },
  encode(envelope) {
    return delimit(toBinary(EnvelopeSchema, envelope));
  },
};

/**
 * Reads the varint framing only: where each envelope starts and ends, as
 * [start, end, start, end, ...]. No envelope is decoded here.
 */
function scanFrame(frame: Uint8Array): number[] {
  const reader = new BinaryReader(frame);
  const bounds: number[] = [];
  try {
    while (reader.pos < reader.len) {
      if (bounds.length === 2 * MAX_ENVELOPES_PER_FRAME) {
        throw new FrameTooLargeError(
          `a frame carries at most ${MAX_ENVELOPES_PER_FRAME} envelopes`,
        );
      }
      const length = reader.uint32();
      const end = reader.pos + length;
      if (end > reader.len) throw new DecodeError("an envelope runs past the end of the frame");
      bounds.push(reader.pos, end);
      reader.pos = end;
    }
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError("frame is not a sequence of length-delimited envelopes", { cause: err });
  }
  if (bounds.length === 0) throw new DecodeError("empty frame");
  return bounds;
}

/** The envelopes of one scanned frame, each decoded when the iteration reaches it. */
class ProtoFrame implements Iterable<Envelope> {
  readonly #frame: Uint8Array;
  readonly #bounds: readonly number[];

  constructor(frame: Uint8Array, bounds: readonly number[]) {
    this.#frame = frame;
    this.#bounds = bounds;
  }

  *[Symbol.iterator](): Iterator<Envelope> {
    const bounds = this.#bounds;
    // A generator is over once it throws: past a bad envelope nothing follows.
    for (let i = 0; i + 1 < bounds.length; i += 2) {
      yield decodeEnvelope(this.#frame.subarray(bounds[i], bounds[i + 1]));
    }
  }
}

/** Field numbers of the `kind` oneof: every field Envelope has. */
const KIND_NUMBERS: ReadonlySet<number> = new Set(
  EnvelopeSchema.oneofs.flatMap((oneof) => oneof.fields.map((f) => f.number)),
);

function decodeEnvelope(bytes: Uint8Array): Envelope {
  try {
    checkOneKind(bytes);
    return fromBinary(EnvelopeSchema, bytes);
  } catch (err) {
    if (err instanceof DecodeError) throw err;
    throw new DecodeError("malformed envelope", { cause: err });
  }
}

/**
 * fromBinary keeps the last of two different oneof fields, where protojson
 * refuses the envelope: refuse it here too. The same kind twice is merged, as
 * protobuf merges a repeated message field. Only top-level tags are read (a
 * publish has one), so this costs little next to fromBinary.
 */
function checkOneKind(bytes: Uint8Array): void {
  const reader = new BinaryReader(bytes);
  let kind = 0;
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (KIND_NUMBERS.has(fieldNo)) {
      if (kind !== 0 && kind !== fieldNo) {
        throw new DecodeError("an envelope sets two kinds");
      }
      kind = fieldNo;
    }
    reader.skip(wireType, fieldNo);
  }
}

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
  // What create(EnvelopeSchema, { kind }) returns for a kind that is already
  // a message, without its reflection: one envelope per frame sent.
  return { $typeName: "roomcast.v1.Envelope", kind };
}
