// Who a connection is and what it may do. The gateway verifies credentials
// (JWT) before the upgrade and on `refresh`; the core only asks "may this
// connection join / publish to this room?" on its one join and publish paths.
//
// Grants are room patterns: an exact id, a prefix ending in `*` (`chat:*`), or
// `*`. They are compiled once per credential into a set and a list of
// prefixes, so a check is a hash lookup plus a few `startsWith`, never a regex
// built per message.

/** A compiled set of room patterns. */
export class RoomPatterns {
  readonly #exact: ReadonlySet<string>;
  readonly #prefixes: readonly string[];
  readonly #all: boolean;

  constructor(patterns: readonly string[]) {
    const exact = new Set<string>();
    const prefixes: string[] = [];
    let all = false;
    for (const p of patterns) {
      if (p === "*") all = true;
      else if (p.endsWith("*")) prefixes.push(p.slice(0, -1));
      else exact.add(p);
    }
    this.#exact = exact;
    this.#prefixes = prefixes;
    this.#all = all;
  }

  matches(roomId: string): boolean {
    if (this.#all || this.#exact.has(roomId)) return true;
    for (const prefix of this.#prefixes) if (roomId.startsWith(prefix)) return true;
    return false;
  }
}

/** A pattern is `*`, an exact room id, or a prefix ending in `*`; `*` appears nowhere else. */
export function isRoomPattern(p: string): boolean {
  if (p === "*") return true;
  const body = p.endsWith("*") ? p.slice(0, -1) : p;
  return body.length > 0 && body.length <= 128 && /^[A-Za-z0-9_\-.:@]+$/.test(body);
}

/** What one credential allows. */
export class Grants {
  /** Join and publish. */
  readonly #write: RoomPatterns;
  /** Join only (besides every room of `#write`). */
  readonly #read: RoomPatterns;

  constructor(write: readonly string[], read: readonly string[] = []) {
    this.#write = new RoomPatterns(write);
    this.#read = new RoomPatterns(read);
  }

  static readonly all = new Grants(["*"]);

  canJoin(roomId: string): boolean {
    return this.#write.matches(roomId) || this.#read.matches(roomId);
  }

  canPublish(roomId: string): boolean {
    return this.#write.matches(roomId);
  }
}

/** A verified credential. */
export interface Identity {
  /** The token's `sub`. */
  readonly userId: string;
  /** The token's `exp`, in ms since the epoch. */
  readonly expiresAt: number;
  readonly grants: Grants;
}

/** Verifies a token (the gateway's JWT verifier). Rejects with CredentialError. */
export interface Credentials {
  verify(token: string): Promise<Identity>;
  /** How long past `expiresAt` a credential is still honoured (AUTH_CLOCK_SKEW). */
  readonly clockSkewMs: number;
}

/** A token that does not verify; `reason` is for logs (it never holds the token). */
export class CredentialError extends Error {
  override readonly name = "CredentialError";
}
