// Calls the server API of a test node, and signs tokens for its users.
import { SignJWT } from "jose";
import type { ServerProcess } from "./server.js";

export const API_TEST_KEY = "test-key-2";
/** The AUTH_JWT_SECRET the API tests give their nodes. */
export const API_TEST_SECRET = "api-test-secret-that-is-long-enough-for-hs256";

/** One request; `key` null sends no Authorization header. */
export async function api(
  node: ServerProcess,
  method: string,
  path: string,
  body?: unknown,
  key: string | null = API_TEST_KEY,
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${node.httpUrl}${path}`, {
    method,
    headers: {
      ...(key !== null && { Authorization: `Bearer ${key}` }),
      ...(body !== undefined && { "Content-Type": "application/json" }),
    },
    ...(body !== undefined && { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
}

/** An HS256 token for `sub`, valid for an hour. */
export function token(sub: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(API_TEST_SECRET));
}
