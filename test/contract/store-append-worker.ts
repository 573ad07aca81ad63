// A child process for the multi-process append test: opens its own store on
// the backend named in argv, appends `count` messages (a few at a time, like a
// node under load) and prints their offsets as JSON. Run by store-append-process.ts.
// Without arguments (e.g. picked up by a test runner's file glob) it does nothing.
import type { Store } from "../../src/ports/store.js";

async function openStore(kind: string, target: string): Promise<Store> {
  if (kind === "sqlite") {
    const { SqliteStore } = await import("../../src/adapters/store/sqlite-store.js");
    return new SqliteStore({ path: target, dedupWindowMs: 60_000 });
  }
  if (kind === "postgres") {
    const { PostgresStore } = await import("../../src/adapters/store/postgres-store.js");
    return new PostgresStore({ url: target, poolSize: 4, dedupWindowMs: 60_000 });
  }
  if (kind === "redis") {
    // target: <url>#<key prefix>
    const [url = "", keyPrefix = ""] = target.split("#");
    const { RedisStore } = await import("../../src/adapters/store/redis-store.js");
    return new RedisStore({ url, keyPrefix, dedupWindowMs: 60_000 });
  }
  if (kind === "spanner") {
    // target: <emulator host>/<project>/<instance>/<database>
    const [emulatorHost = "", projectId = "", instanceId = "", databaseId = ""] = target.split("/");
    const { SpannerStore } = await import("../../src/adapters/store/spanner-store.js");
    return new SpannerStore({
      emulatorHost,
      projectId,
      instanceId,
      databaseId,
      dedupWindowMs: 60_000,
      // Other processes' transactions make the emulator abort this one's (see store-spanner.test.ts).
      timeoutMs: 60_000,
    });
  }
  throw new Error(`unknown store kind ${kind}`);
}

async function main(argv: readonly string[]): Promise<void> {
  const [kind, target, room, countText, prefix] = argv;
  if (kind === undefined || target === undefined || room === undefined || prefix === undefined) {
    return;
  }
  const count = Number(countText);
  const store = await openStore(kind, target);
  await store.open();
  try {
    const offsets: string[] = [];
    const lanes = 4;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = lane; i < count; i += lanes) {
          const r = await store.append(room, {
            messageId: `${prefix}-${i}`,
            senderId: prefix,
            sentAt: new Date().toISOString(),
            content: `from ${prefix}`,
          });
          if (r.duplicate) throw new Error(`unexpected duplicate ${prefix}-${i}`);
          offsets.push(r.offset.toString());
        }
      }),
    );
    process.stdout.write(JSON.stringify(offsets) + "\n");
  } finally {
    await store.close();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
