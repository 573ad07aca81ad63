// A WebSocket for the SDK's tests: `ws` underneath, with hooks to see what the
// client sends, drop or look at what it receives, kill the socket at a chosen
// moment, and send new connections to a dead port (network down).
import WebSocket from "ws";
import type { WebSocketConstructor, WebSocketLike } from "../src/index.js";

export interface Tap {
  /** Every socket the client opened, newest last. */
  readonly sockets: TappedSocket[];
  /** Every frame the client sent (decoded when JSON), in order. */
  readonly sent: unknown[];
  /** Return false to drop the frame before the client sees it. */
  inbound?: (socket: TappedSocket, data: unknown) => boolean;
  /** While true, new connections fail as if the network were down. */
  blocked: boolean;
  /** The WebSocket constructor to give the client. */
  readonly WebSocket: WebSocketConstructor;
}

export interface TappedSocket extends WebSocketLike {
  readonly url: string;
  /** Drops the TCP connection without a close frame (the client sees 1006). */
  terminate(): void;
}

export function tap(): Tap {
  const state: Omit<Tap, "WebSocket"> = { sockets: [], sent: [], blocked: false };
  class Tapped implements TappedSocket {
    readonly url: string;
    readonly #inner: WebSocket;
    onopen: ((event: never) => void) | null = null;
    onmessage: ((event: { readonly data: unknown }) => void) | null = null;
    onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null = null;
    onerror: ((event: never) => void) | null = null;

    constructor(url: string, protocols?: string | string[]) {
      this.url = url;
      this.#inner = new WebSocket(state.blocked ? "ws://127.0.0.1:1/ws" : url, protocols);
      this.#inner.binaryType = "arraybuffer";
      this.#inner.onopen = () => this.onopen?.(undefined as never);
      this.#inner.onerror = () => this.onerror?.(undefined as never);
      this.#inner.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
      this.#inner.onmessage = (e) => {
        if (t.inbound?.(this, e.data) === false) return;
        this.onmessage?.({ data: e.data });
      };
      state.sockets.push(this);
    }

    get readyState(): number {
      return this.#inner.readyState;
    }

    get binaryType(): string {
      return this.#inner.binaryType;
    }

    set binaryType(_value: string) {
      // always arraybuffer underneath
    }

    send(data: string | Uint8Array): void {
      state.sent.push(typeof data === "string" ? JSON.parse(data) : data);
      this.#inner.send(data);
    }

    close(code?: number, reason?: string): void {
      this.#inner.close(code, reason);
    }

    terminate(): void {
      this.#inner.terminate();
    }
  }
  const t: Tap = Object.assign(state, { WebSocket: Tapped });
  return t;
}

/** The JSON frames of one kind among those sent. */
export function sentOf(t: Tap, kind: string): Record<string, unknown>[] {
  return t.sent.flatMap((f) => {
    const value = (f as Record<string, Record<string, unknown> | undefined>)[kind];
    return value === undefined ? [] : [value];
  });
}
