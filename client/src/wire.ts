// The frames as JSON objects, field names as in PROTOCOL.md (proto names,
// 64-bit integers as strings). Both codecs produce and consume this shape, so
// the client logic never depends on the generated protobuf classes, and
// fields the generated schema does not have yet (presence) still work on the
// JSON subprotocol.

export interface WireStreamPosition {
  offset?: string | undefined;
  epoch?: string | undefined;
}

export interface WireMessage {
  target?: string;
  content?: string;
  message_id?: string;
  sent_at?: string;
  sender_id?: string;
  user_id?: string;
  offset?: string;
  traceparent?: string;
  tracestate?: string;
}

export interface WirePresenceMember {
  member_id?: string;
  user_id?: string;
}

export interface WireEnvelope {
  join_room?: { room_id: string; since?: WireStreamPosition; presence?: boolean };
  leave_room?: { room_id: string };
  message?: WireMessage;
  ack?: { room_id?: string; message_id?: string; offset?: string; duplicate?: boolean };
  refresh?: { token: string };
  session?: {
    token?: string;
    member_id?: string;
    rooms?: string[];
    resumed?: boolean;
    protocol?: string;
    user_id?: string;
    expires_at?: string;
  };
  room_joined?: { room_id?: string; epoch?: string; offset?: string; recovered?: boolean };
  room_left?: { room_id?: string };
  error?: { code?: string; message?: string; ref?: string; retry_after_ms?: number };
  refreshed?: { expires_at?: string };
  presence_state?: { room_id?: string; members?: WirePresenceMember[] };
  presence_diff?: {
    room_id?: string;
    joined?: WirePresenceMember[];
    left?: WirePresenceMember[];
  };
}

/** A wire offset (string, number or absent) as a bigint; absent is 0. */
export function offsetOf(value: string | number | undefined): bigint {
  if (value === undefined || value === "") return 0n;
  return BigInt(value);
}
