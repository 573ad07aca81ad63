// Self-signed X.509 certificates made by the test itself with the openssl
// CLI (node:crypto cannot issue certificates): a TLS pair for the server, or
// a certificate around an existing key (to configure a JWT public key as a
// certificate). Under CI=true a missing openssl fails loudly.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { hasBinary, makeTempDir } from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";

/** Whether certificate tests can run; throws under CI=true when openssl is missing. */
export function opensslAvailable(): boolean {
  return requireBinary(hasBinary("openssl") || opensslVersion(), "openssl");
}

// `openssl --version` is not an option on every build; `openssl version` is.
function opensslVersion(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export interface CertPair {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 fingerprint as node:tls reports it (`AA:BB:...`). */
  readonly fingerprint256: string;
}

/** A fresh P-256 key and a one-day self-signed certificate for `localhost` and 127.0.0.1. */
export async function selfSignedCert(): Promise<CertPair> {
  const dir = await makeTempDir("cert");
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return read(cert, key);
}

/** A one-day self-signed certificate for the private key `keyPem` (PKCS#8 PEM). */
export async function certificateFor(keyPem: string): Promise<string> {
  const dir = await makeTempDir("cert");
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  writeFileSync(key, keyPem);
  execFileSync(
    "openssl",
    ["req", "-x509", "-key", key, "-days", "1", "-subj", "/CN=jwt-signer", "-out", cert],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return read(cert, key).certPem;
}

function read(cert: string, key: string): CertPair {
  const certPem = readFileSync(cert, "utf8");
  const keyPem = readFileSync(key, "utf8");
  return { certPem, keyPem, fingerprint256: new X509Certificate(certPem).fingerprint256 };
}
