// The servers under test: Roomcast and its peers, each a Node script started the
// same way (PORT, GET /readyz) and driven by the same generator — or, for
// Centrifugo, a Go binary with a command line and health path of its own.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ClientKind } from "../load/messages.js";
import { centrifugoArgv, centrifugoBinary } from "./centrifugo.js";
import { NODE_FLAGS } from "../../src/config/node-flags.js";

export const SERVER_NAMES = ["roomcast", "raw-ws", "corked-ws", "socketio", "centrifugo"] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

export interface ServerSpec {
  name: ServerName;
  script: string;
  kind: ClientKind;
  env: Record<string, string>;
  /** A command line of its own (not `node script`) for a port; `script` is then the binary. */
  argv?: (port: number) => string[];
  /** The path that answers 200 once it is ready; default /readyz. */
  readyPath?: string;
  /** Flags of its `node`, before the script (Roomcast: the flags it ships with). */
  nodeArgs?: readonly string[];
}

const path = (relative: string): string => fileURLToPath(new URL(relative, import.meta.url));

/**
 * The scenarios measure capacity: one connection and one room publish, and
 * one loopback address connects, far beyond any client the default rate
 * limits are sized for, so the limits are off unless
 * ROOMCAST_BENCH_RATE_LIMITS=on keeps the defaults. What they cost is
 * measured side by side by the limits-* scenarios (scenarios/rate-limits.ts).
 */
export const RATE_LIMITS_OFF: Record<string, string> = {
  RATE_LIMIT_MESSAGES: "off",
  RATE_LIMIT_ROOM_MESSAGES: "off",
  RATE_LIMIT_JOINS: "off",
  RATE_LIMIT_HANDSHAKES: "off",
};
const RATE_LIMITS = process.env["ROOMCAST_BENCH_RATE_LIMITS"] === "on" ? {} : RATE_LIMITS_OFF;

/**
 * Roomcast runs with the in-memory broker and its live-fanout settings; the
 * outbound buffer limit is raised from 1 MiB to 16 MiB so a generator hiccup at
 * saturation is not counted as slow consumers (the peers have no limit at all).
 */
export const ROOMCAST_BENCH_ENV: Record<string, string> = {
  ...RATE_LIMITS,
  HOST: "127.0.0.1",
  LOG_LEVEL: "warn",
  BROKER: "memory",
  STORE: "memory",
  MAX_BUFFERED_BYTES: String(16 * 1024 * 1024),
  FIRST_FRAME_TIMEOUT: "0",
  FIRST_FRAME_TIMEOUT_MS: "0",
  MAX_ROOMS_PER_MEMBER: "128",
};

export function serverSpec(name: ServerName): ServerSpec {
  switch (name) {
    case "roomcast":
      return {
        name,
        script: path("../../src/main.js"),
        kind: "roomcast-json",
        env: ROOMCAST_BENCH_ENV,
        nodeArgs: NODE_FLAGS,
      };
    case "raw-ws":
      return { name, script: path("../peers/raw-ws-server.js"), kind: "roomcast-json", env: {} };
    case "corked-ws":
      return { name, script: path("../peers/corked-ws-server.js"), kind: "roomcast-json", env: {} };
    case "socketio":
      return { name, script: path("../peers/socketio-server.js"), kind: "socketio", env: {} };
    case "centrifugo": {
      const binary = centrifugoBinary();
      return {
        name,
        script: binary,
        kind: "centrifugo-json",
        // One Go thread on the one server core, as Node has one JS thread.
        env: { GOMAXPROCS: "1" },
        argv: (port) => centrifugoArgv(binary, port),
        readyPath: "/health",
      };
    }
  }
}

/** The same server with the server's default rate limits (the rate-limits scenarios' "on"). */
export function withDefaultRateLimits(spec: ServerSpec): ServerSpec {
  const env = { ...spec.env };
  for (const key of Object.keys(RATE_LIMITS_OFF)) delete env[key];
  return { ...spec, env };
}

export function isBuilt(spec: ServerSpec): boolean {
  return existsSync(spec.script);
}
