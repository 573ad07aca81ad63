import pg from "pg";
import { PostgresLimiter } from "../../src/adapters/ratelimit/postgres-limiter.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { rateLimiterContract } from "./rate-limiter.contract.js";

let server: PostgresServer | undefined;
const url = (): string => {
  if (server === undefined) throw new Error("PostgreSQL is not started");
  return server.url;
};

rateLimiterContract(
  "postgres rate limiter",
  (now) =>
    Promise.resolve(new PostgresLimiter(now === undefined ? { url: url() } : { url: url(), now })),
  {
    shared: true,
    skip: !postgresAvailable(),
    before: async () => {
      server = await startPostgres();
    },
    after: async () => {
      await server?.close();
    },
    keysHeld: async (_l, prefix) => {
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(
          "SELECT count(*) AS n FROM roomcast_rate_limits WHERE starts_with(key, $1)",
          [prefix],
        );
        return Number(rows[0]?.n ?? 0);
      } finally {
        await client.end();
      }
    },
    sweep: async (l) => void (await (l as PostgresLimiter).sweep()),
    ...(server?.canRestart !== false &&
      process.env["ROOMCAST_TEST_POSTGRES_URL"] === undefined && {
        stopServer: () => server?.stop("immediate") ?? Promise.resolve(),
      }),
  },
);
