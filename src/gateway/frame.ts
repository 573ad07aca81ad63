// Server-to-client WebSocket frames (RFC 6455 §5.2: FIN set, never masked).
// A frame built once can be written to every socket of a room as it is, which
// `ws.send` cannot do: it frames (and allocates) per call.
export const Opcode = { Text: 0x1, Binary: 0x2 } as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export function buildFrame(opcode: Opcode, payload: Uint8Array): Buffer {
  const length = payload.byteLength;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.set(payload, headerLength);
  return frame;
}
