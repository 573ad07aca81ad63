// Handshakes per second (Roomcast only): 32 clients in a closed loop, each
// connecting (with a token when authentication is on), waiting for the
// `session` frame, and closing — with authentication off, with HS256 and with
// RS256. The figure is completed handshakes/s and the server CPU each costs.
// The clients run in the runner's process (a handshake loop needs no worker
// threads at these rates); sockets rotate over fresh source addresses so
// TIME_WAIT never runs out of ports.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { cpuSeconds } from "../lib/proc-stats.js";
import { serverSpec } from "../lib/servers.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric } from "../report/model.js";
import { withServer, type RunContext } from "./context.js";

export const AUTH_MODES = ["off", "HS256", "RS256"] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

export const HANDSHAKE_METRICS: Metric[] = [
  { key: "perSec", label: "handshakes/s", unit: "conn/s", better: "higher", digits: 0 },
  {
    key: "cpuPerHandshake",
    label: "server CPU per handshake",
    unit: "µs",
    better: "lower",
    digits: 0,
  },
];

const CLIENTS = 32;
const SECRET = "bench-secret-bench-secret-bench-secret";

interface Signer {
  readonly env: Record<string, string>;
  token(): Promise<string>;
}

function signer(mode: AuthMode): Signer | undefined {
  const claims = () => new SignJWT({}).setSubject(`u-${randomUUID()}`).setExpirationTime("10m");
  switch (mode) {
    case "off":
      return undefined;
    case "HS256": {
      const key = new TextEncoder().encode(SECRET);
      return {
        env: { AUTH_JWT_SECRET: SECRET },
        token: () => claims().setProtectedHeader({ alg: "HS256" }).sign(key),
      };
    }
    case "RS256": {
      const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      return {
        env: { AUTH_JWT_PUBLIC_KEY: publicKey.export({ type: "spki", format: "pem" }).toString() },
        token: () => claims().setProtectedHeader({ alg: "RS256" }).sign(privateKey),
      };
    }
  }
}

/** One handshake: open, wait for `session`, close. Resolves false on any failure. */
function handshake(url: string, token: string | undefined, localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, {
      localAddress,
      ...(token !== undefined && { headers: { Authorization: `Bearer ${token}` } }),
    });
    ws.once("message", () => {
      ws.terminate();
      resolve(true);
    });
    ws.once("error", () => resolve(false));
    ws.once("unexpected-response", () => {
      ws.terminate();
      resolve(false);
    });
  });
}

export async function runHandshakes(
  ctx: RunContext,
  mode: AuthMode,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  const sign = signer(mode);
  const seconds = ctx.full ? 15 : 5;
  const env = { ...(sign?.env ?? {}), LOG_LEVEL: "error" };
  return withServer(ctx, serverSpec("roomcast"), env, async (server) => {
    const url = `${server.url}/ws`;
    const addresses = nextSourceAddresses(8);
    // Tokens are signed ahead (the client's cost is not the server's).
    const tokens: (string | undefined)[] = [];
    for (let i = 0; i < 256; i++) tokens.push(sign === undefined ? undefined : await sign.token());
    let done = 0;
    let failed = 0;
    const cpu0 = cpuSeconds(server.pid);
    const start = performance.now();
    const end = start + seconds * 1000;
    const loop = async (id: number): Promise<void> => {
      for (let i = id; performance.now() < end; i += CLIENTS) {
        const ok = await handshake(
          url,
          tokens[i % tokens.length],
          addresses[i % addresses.length]!,
        );
        if (ok) done++;
        else failed++;
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => loop(id)));
    const elapsed = (performance.now() - start) / 1000;
    const cpu = cpuSeconds(server.pid) - cpu0;
    return {
      values: { perSec: done / elapsed, cpuPerHandshake: (cpu / Math.max(1, done)) * 1e6 },
      detail: { done, failed, elapsed, mode },
    };
  });
}
