// Real JWTs signed in the test with jose, and a real JWKS HTTP server on
// 127.0.0.1 that counts the requests it answers (to check the key cache and
// the unknown-`kid` cooldown) and whose key set can be swapped (rotation).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, type JWK, type JWTPayload } from "jose";

/** Whatever jose signs with: a secret's bytes, a KeyObject or a CryptoKey. */
export type SigningKey = Parameters<SignJWT["sign"]>[0];

export const TEST_SECRET = "roomcast-test-secret-0123456789abcdef";

/** Seconds since the epoch, as `exp`/`nbf`/`iat` want them. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export interface SignOptions {
  readonly alg?: string;
  readonly kid?: string;
  /** Seconds from now; null leaves `exp` out. Default 600. */
  readonly expiresIn?: number | null;
  /** `nbf`, seconds from now. */
  readonly notBefore?: number;
}

/** A JWT with `claims` (sub, rooms, iss, aud, ...) signed with `key`. */
export async function sign(
  claims: JWTPayload,
  key: SigningKey,
  { alg = "HS256", kid, expiresIn = 600, notBefore }: SignOptions = {},
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, ...(kid !== undefined && { kid }) });
  jwt.setIssuedAt();
  if (expiresIn !== null) jwt.setExpirationTime(nowSeconds() + expiresIn);
  if (notBefore !== undefined) jwt.setNotBefore(nowSeconds() + notBefore);
  return await jwt.sign(key);
}

/** An HS256 token for `sub` with the test secret. */
export function hs256(
  sub: string,
  claims: JWTPayload = {},
  opts: SignOptions = {},
  secret = TEST_SECRET,
): Promise<string> {
  return sign({ sub, ...claims }, new TextEncoder().encode(secret), opts);
}

export interface JwksServer {
  readonly url: string;
  /** Requests answered so far. */
  readonly requests: number;
  /** Serves `keys` from now on (key rotation). */
  setKeys(keys: readonly JWK[]): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: readonly JWK[]): Promise<JwksServer> {
  let current = keys;
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests++;
    const body = JSON.stringify({ keys: current });
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get requests() {
      return requests;
    },
    setKeys(keys) {
      current = keys;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
