// `npm run migrate`: applies the store's pending schema migrations and exits.
// The server applies them at start too; this is for deploy pipelines that
// migrate before rolling out nodes.
import { ConfigError, loadConfig } from "./config/load.js";
import { createLogger } from "./observability/logging.js";
import { createStore } from "./adapters.js";

async function migrate(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.LOG_LEVEL);
  const store = await createStore(config, log);
  // open() applies every pending migration (under a lock where the store has one).
  await store.open();
  await store.close();
  log.info({ store: config.STORE }, "migrations applied");
}

migrate().catch((err: unknown) => {
  const text =
    err instanceof ConfigError
      ? err.message
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
  process.stderr.write(`roomcast migrate: ${text}\n`);
  process.exit(1);
});
