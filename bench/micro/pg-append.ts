// The PostgreSQL store alone: `inFlight` closed-loop appenders over `rooms`
// rooms for `seconds` (after a second of warm-up), on a fresh database of the
// PostgreSQL the durable scenario uses. Prints appends/s and this process's
// CPU per append. Usage: node dist/bench/micro/pg-append.js [inFlight=128] [rooms=1] [seconds=4]
import { setTimeout as sleep } from "node:timers/promises";
import { PostgresStore } from "../../src/adapters/store/postgres-store.js";
import { POSTGRES_URL } from "../scenarios/durable.js";
import { createFreshDatabase } from "../scenarios/fresh-database.js";

const [inFlight = 128, rooms = 1, seconds = 4] = process.argv.slice(2, 5).map(Number);
const database = await createFreshDatabase(POSTGRES_URL);
const store = new PostgresStore({ url: database.url, poolSize: 10, dedupWindowMs: 60_000 });
let appended = 0;
let stop = false;
try {
  await store.open();
  const content = "x".repeat(64);
  const appender = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      await store.append(`room-${(w + i) % rooms}`, {
        messageId: `w${w}-${i}`,
        senderId: "bench",
        sentAt: "2026-01-01T00:00:00.000Z",
        content,
      });
      appended++;
    }
  };
  const running = Array.from({ length: inFlight }, (_, w) => appender(w));
  await sleep(1000);
  const [count, cpu, started] = [appended, process.cpuUsage(), performance.now()];
  await sleep(seconds * 1000);
  const done = appended - count;
  const used = process.cpuUsage(cpu);
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(running);
  process.stdout.write(
    `${JSON.stringify({ inFlight, rooms, perSecond: Math.round(done / elapsed), clientCpuUsPerAppend: Number(((used.user + used.system) / done).toFixed(1)) })}\n`,
  );
} finally {
  stop = true;
  await store.close();
  await database.drop();
}
