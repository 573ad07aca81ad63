// The durable stores the end-to-end tests run against, one shape for all:
// start the backend the harness owns (a file dir, a private PostgreSQL, a
// private redis-server with AOF, a private Spanner emulator), hand out the
// node settings of an isolated store per name (a file, a database, a Redis
// database number, a Spanner database), and stop it. Several nodes given the
// same name share one store.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { postgresAvailable, startPostgres, type PostgresServer } from "./postgres.js";
import {
  REDIS_AOF_EVERYSEC,
  redisServerAvailable,
  startRedisServer,
  type RedisServer,
} from "./redis.js";
import { spannerEmulatorAvailable, startSpannerEmulator, type SpannerEmulator } from "./spanner.js";

export interface DurableBackend {
  readonly name: "sqlite" | "postgres" | "redis" | "spanner";
  /** Shared by several nodes (a cluster can use it). */
  readonly shared: boolean;
  /** Whether the backend's binaries exist (throws under CI=true when they do not). */
  available(): boolean;
  start(): Promise<void>;
  /** Node settings for the store called `name` (created on first use). */
  env(name: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

class SqliteBackend implements DurableBackend {
  readonly name = "sqlite";
  readonly shared = false;
  #dir = "";
  available(): boolean {
    return true;
  }
  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), "roomcast-e2e-"));
  }
  env(name: string): Promise<Record<string, string>> {
    return Promise.resolve({ STORE: "sqlite", SQLITE_PATH: join(this.#dir, `${name}.db`) });
  }
  async stop(): Promise<void> {
    await rm(this.#dir, { recursive: true, force: true });
  }
}

class PostgresBackend implements DurableBackend {
  readonly name = "postgres";
  readonly shared = true;
  #server: PostgresServer | undefined;
  readonly #urls = new Map<string, string>();
  available(): boolean {
    return postgresAvailable();
  }
  async start(): Promise<void> {
    this.#server = await startPostgres();
  }
  async env(name: string): Promise<Record<string, string>> {
    let url = this.#urls.get(name);
    if (url === undefined) {
      url = await this.#server!.createDatabase(name);
      this.#urls.set(name, url);
    }
    return { STORE: "postgres", POSTGRES_URL: url, POSTGRES_POOL_SIZE: "4" };
  }
  async stop(): Promise<void> {
    await this.#server?.close();
  }
}

export class RedisBackend implements DurableBackend {
  readonly name = "redis";
  readonly shared = true;
  /** The server, for outage tests. */
  server: RedisServer | undefined;
  readonly #dbs = new Map<string, number>();
  available(): boolean {
    return redisServerAvailable();
  }
  async start(): Promise<void> {
    this.server = await startRedisServer({ args: REDIS_AOF_EVERYSEC });
  }
  env(name: string): Promise<Record<string, string>> {
    // One Redis database number per store (a standalone server has 16).
    let db = this.#dbs.get(name);
    if (db === undefined) {
      db = this.#dbs.size;
      if (db > 15) throw new Error("more than 16 Redis stores in one test file");
      this.#dbs.set(name, db);
    }
    return Promise.resolve({ STORE: "redis", STORE_REDIS_URL: `${this.server!.url}/${db}` });
  }
  async stop(): Promise<void> {
    await this.server?.close();
  }
}

class SpannerBackend implements DurableBackend {
  readonly name = "spanner";
  readonly shared = true;
  #emulator: SpannerEmulator | undefined;
  readonly #ids = new Map<string, string>();
  available(): boolean {
    return spannerEmulatorAvailable();
  }
  async start(): Promise<void> {
    this.#emulator = await startSpannerEmulator();
  }
  env(name: string): Promise<Record<string, string>> {
    const emulator = this.#emulator!;
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = emulator.databaseId(name);
      this.#ids.set(name, id);
    }
    // The emulator runs one read-write transaction at a time; with several
    // nodes the losers are retried after a back-off of about a second, so
    // calls get more time than STORE_TIMEOUT's 2 s default.
    return Promise.resolve({ ...emulator.env(id), STORE_TIMEOUT: "20s" });
  }
  async stop(): Promise<void> {
    await this.#emulator?.close();
  }
}

export function sqliteBackend(): DurableBackend {
  return new SqliteBackend();
}
export function postgresBackend(): DurableBackend {
  return new PostgresBackend();
}
export function redisBackend(): RedisBackend {
  return new RedisBackend();
}
export function spannerBackend(): DurableBackend {
  return new SpannerBackend();
}
