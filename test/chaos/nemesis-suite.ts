// Issue 16: each nemesis (nemeses.ts) under steady load on a three-node
// cluster, on NATS and on Redis, with a private PostgreSQL store; after each
// run the checker (checker.ts) reads the whole history and the store and
// fails on any lost acknowledged message, duplicate, order violation or
// unexplained gap.
//
// One test file per broker (nemeses-nats.test.ts, nemeses-redis.test.ts),
// each its own process with one cluster. (With both clusters in one file the
// test runner at times never finished after the file's process had exited;
// not understood yet, and one file per broker has not shown it.)
//
// In `npm test` each of the six nemeses runs ROOMCAST_CHAOS_SECONDS (default
// 5: a few faults of each kind), the two proxied ones included: about 45 s
// per broker's file with the cluster's start and each run's settling.
// `npm run chaos` runs the long campaign: the same files with more seconds
// per nemesis and ROOMCAST_CHAOS_REPORT naming the file (docs/reliability.md)
// that gets each broker's results table. ROOMCAST_CHAOS_SEED repeats a run's
// fault schedule; ROOMCAST_CHAOS_NEMESES (comma-separated names) picks a subset.
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import { brokerKinds } from "../helpers/brokers.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { formatTable, type ResultRow } from "./checker.js";
import { ChaosCluster } from "./cluster.js";
import { nemeses, seededRandom } from "./nemeses.js";
import { writeResults } from "./report.js";
import { runScenario } from "./scenario.js";

const env = process.env;
const SECONDS = Number(env["ROOMCAST_CHAOS_SECONDS"] ?? 5);
const SEED = Number(env["ROOMCAST_CHAOS_SEED"] ?? Math.floor(Math.random() * 2 ** 31));
const REPORT = env["ROOMCAST_CHAOS_REPORT"];
const pick = (names: string | undefined) =>
  names === undefined || names === "" ? undefined : new Set(names.split(","));
const onlyNemeses = pick(env["ROOMCAST_CHAOS_NEMESES"]);
// Nodes reach their dependencies through TCP proxies, so the slow-links and
// cut-links nemeses can run; ROOMCAST_CHAOS_PROXIES=0 connects them directly
// and leaves those two out.
const PROXIED = env["ROOMCAST_CHAOS_PROXIES"] !== "0";

/** Every nemesis on a cluster with the broker named `brokerName`. */
export function chaosSuite(brokerName: string): void {
  const kind = brokerKinds.find((k) => k.name === brokerName);
  if (kind === undefined) throw new Error(`no broker kind ${brokerName}`);
  const random = seededRandom(SEED);
  const rows: ResultRow[] = [];
  // PostgreSQL is stopped and paused by nemeses: an external server cannot be.
  const pgUsable = postgresAvailable() && env["ROOMCAST_TEST_POSTGRES_URL"] === undefined;
  let pgServer: Promise<PostgresServer> | undefined;
  const postgres = (): Promise<PostgresServer> => (pgServer ??= startPostgres());

  after(async () => {
    if (pgServer !== undefined) await (await pgServer).close();
    if (rows.length === 0) return;
    console.log(`chaos results (seed ${SEED}):\n${formatTable(rows).join("\n")}`);
    if (REPORT !== undefined) {
      await writeResults(REPORT, kind.name, rows, {
        command: "npm run chaos",
        seed: SEED,
        secondsPerNemesis: SECONDS,
      });
    }
  });

  {
    describe(`chaos - ${kind.name}`, { skip: !kind.available() || !pgUsable }, () => {
      let cluster: ChaosCluster;
      before(async () => {
        cluster = await ChaosCluster.start({
          broker: kind,
          postgres: await postgres(),
          name: kind.name,
          proxied: PROXIED,
        });
      });
      after(async () => {
        await cluster?.close();
      });

      for (const nemesis of nemeses) {
        if (onlyNemeses !== undefined && !onlyNemeses.has(nemesis.name)) continue;
        if (nemesis.needsProxies === true && !PROXIED) continue;
        test(`chaos - ${nemesis.name} on ${kind.name}: no acked message lost, no duplicate, no order violation, no gap`, async (t: TestContext) => {
          const row = await runScenario(cluster, nemesis, { seconds: SECONDS, random });
          rows.push(row);
          for (const line of formatTable([row])) t.diagnostic(line);
          assert.ok(
            row.result.ok,
            `seed ${SEED}, ${row.faults}:\n${row.result.problems.join("\n")}`,
          );
        });
      }
    });
  }
}
