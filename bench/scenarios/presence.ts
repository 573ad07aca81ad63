// Presence cost (Roomcast only): 1,000 members connect, then all join one
// room at once — with presence on (every member watches) and off. The figures
// are the presence frames the members received per join (presence_state plus
// presence_diff: batching keeps this near 1–2 instead of ~500 unbatched) and
// the server CPU per join. "Off" shows what members who do not ask pay.
// The clients run in the runner's process.
import WebSocket from "ws";
import { cpuSeconds } from "../lib/proc-stats.js";
import { serverSpec } from "../lib/servers.js";
import { nextSourceAddresses } from "../lib/source-addresses.js";
import type { Metric } from "../report/model.js";
import { withServer, type RunContext } from "./context.js";

export const PRESENCE_MODES = ["on", "off"] as const;
export type PresenceMode = (typeof PRESENCE_MODES)[number];

export const PRESENCE_METRICS: Metric[] = [
  {
    key: "framesPerJoin",
    label: "presence frames per join (all members)",
    unit: "frames",
    better: "lower",
    digits: 2,
  },
  { key: "cpuPerJoin", label: "server CPU per join", unit: "µs", better: "lower", digits: 0 },
  {
    key: "seconds",
    label: "time until every member saw everyone (on) / was joined (off)",
    unit: "s",
    better: "lower",
    digits: 2,
  },
];

const MEMBERS = 1000;

interface Client {
  readonly ws: WebSocket;
  present: Set<string>;
  joined: boolean;
  frames: number;
}

function connect(url: string, localAddress: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress });
    const c: Client = { ws, present: new Set(), joined: false, frames: 0 };
    ws.on("message", (data: Buffer) => {
      const text = data.toString("utf8");
      if (text.startsWith('{"session"')) return resolve(c);
      if (text.startsWith('{"room_joined"')) c.joined = true;
      else if (text.startsWith('{"presence_state"')) {
        c.frames++;
        const v = JSON.parse(text) as { presence_state: { members: { member_id: string }[] } };
        c.present = new Set(v.presence_state.members.map((m) => m.member_id));
      } else if (text.startsWith('{"presence_diff"')) {
        c.frames++;
        const v = JSON.parse(text) as {
          presence_diff: { joined: { member_id: string }[]; left: { member_id: string }[] };
        };
        for (const m of v.presence_diff.joined) c.present.add(m.member_id);
        for (const m of v.presence_diff.left) c.present.delete(m.member_id);
      }
    });
    ws.once("error", reject);
  });
}

export async function runPresence(
  ctx: RunContext,
  mode: PresenceMode,
): Promise<{ values: Record<string, number>; detail: unknown }> {
  return withServer(ctx, serverSpec("roomcast"), { LOG_LEVEL: "error" }, async (server) => {
    const url = `${server.url}/ws`;
    const [address] = nextSourceAddresses(1);
    const clients: Client[] = [];
    for (let i = 0; i < MEMBERS; i += 50) {
      const batch = Array.from({ length: Math.min(50, MEMBERS - i) }, () => connect(url, address!));
      clients.push(...(await Promise.all(batch)));
    }
    const room = `presence-${Date.now().toString(36)}`;
    const frame = JSON.stringify({ join_room: { room_id: room, presence: mode === "on" } });
    const cpu0 = cpuSeconds(server.pid);
    const start = performance.now();
    for (const c of clients) c.ws.send(frame);
    const done = () =>
      mode === "on"
        ? clients.every((c) => c.present.size === MEMBERS)
        : clients.every((c) => c.joined);
    const deadline = start + 60_000;
    while (!done()) {
      if (performance.now() > deadline) throw new Error("members did not converge within 60 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    const elapsed = (performance.now() - start) / 1000;
    // Let any last batch land, then count.
    await new Promise((r) => setTimeout(r, 300));
    const cpu = cpuSeconds(server.pid) - cpu0;
    const frames = clients.reduce((sum, c) => sum + c.frames, 0);
    for (const c of clients) c.ws.terminate();
    return {
      values: {
        framesPerJoin: frames / MEMBERS,
        cpuPerJoin: (cpu / MEMBERS) * 1e6,
        seconds: elapsed,
      },
      detail: { mode, members: MEMBERS, frames },
    };
  });
}
