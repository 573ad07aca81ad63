// A history row as the SQL stores keep it (snake_case columns, NULL for an
// absent optional field), and the StoredMessage it stands for.
import type { StoredMessage } from "../../ports/store.js";

export interface MessageColumns {
  message_id: string;
  sender_id: string;
  sent_at: string;
  content: string;
  traceparent: string | null;
  tracestate: string | null;
  user_id: string | null;
}

export function messageFromRow(room: string, offset: bigint, r: MessageColumns): StoredMessage {
  return {
    room,
    offset,
    messageId: r.message_id,
    senderId: r.sender_id,
    sentAt: r.sent_at,
    content: r.content,
    ...(r.traceparent !== null && { traceparent: r.traceparent }),
    ...(r.tracestate !== null && { tracestate: r.tracestate }),
    ...(r.user_id !== null && { userId: r.user_id }),
  };
}
