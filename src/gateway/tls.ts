// Native TLS (TLS_CERT_FILE, TLS_KEY_FILE): the certificate and key are read
// at start and again when either file changes or on SIGHUP; a reload swaps the
// secure context for new handshakes and leaves open sockets alone. A reload
// that fails (half-written files during a rotation) keeps the previous pair.
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import type { Server } from "node:https";
import type { Logger } from "../observability/logging.js";

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

/** How often the files are checked for changes (fs.watchFile polls; it survives file replacement). */
const WATCH_INTERVAL_MS = 2000;

export function readPair(files: TlsFiles): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
}

export class CertificateReloader {
  readonly #server: Server;
  readonly #files: TlsFiles;
  readonly #log: Logger;

  constructor(server: Server, files: TlsFiles, log: Logger) {
    this.#server = server;
    this.#files = files;
    this.#log = log;
    for (const file of [files.certFile, files.keyFile]) {
      watchFile(file, { interval: WATCH_INTERVAL_MS, persistent: false }, () => this.reload());
    }
  }

  reload(): void {
    try {
      this.#server.setSecureContext(readPair(this.#files));
      this.#log.info("TLS certificate reloaded");
    } catch (err) {
      this.#log.warn({ err }, "TLS certificate reload failed; keeping the previous one");
    }
  }

  close(): void {
    unwatchFile(this.#files.certFile);
    unwatchFile(this.#files.keyFile);
  }
}
