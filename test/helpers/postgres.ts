// A private PostgreSQL for tests: initdb + pg_ctl as the `postgres` user (initdb
// refuses root), data, socket and log in a temp dir, a free port, fsync off.
// stop() and start() keep the data dir and port, for outage tests. When
// ROOMCAST_TEST_POSTGRES_URL is set, that server is used instead and each
// startPostgres() gets a fresh database on it (it cannot be stopped then).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort, onExit } from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";

export interface PostgresServer {
  /** postgres://... of a database of this server's own. */
  readonly url: string;
  /** False for an external server (ROOMCAST_TEST_POSTGRES_URL): stop/start throw. */
  readonly canRestart: boolean;
  /** A URL to another fresh, empty database on the same server; `hint` goes into its name. */
  createDatabase(hint?: string): Promise<string>;
  /** Starts the server again on the same data dir and port after stop(). */
  start(): Promise<void>;
  /** "immediate" is a crash (no checkpoint, connections cut); "fast" a clean stop. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /**
   * SIGSTOP to the server and every backend: a hang, not a refusal (new
   * connections are accepted by the kernel and never answered; queries in
   * flight never return) until resume().
   */
  pause(): Promise<void>;
  /** SIGCONT to everything pause() stopped. */
  resume(): Promise<void>;
  /** Stops the server and removes its files (or drops the databases made on an external one). */
  close(): Promise<void>;
}

const EXTERNAL_URL = "ROOMCAST_TEST_POSTGRES_URL";

/** The folder holding initdb and pg_ctl, or undefined when PostgreSQL is not installed. */
export function binDir(): string | undefined {
  const out = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  const dir = out.status === 0 ? out.stdout.trim() : "";
  if (dir !== "" && existsSync(join(dir, "initdb"))) return dir;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  for (const v of versions)
    if (existsSync(join(root, v, "bin", "initdb"))) return join(root, v, "bin");
  return undefined;
}

/** Whether PostgreSQL tests can run; throws under CI=true when the binaries are missing. */
export function postgresAvailable(): boolean {
  if (process.env[EXTERNAL_URL] !== undefined) return true;
  return requireBinary(binDir() !== undefined, "PostgreSQL (initdb, pg_ctl)");
}

export async function startPostgres(): Promise<PostgresServer> {
  const external = process.env[EXTERNAL_URL];
  if (external !== undefined) {
    const server = new ExternalPostgres(external);
    await server.init();
    return server;
  }
  const bin = binDir();
  if (bin === undefined) throw new Error("PostgreSQL binaries (initdb, pg_ctl) not found");
  const server = new PrivatePostgres(bin);
  try {
    await server.init();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}

/** Runs a PostgreSQL binary as the `postgres` user (directly when not root). */
function runAsPostgres(command: string, args: readonly string[]): { ok: boolean; output: string } {
  const [file, argv] =
    process.getuid?.() === 0 && userInfo().username !== "postgres"
      ? ["runuser", ["-u", "postgres", "--", command, ...args]]
      : [command, [...args]];
  const out = spawnSync(file, argv, { encoding: "utf8", timeout: 60_000 });
  return {
    ok: out.status === 0,
    output: `${out.stdout ?? ""}${out.stderr ?? ""}${out.error?.message ?? ""}`,
  };
}

/** postgres user's uid/gid, so the temp dir can be handed over to it. */
function postgresIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) throw new Error("no `postgres` user to run initdb as");
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** A private server of this harness (see postgres-replicated.ts for a primary and its standby). */
export class PrivatePostgres implements PostgresServer {
  readonly canRestart = true;
  readonly #bin: string;
  readonly #dir: string;
  /** Extra `-c name=value` settings for every start. */
  readonly #settings: readonly string[];
  #port = 0;
  #running = false;
  #databases = 0;
  /** Processes stopped by pause(), the postmaster first. */
  #paused: number[] = [];
  readonly #cancelExitTask: () => void;

