// The Store port: everything Roomcast keeps beyond one socket's lifetime.
// Adapters live in src/adapters/store/ and all pass test/contract/store.contract.ts.
// Offsets are bigint: they are uint64 on the wire.

/** What an adapter offers; the composition root and the docs read these. */
export interface StoreCapabilities {
  /** Survives a process restart (SQLite, PostgreSQL, ...). */
  readonly durable: boolean;
  /** Shared by every node of a cluster (PostgreSQL, ...), so resume works across nodes. */
  readonly shared: boolean;
}

/** A message as the publisher hands it to the store (server fields already filled). */
export interface NewMessage {
  readonly messageId: string;
  readonly senderId: string;
  /** RFC 3339 text, kept verbatim. */
  readonly sentAt: string;
  readonly content: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** The publisher's authenticated user; absent for anonymous publishers. */
  readonly userId?: string;
}

/** A message in a room's history. */
export interface StoredMessage extends NewMessage {
  readonly room: string;
  readonly offset: bigint;
}

export interface AppendResult {
  /** The offset of the stored message, or of the original on a duplicate. */
  readonly offset: bigint;
  /** True when (room, messageId) was already appended within the dedup window. */
  readonly duplicate: boolean;
  /** The epoch of the room's history the offset belongs to. */
  readonly epoch: string;
}

export interface HistoryPage {
  /** Messages with offset > afterOffset, ascending and contiguous, at most `limit`. */
  readonly messages: readonly StoredMessage[];
  /** The room's last assigned offset (0 when nothing was ever appended). */
  readonly head: bigint;
  /** The current epoch of the room's history. */
  readonly epoch: string;
  /**
   * The lowest offset still kept (head + 1 when nothing is kept). Messages
   * below it were trimmed, so a reader behind it cannot recover fully.
   */
  readonly oldest: bigint;
}

/** Where one member of a session stands in one room. */
export interface SessionRoom {
  readonly room: string;
  /** The last offset delivered and acknowledged (or sent, without acks). */
  readonly offset: bigint;
  /** The epoch that offset belongs to ('' when unknown). */
  readonly epoch: string;
  /** The member asked for the room's presence (join_room.presence); a resume keeps it. */
  readonly presence?: boolean;
}

export interface SessionRecord {
  readonly memberId: string;
  /** The authenticated user ('' for anonymous); a resume never crosses users. */
  readonly userId: string;
  readonly rooms: readonly SessionRoom[];
}

export interface TrimPolicy {
  /** Messages kept per room; older ones are deleted. */
  readonly maxPerRoom: number;
  /** Messages older than this (by store time) are deleted. */
  readonly maxAgeMs: number;
}

/**
 * Guarantees every adapter keeps (the contract suite checks each):
 * - `append` is atomic: the dedup check, the offset assignment and the insert
 *   happen as one step, so concurrent appenders (connections, processes) get
 *   offsets 1..N with no gap and no duplicate, per room.
 * - Appends keep their call order: of two appends to one room made by one
 *   process, the one called first gets the lower offset, even when the
 *   second is called before the first resolves (a member pipelines its
 *   publishes on this). A failed append does not hold back later ones.
 * - De-duplication of (room, messageId) holds for the configured dedup window
 *   (DEDUP_WINDOW, given to each adapter at construction) after the first
 *   append, even when the message itself was trimmed from history.
 * - A room's metadata (head, epoch) outlives its trimmed messages.
 * - Session tokens are never stored: callers pass hashes only.
 * - Every method may reject (I/O), and only with a StoreError whose code says
 *   what kind of failure it was (store-error.ts); callers wrap them in timeouts.
 */
export interface Store {
  readonly capabilities: StoreCapabilities;

  /** Prepares the schema (migrations) and connections. Called once before use. */
  open(): Promise<void>;

  /**
   * Appends one message to a room's history, de-duplicating by messageId
   * within the configured dedup window, and returns its offset. Creates the
   * room (and its epoch) on first use.
   */
  append(room: string, message: NewMessage): Promise<AppendResult>;

  /**
   * Reads up to `limit` messages with offset > afterOffset (at most 2^63 − 1:
   * stores keep int64 offsets; callers clamp larger wire offsets), ascending, with the
   * room's head and epoch. `limit` 0 reads only head and epoch. Creates the
   * room's metadata when missing, so the epoch returned is the one later
   * appends use.
   */
  read(room: string, afterOffset: bigint, limit: number): Promise<HistoryPage>;

  /** Creates a session whose resume token hashes to `tokenHash`; it expires at `expiresAt` (ms since epoch) unless touched. */
  createSession(session: SessionRecord, tokenHash: string, expiresAt: number): Promise<void>;

  /**
   * Resumes and rotates in one atomic step: finds the unexpired session of
   * `userId` whose token hashes to `tokenHash`, replaces that hash with
   * `newTokenHash` (so the old token never works again), extends its expiry
   * to `expiresAt`, and returns it. Unknown, used, expired or another user's
   * → undefined, and another user's session is left exactly as it was (its
   * owner's token still resumes it).
   */
  resumeSession(
    tokenHash: string,
    newTokenHash: string,
    expiresAt: number,
    userId: string,
  ): Promise<SessionRecord | undefined>;

  /**
   * Saves a session's rooms and positions (replacing the stored list) and its
   * expiry. Used for join/leave, batched acks, and on disconnect. Unknown or
   * expired member ids are ignored.
   */
  saveSession(memberId: string, rooms: readonly SessionRoom[], expiresAt: number): Promise<void>;

  /**
   * Revokes every session of `userId` (never '' — anonymous sessions have no
   * user to name): none of them can be resumed any more, and later
   * `saveSession` calls for them are ignored, as for expired ones. Sessions
   * created after it returns are not affected. Idempotent; resolves once the
   * revocation is durable. Used by the server API's disconnect.
   */
  revokeUserSessions(userId: string): Promise<void>;

  /**
   * Deletes history beyond the policy, expired sessions and expired dedup keys
   * (each key carries its own expiry, set when it was appended). Returns
   * messages deleted.
   */
  trim(policy: TrimPolicy): Promise<number>;

  /** Releases connections and files; pending calls may reject. */
  close(): Promise<void>;
}
