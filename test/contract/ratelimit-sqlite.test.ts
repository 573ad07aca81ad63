import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { SqliteLimiter } from "../../src/adapters/ratelimit/sqlite-limiter.js";
import { rateLimiterContract } from "./rate-limiter.contract.js";

const dir = mkdtempSync(join(tmpdir(), "roomcast-rl-sqlite-"));
const path = join(dir, "limits.db");

rateLimiterContract(
  "sqlite rate limiter",
  (now) => Promise.resolve(new SqliteLimiter(now === undefined ? { path } : { path, now })),
  {
    shared: false,
    after: () => {
      rmSync(dir, { recursive: true, force: true });
      return Promise.resolve();
    },
    keysHeld: (_l, prefix) => {
      const db = new Database(path, { readonly: true });
      try {
        return Promise.resolve(
          db
            .prepare(
              "SELECT count(*) FROM roomcast_rate_limits WHERE substr(key, 1, length(@p)) = @p",
            )
            .pluck()
            .get({ p: prefix }) as number,
        );
      } finally {
        db.close();
      }
    },
    sweep: (l) => Promise.resolve(void (l as SqliteLimiter).sweep()),
  },
);
