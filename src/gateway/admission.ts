// Connection limits, per node: MAX_CONNECTIONS (503), MAX_CONNECTIONS_PER_USER
// and MAX_CONNECTIONS_PER_IP (429). 0 means unlimited. A slot is taken before
// the upgrade (so concurrent handshakes cannot overshoot) and given back when
// the socket closes or the upgrade fails.
import type { IncomingMessage } from "node:http";

export interface AdmissionLimits {
  readonly maxConnections: number;
  readonly maxPerUser: number;
  readonly maxPerIp: number;
  /** How many X-Forwarded-For hops to trust (TRUST_PROXY); 0: the socket's peer. */
  readonly trustProxy: number;
}

export type Refusal = { readonly status: 429 | 503; readonly message: string };

/** One admitted connection's slot; `release` is idempotent. */
export interface Slot {
  release(): void;
}

/** Gives back what admit() took; set by Admission's static block. */
let freeSlot: (admission: Admission, userId: string, ip: string) => void;

export class Admission {
  readonly #limits: AdmissionLimits;
  #total = 0;
  readonly #byUser = new Map<string, number>();
  readonly #byIp = new Map<string, number>();

  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /**
   * The client's address: the socket's peer, or — behind `trustProxy`
   * proxies — the address that many hops back in X-Forwarded-For (the
   * rightmost entries are the ones our own proxies appended).
   */
  clientIp(req: IncomingMessage): string {
    const peer = req.socket.remoteAddress ?? "";
    const hops = this.#limits.trustProxy;
    if (hops === 0) return peer;
    const header = req.headers["x-forwarded-for"];
    const text = Array.isArray(header) ? header.join(",") : (header ?? "");
    const chain = text
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    // chain = [client, proxy1, ..., proxyN-1]; the peer is proxy N.
    const index = chain.length - hops;
    return index >= 0 ? chain[index]! : (chain[0] ?? peer);
  }

  /** Takes a slot, or says why not. `userId` is '' for anonymous connections. */
  admit(userId: string, ip: string): Slot | Refusal {
    const { maxConnections, maxPerUser, maxPerIp } = this.#limits;
    if (maxConnections > 0 && this.#total >= maxConnections) {
      return { status: 503, message: "node full" };
    }
    if (maxPerUser > 0 && userId !== "" && (this.#byUser.get(userId) ?? 0) >= maxPerUser) {
      return { status: 429, message: "too many connections for this user" };
    }
    if (maxPerIp > 0 && (this.#byIp.get(ip) ?? 0) >= maxPerIp) {
      return { status: 429, message: "too many connections from this address" };
    }
    this.#total++;
    if (userId !== "") bump(this.#byUser, userId, 1);
    bump(this.#byIp, ip, 1);
    return new AdmittedSlot(this, userId, ip);
  }

  static {
    // Only a slot gives back what admit() took, once: not a method anyone
    // holding the Admission could call.
    freeSlot = (admission, userId, ip) => {
      admission.#total--;
      if (userId !== "") bump(admission.#byUser, userId, -1);
      bump(admission.#byIp, ip, -1);
    };
  }
}

// One object per connection instead of a closure and its context: every
// connection holds its slot for life, and per-connection memory is what
// bounds how many a node holds.
class AdmittedSlot implements Slot {
  #admission: Admission | undefined;
  readonly #userId: string;
  readonly #ip: string;

  constructor(admission: Admission, userId: string, ip: string) {
    this.#admission = admission;
    this.#userId = userId;
    this.#ip = ip;
  }

  release(): void {
    const admission = this.#admission;
    if (admission === undefined) return;
    this.#admission = undefined;
    freeSlot(admission, this.#userId, this.#ip);
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

export function isRefusal(x: Slot | Refusal): x is Refusal {
  return "status" in x;
}
