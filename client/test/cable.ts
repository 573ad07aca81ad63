// A TCP relay the test can unplug: every connection through it is dropped at
// once and new ones are refused until it is plugged back in. Chromium's
// offline emulation (context.setOffline) leaves open WebSockets untouched, so
// this is what takes a page's network away for real.
import { createServer, connect, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export class Cable {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #plugged = true;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Relays 127.0.0.1:<port> (a free one) to 127.0.0.1:`targetPort`. */
  static async open(targetPort: number): Promise<Cable> {
    const server = createServer();
    const cable = new Cable(server);
    server.on("connection", (inbound) => cable.#relay(inbound, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return cable;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  unplug(): void {
    this.#plugged = false;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  plug(): void {
    this.#plugged = true;
  }

  async close(): Promise<void> {
    this.unplug();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #relay(inbound: Socket, targetPort: number): void {
    if (!this.#plugged) {
      inbound.destroy();
      return;
    }
    const outbound = connect(targetPort, "127.0.0.1");
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      this.#sockets.add(from);
      from.on("error", () => to.destroy());
      from.on("close", () => {
        this.#sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  }
}