  constructor(bin: string, settings: readonly string[] = []) {
    this.#bin = bin;
    this.#settings = settings;
    this.#dir = mkdtempSync(join(tmpdir(), "roomcast-postgres-"));
    const ids = postgresIds();
    if (ids !== undefined) chownSync(this.#dir, ids.uid, ids.gid);
    // Still running when the test process ends: stopped in crash mode (quick)
    // and its files removed; `after` hooks do not run on a crash or a signal.
    this.#cancelExitTask = onExit(() => this.killSync(), { signals: true });
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.#port}/roomcast`;
  }

  get port(): number {
    return this.#port;
  }

  /**
   * Makes this server a streaming standby of `primary` (pg_basebackup -R: a
   * copy of its data and the settings to follow it) and starts it.
   */
  async initStandby(primary: PrivatePostgres): Promise<void> {
    const copy = runAsPostgres(join(this.#bin, "pg_basebackup"), [
      "-h",
      "127.0.0.1",
      "-p",
      String(primary.port),
      "-U",
      "postgres",
      "-D",
      join(this.#dir, "data"),
      "-R",
      "-X",
      "stream",
      // A spread checkpoint (the default) can take minutes; the primary is idle.
      "--checkpoint=fast",
      "--no-sync",
    ]);
    if (!copy.ok) throw new Error(`pg_basebackup failed: ${copy.output}`);
    await this.#startOnFreePort(false);
  }

  /** Ends recovery: the standby becomes a primary (pg_ctl promote, waiting for it). */
  promote(): Promise<void> {
    const promoted = runAsPostgres(join(this.#bin, "pg_ctl"), [
      "-D",
      join(this.#dir, "data"),
      "-w",
      "promote",
    ]);
    if (!promoted.ok) return Promise.reject(new Error(`pg_ctl promote failed: ${promoted.output}`));
    return Promise.resolve();
  }

  /** One statement on the server's `postgres` database. */
  admin(sql: string): Promise<void> {
    return this.#admin(sql);
  }

  async init(): Promise<void> {
    const init = runAsPostgres(join(this.#bin, "initdb"), [
      "-D",
      join(this.#dir, "data"),
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
      "--no-sync",
    ]);
    if (!init.ok) throw new Error(`initdb failed: ${init.output}`);
    await this.#startOnFreePort(true);
  }

  async #startOnFreePort(createDatabase: boolean): Promise<void> {
    // Another process may take the free port between the probe and the bind; try a few.
    let last = "";
    for (let attempt = 0; attempt < 3; attempt++) {
      this.#port = await freePort();
      const started = this.#pgCtlStart();
      if (started.ok) {
        this.#running = true;
        if (createDatabase) await this.#admin("CREATE DATABASE roomcast");
        return;
      }
      last = started.output;
    }
    throw new Error(`PostgreSQL did not start: ${last}`);
  }

  #pgCtlStart(): { ok: boolean; output: string } {
    const options = [
      `-p ${this.#port}`,
      `-k ${this.#dir}`,
      "-c listen_addresses=127.0.0.1",
      // fsync off is safe for tests: a crash of PostgreSQL (stop "immediate")
      // keeps what the OS has cached. synchronous_commit stays on, or a crash
      // would lose the last commits that outage tests check for.
      "-c fsync=off",
      "-c max_connections=200",
      ...this.#settings.map((setting) => `-c ${setting}`),
    ].join(" ");
    return runAsPostgres(join(this.#bin, "pg_ctl"), [
      "-D",
      join(this.#dir, "data"),
      "-l",
      join(this.#dir, "postgres.log"),
      "-o",
      options,
      "-w",
      "-t",
      "30",
      "start",
    ]);
  }

  async #admin(sql: string): Promise<void> {
    await adminQuery(`postgres://postgres@127.0.0.1:${this.#port}/postgres`, sql);
  }

  async createDatabase(hint = "db"): Promise<string> {
    this.#databases += 1;
    const name = `roomcast_${this.#databases}_${safeName(hint)}`;
    await this.#admin(`CREATE DATABASE ${name}`);
    return `postgres://postgres@127.0.0.1:${this.#port}/${name}`;
  }

  start(): Promise<void> {
    if (this.#running) return Promise.resolve();
    const started = this.#pgCtlStart();
    if (!started.ok) return Promise.reject(new Error(`pg_ctl start failed: ${started.output}`));
    this.#running = true;
    return Promise.resolve();
  }

  stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    if (!this.#running) return Promise.resolve();
    const stopped = runAsPostgres(join(this.#bin, "pg_ctl"), [
      "-D",
      join(this.#dir, "data"),
      "-m",
      mode,
      "-w",
      "stop",
    ]);
    if (!stopped.ok) return Promise.reject(new Error(`pg_ctl stop failed: ${stopped.output}`));
    this.#running = false;
    return Promise.resolve();
  }

  pause(): Promise<void> {
    if (!this.#running || this.#paused.length > 0) return Promise.resolve();
    const postmaster = this.#postmasterPid();
    // The postmaster first, so it forks no backend that would escape the stop.
    signalQuietly(postmaster, "SIGSTOP");
    this.#paused = [postmaster, ...descendants(postmaster)];
    for (const pid of this.#paused.slice(1)) signalQuietly(pid, "SIGSTOP");
    return Promise.resolve();
  }

  resume(): Promise<void> {
    for (const pid of this.#paused.splice(0).reverse()) signalQuietly(pid, "SIGCONT");
    return Promise.resolve();
  }

  #postmasterPid(): number {
    const file = join(this.#dir, "data", "postmaster.pid");
    const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${file}`);
    return pid;
  }

  async close(): Promise<void> {
    await this.resume();
    await this.stop("immediate").catch(() => undefined);
    this.killSync();
  }

  /** Synchronous stop and cleanup, safe in an exit handler. */
  killSync(): void {
    for (const pid of this.#paused.splice(0)) signalQuietly(pid, "SIGCONT");
    if (this.#running) {
      runAsPostgres(join(this.#bin, "pg_ctl"), [
        "-D",
        join(this.#dir, "data"),
        "-m",
        "immediate",
        "-w",
        "stop",
      ]);
      this.#running = false;
    }
    this.#cancelExitTask();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

class ExternalPostgres implements PostgresServer {
  readonly canRestart = false;
  readonly #base: string;
  readonly #made: string[] = [];
  #url = "";

  constructor(base: string) {
    this.#base = base;
  }

  get url(): string {
    return this.#url;
  }

  async init(): Promise<void> {
    this.#url = await this.createDatabase();
  }

  async #admin(sql: string): Promise<void> {
    await adminQuery(this.#base, sql);
  }

  async createDatabase(hint = "db"): Promise<string> {
    const name = `roomcast_test_${safeName(hint)}_${process.pid}_${randomBytes(4).toString("hex")}`;
    await this.#admin(`CREATE DATABASE ${name}`);
    this.#made.push(name);
    const url = new URL(this.#base);
    url.pathname = `/${name}`;
    return url.toString();
  }

  start(): Promise<void> {
    return Promise.reject(new Error(`cannot restart the server of ${EXTERNAL_URL}`));
  }

  stop(): Promise<void> {
    return Promise.reject(new Error(`cannot stop the server of ${EXTERNAL_URL}`));
  }

  pause(): Promise<void> {
    return Promise.reject(new Error(`cannot pause the server of ${EXTERNAL_URL}`));
  }

  resume(): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    for (const name of this.#made.splice(0)) {
      // WITH (FORCE) (PostgreSQL 13+) ends connections a test left open.
      await this.#admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    }
  }
}

/** Every process below `pid` (Linux /proc), children before grandchildren. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(join("/proc", entry, "stat"), "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const kids = parents.get(ppid) ?? [];
    kids.push(Number(entry));
    parents.set(ppid, kids);
  }
  const out: number[] = [];
  const queue = [pid];
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    for (const kid of parents.get(next) ?? []) {
      out.push(kid);
      queue.push(kid);
    }
  }
  return out;
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** One statement on its own connection (CREATE and DROP DATABASE cannot run in a transaction). */
async function adminQuery(connectionString: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Keeps a database name a plain identifier (no quoting needed, within 63 bytes). */
function safeName(hint: string): string {
  return hint
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 24);
}
