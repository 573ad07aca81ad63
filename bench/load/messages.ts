// What the coordinator and the generator's worker threads say to each other.
export type ClientKind = "roomcast-json" | "socketio" | "centrifugo-json";

export interface MemberSpec {
  room: string;
  publisher: boolean;
}

export interface WorkerSetup {
  index: number;
  url: string;
  kind: ClientKind;
  members: MemberSpec[];
  /** Local 127.x.y.z addresses to spread connections over (ephemeral ports run out at ~28k each). */
  sourceAddresses: string[];
  contentBytes: number;
  connectConcurrency: number;
  /** A publisher whose socket holds more than this is skipped for the tick (counted as skipped). */
  maxPublisherBuffer: number;
}

export interface Counters {
  delivered: number;
  acks: number;
  published: number;
  skipped: number;
  errors: number;
  closed: number;
}

export type Command =
  | { id: number; type: "connect" }
  | { id: number; type: "rate"; perSecond: number }
  | { id: number; type: "closed-loop"; inflight: number }
  | { id: number; type: "snapshot"; resetLatency: boolean }
  | { id: number; type: "stop" };

export type Reply =
  | { id: number; type: "connected"; ok: number; failed: number; firstError: string }
  | {
      id: number;
      type: "snapshot";
      counters: Counters;
      latency: number[];
      /** Publish→ack (or →refusal) latency of this worker's publishers. */
      ackLatency: number[];
    }
  | { id: number; type: "done" };
