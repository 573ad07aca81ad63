// Authentication, room ACLs, refresh, expiry, connection limits and native
// TLS end to end: real server processes, real ws clients, real HS256 tokens
// signed here, a real TLS handshake with a certificate made by openssl, and a
// three-node cluster (NATS + PostgreSQL) with authentication on.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair } from "jose";
import { makeTempDir } from "../../tools/process-harness.js";
import { opensslAvailable, selfSignedCert, type CertPair } from "../helpers/certs.js";
import { TestClient, type Closed, type ConnectOptions } from "../helpers/client.js";
import { eventually } from "../helpers/eventually.js";
import {
  TEST_SECRET,
  hs256,
  nowSeconds,
  sign,
  startJwksServer,
  type JwksServer,
  type SignOptions,
} from "../helpers/jwt.js";
import { natsServerAvailable, startNatsServer, type NatsServer } from "../helpers/nats.js";
import { postgresAvailable, startPostgres, type PostgresServer } from "../helpers/postgres.js";
import { startServer, type ServerProcess } from "../helpers/server.js";

const AUTH = { AUTH_JWT_SECRET: TEST_SECRET };
const servers: ServerProcess[] = [];
const clients: TestClient[] = [];
/** Every token (JWT or resume) any test used: none may appear in a log line. */
const secrets: string[] = [];
/** Raw stdout and stderr of every server, for the log check. */
const output = new Map<ServerProcess, string[]>();

after(async () => {
  for (const c of clients) c.ws.terminate();
  for (const s of servers) await s.stop();
});

async function server(env: Record<string, string>): Promise<ServerProcess> {
  const s = await startServer(env);
  servers.push(s);
  const chunks: string[] = [];
  output.set(s, chunks);
  s.child.stdout?.on("data", (b: Buffer) => chunks.push(b.toString("utf8")));
  s.child.stderr?.on("data", (b: Buffer) => chunks.push(b.toString("utf8")));
  return s;
}

/** An HS256 token with the test secret, remembered for the log check. */
async function token(sub: string, claims: Record<string, unknown> = {}, opts: SignOptions = {}) {
  const t = await hs256(sub, claims, opts);
  secrets.push(t);
  return t;
}

const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

async function open(
  s: ServerProcess,
  jwt: string | undefined,
  opts: ConnectOptions & { url?: string } = {},
): Promise<[TestClient, Record<string, unknown>]> {
  const headers = { ...(jwt !== undefined && bearer(jwt)), ...opts.headers };
  const pair = await TestClient.open(opts.url ?? s.wsUrl, { ...opts, headers });
  clients.push(pair[0]);
  secrets.push(String(pair[1]["token"]));
  return pair;
}

async function joined(c: TestClient, room: string): Promise<void> {
  c.send({ join_room: { room_id: room } });
  await c.next("room_joined", 5000, (j) => j["room_id"] === room);
}

async function publish(c: TestClient, room: string, content: string): Promise<string> {
  c.send({ message: { target: room, content } });
  return String((await c.next("ack", 5000, (a) => a["room_id"] === room))["offset"]);
}

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A raw WebSocket handshake: the HTTP answer, or 101 (the socket is then dropped). */
function handshake(
  s: ServerProcess,
  headers: Record<string, string> = {},
  query = "",
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port: s.port,
      path: `/ws${query}`,
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        ...headers,
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: 101, headers: res.headers, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

function assertUnauthorized(a: Answer): void {
  assert.equal(a.status, 401);
  assert.equal(a.headers["www-authenticate"], "Bearer");
  assert.equal((JSON.parse(a.body) as { error: { code: string } }).error.code, "unauthorized");
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe("auth - one node", () => {
  let s: ServerProcess;
  before(async () => {
    // SQLite here (memory elsewhere, PostgreSQL in the cluster): sessions on every store.
    const dir = await makeTempDir("auth");
    s = await server({
      ...AUTH,
      LOG_LEVEL: "debug",
      STORE: "sqlite",
      SQLITE_PATH: join(dir, "roomcast.db"),
    });
  });

  test("handshake - missing, malformed, badly signed or expired tokens get 401 Bearer", async () => {
    assertUnauthorized(await handshake(s));
    assertUnauthorized(await handshake(s, { Authorization: "Bearer" }));
    assertUnauthorized(await handshake(s, { Authorization: "Basic YWxpY2U6cHc=" }));
    assertUnauthorized(await handshake(s, bearer("garbage")));
    const other = await hs256("alice", {}, {}, "not-the-server-secret");
    secrets.push(other);
    assertUnauthorized(await handshake(s, bearer(other)));
    assertUnauthorized(await handshake(s, bearer(await token("alice", {}, { expiresIn: -120 }))));
    assertUnauthorized(await handshake(s, bearer(await token("alice", {}, { notBefore: 300 }))));
    assertUnauthorized(await handshake(s, {}, `?token=${other}`));
    assert.equal((await handshake(s, bearer(await token("alice")))).status, 101);
    assert.equal((await handshake(s, {}, `?token=${await token("alice")}`)).status, 101);
  });

  test("handshake - Authorization: Bearer wins over ?token=", async () => {
    const good = await token("alice");
    const bad = "garbage.token.here";
    assert.equal((await handshake(s, bearer(good), `?token=${bad}`)).status, 101);
    assertUnauthorized(await handshake(s, bearer(bad), `?token=${good}`));
    const [, session] = await open(s, undefined, { url: `${s.wsUrl}?token=${good}` });
    assert.equal(session["user_id"], "alice");
  });

  test("session - user_id and expires_at (the token's exp)", async () => {
    const exp = nowSeconds() + 900;
    const [, session] = await open(s, await token("alice", { exp }, { expiresIn: null }));
    assert.equal(session["user_id"], "alice");
    assert.equal(Date.parse(String(session["expires_at"])), exp * 1000);
    assert.equal(session["resumed"], false);
  });

  test("messages - carry the publisher's user_id, live and replayed after a resume", async () => {
    const room = "talk";
    const [alice, sa] = await open(s, await token("alice"));
    const [bob, sb] = await open(s, await token("bob"));
    await joined(alice, room);
    await joined(bob, room);
    await publish(alice, room, "live");
    for (const c of [alice, bob]) {
      const m = await c.next("message");
      assert.deepEqual([m["user_id"], m["sender_id"]], ["alice", sa["member_id"]]);
    }
    bob.send({ ack: { room_id: room, offset: "1" } });
    bob.close();
    await bob.closed;
    await publish(alice, room, "missed-1");
    await publish(alice, room, "missed-2");
    const [bob2, sb2] = await open(s, await token("bob"), { session: String(sb["token"]) });
    assert.equal(sb2["resumed"], true);
    const replay = [await bob2.next("message"), await bob2.next("message")];
    assert.deepEqual(
      replay.map((m) => [m["offset"], m["user_id"], m["content"]]),
      [
        ["2", "alice", "missed-1"],
        ["3", "alice", "missed-2"],
      ],
    );
  });

  test("acl - a join outside the grants is forbidden (ref room_id), no room_joined", async () => {
    const [c] = await open(s, await token("carol", { rooms: ["chat:*"], read_rooms: ["news"] }));
    c.send({ join_room: { room_id: "secret" } });
    const err = await c.next("error");
    assert.deepEqual([err["code"], err["ref"]], ["forbidden", "secret"]);
    await joined(c, "chat:1");
    await joined(c, "news");
    assert.deepEqual(
      c.all("room_joined").map((j) => j["room_id"]),
      ["chat:1", "news"],
    );
  });

  test("acl - a publish to a read-only room is forbidden (ref message_id), nothing stored or delivered", async () => {
    const room = "ro-room";
    const [reader] = await open(s, await token("reader", { rooms: ["own"], read_rooms: [room] }));
    const [writer] = await open(s, await token("writer", { rooms: [room] }));
    await joined(reader, room);
    await joined(writer, room);
    reader.send({ message: { target: room, content: "nope", message_id: "mine-1" } });
    const e1 = await reader.next("error");
    assert.deepEqual([e1["code"], e1["ref"]], ["forbidden", "mine-1"]);
    reader.send({ message: { target: room, content: "nope again" } });
    const e2 = await reader.next("error");
    assert.equal(e2["code"], "forbidden");
    assert.match(String(e2["ref"]), /^[0-9a-f-]{36}$/, "the server-filled message_id");
    assert.equal(await publish(writer, room, "allowed"), "1", "nothing was stored before");
    for (const c of [reader, writer]) {
      const m = await c.next("message");
      assert.deepEqual([m["offset"], m["content"], m["user_id"]], ["1", "allowed", "writer"]);
    }
    assert.equal(reader.all("ack").length, 0);
    assert.equal(reader.all("message").length, 1);
    assert.equal(writer.all("message").length, 1);
  });

  test("resume - rejoins only the rooms the new token grants", async () => {
    const [a, sa] = await open(s, await token("dave", { rooms: ["r1", "r2"] }));
    await joined(a, "r1");
    await joined(a, "r2");
    a.close();
    await a.closed;
    const [a2, s2] = await open(s, await token("dave", { rooms: ["r1"] }), {
      session: String(sa["token"]),
    });
    assert.equal(s2["resumed"], true);
    assert.deepEqual(s2["rooms"], ["r1"]);
    assert.equal(await publish(a2, "r1", "still here"), "1");
    assert.deepEqual(
      a2.all("room_joined").map((j) => j["room_id"]),
      ["r1"],
    );
  });

  test("resume - another user's resume token gives a fresh session", async () => {
    // A live session: not taken over by another user.
    const [alice, sa] = await open(s, await token("alice"));
    const [mallory, sm] = await open(s, await token("mallory"), { session: String(sa["token"]) });
    assert.equal(sm["resumed"], false);
    assert.notEqual(sm["member_id"], sa["member_id"]);
    assert.equal(sm["user_id"], "mallory");
    await joined(alice, "after-attempt");
    assert.equal(alice.ws.readyState, alice.ws.OPEN);
    // A disconnected session: not resumed by another user either.
    const [eve, se] = await open(s, await token("eve"));
    await joined(eve, "eve-room");
    eve.close();
    await eve.closed;
    const [, sx] = await open(s, await token("mallory"), { session: String(se["token"]) });
    assert.deepEqual([sx["resumed"], sx["rooms"]], [false, []]);
    assert.notEqual(sx["member_id"], se["member_id"]);
    mallory.close();
    // The owner's token still resumes the owner's session.
    const [, s2] = await open(s, await token("eve"), { session: String(se["token"]) });
    assert.deepEqual(
      [s2["resumed"], s2["member_id"], s2["rooms"]],
      [true, se["member_id"], ["eve-room"]],
    );
  });

  test("refresh - a new token for the same user: refreshed{expires_at}, ungranted rooms left", async () => {
    const [c] = await open(s, await token("erin", { rooms: ["k1", "k2"] }));
    await joined(c, "k1");
    await joined(c, "k2");
    const exp = nowSeconds() + 1800;
    c.send({
      refresh: { token: await token("erin", { rooms: ["k1"], exp }, { expiresIn: null }) },
    });
    const r = await c.next("refreshed");
    assert.equal(Date.parse(String(r["expires_at"])), exp * 1000);
    assert.equal((await c.next("room_left"))["room_id"], "k2");
    assert.equal(await publish(c, "k1", "ok"), "1");
    c.send({ join_room: { room_id: "k2" } });
    const err = await c.next("error");
    assert.deepEqual([err["code"], err["ref"]], ["forbidden", "k2"]);
  });

  test("refresh - a bad token or another user's gets unauthorized and changes nothing", async () => {
    const [c] = await open(s, await token("frank", { rooms: ["f1", "f2"] }));
    await joined(c, "f1");
    await joined(c, "f2");
    const wrongKey = await hs256("frank", { rooms: ["f1"] }, {}, "not-the-server-secret");
    const expired = await token("frank", { rooms: ["f1"] }, { expiresIn: -120 });
    const otherUser = await token("grace", { rooms: ["f1"] });
    secrets.push(wrongKey);
    for (const t of [wrongKey, expired, otherUser, "garbage"]) {
      c.send({ refresh: { token: t } });
      assert.equal((await c.next("error"))["code"], "unauthorized");
    }
    assert.equal(await publish(c, "f2", "still granted"), "1");
    assert.equal(c.all("refreshed").length, 0);
    assert.equal(c.all("room_left").length, 0);
    assert.equal((await c.next("message"))["user_id"], "frank");
  });

  test("logs - no token ever appears in a log line (LOG_LEVEL=debug)", () => {
    const text = output.get(s)!.join("");
    assert.ok(
      s.logs.some((r) => r["level"] === 20),
      "debug records are written",
    );
    assert.ok(secrets.length > 20);
    for (const t of secrets) assert.ok(!text.includes(t), "a token reached the log");
    // Not even the signature part on its own.
    for (const t of secrets)
      if (t.split(".").length === 3) assert.ok(!text.includes(t.split(".")[2]!));
  });
});

describe("auth - public keys and JWKS", () => {
  const jwksServers: JwksServer[] = [];
  after(async () => {
    for (const j of jwksServers) await j.close();
  });

  test("AUTH_JWT_PUBLIC_KEY: RS256 accepted; alg none and HS256 keyed with the PEM text get 401", async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(pair.publicKey);
    const s = await server({ AUTH_JWT_PUBLIC_KEY: pem });
    const good = await sign({ sub: "rsa-user" }, pair.privateKey, { alg: "RS256" });
    const confused = await sign({ sub: "mallory" }, new TextEncoder().encode(pem), {
      alg: "HS256",
    });
    const none = new UnsecuredJWT({ sub: "mallory" }).setExpirationTime("10m").encode();
    secrets.push(good, confused);
    const [, session] = await open(s, good);
    assert.equal(session["user_id"], "rsa-user");
    assertUnauthorized(await handshake(s, bearer(confused)));
    assertUnauthorized(await handshake(s, bearer(none)));
  });

  test("AUTH_JWKS_URL: keys by kid; unknown kids cost one fetch per cooldown; a dead key server is 401", async () => {
    const pair = await generateKeyPair("ES256", { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
    const jwks = await startJwksServer([jwk]);
    jwksServers.push(jwks);
    const s = await server({
      AUTH_JWKS_URL: jwks.url,
      AUTH_JWKS_COOLDOWN: "1s",
      AUTH_JWKS_TIMEOUT: "1s",
    });
    const good = await sign({ sub: "jwks-user" }, pair.privateKey, { alg: "ES256", kid: "k1" });
    secrets.push(good);
    const [, session] = await open(s, good);
    assert.equal(session["user_id"], "jwks-user");
    const before = jwks.requests;
    const started = Date.now();
    for (let i = 0; i < 40; i++) {
      const t = await sign({ sub: "m" }, pair.privateKey, { alg: "ES256", kid: `x${i}` });
      assertUnauthorized(await handshake(s, bearer(t)));
    }
    const elapsed = Date.now() - started;
    assert.ok(
      jwks.requests - before <= Math.ceil(elapsed / 1000) + 1,
      `${jwks.requests - before} fetches in ${elapsed} ms`,
    );
    // The key server goes away: unknown kids are refused, the node keeps serving.
    await jwks.close();
    const orphan = await sign({ sub: "m" }, pair.privateKey, { alg: "ES256", kid: "later" });
    await eventually(async () => (await handshake(s, bearer(orphan))).status === 401);
    assert.equal((await handshake(s, bearer(good))).status, 101, "cached keys still verify");
  });
});

describe("auth - expiry", () => {
  test("a credential not refreshed closes with 4501 on time; a refreshed one stays; the session resumes", async () => {
    const s = await server({ ...AUTH, AUTH_CLOCK_SKEW: "0s" });
    const exp = nowSeconds() + 2;
    const [a, sa] = await open(s, await token("henry", { exp }, { expiresIn: null }));
    const [b] = await open(s, await token("henry", { exp }, { expiresIn: null }));
    await joined(a, "h");
    await joined(b, "h");
    b.send({ refresh: { token: await token("henry") } });
    await b.next("refreshed");
    const closed: Closed = await withTimeout(a.closed, 5_000, "4501 close");
    const at = Date.now();
    assert.equal(closed.code, 4501);
    assert.ok(at >= exp * 1000 - 50, `closed ${exp * 1000 - at} ms early`);
    assert.ok(at <= exp * 1000 + 1_000, `closed ${at - exp * 1000} ms late`);
    // The refreshed connection lives past the old expiry.
    assert.equal(await publish(b, "h", "alive"), "1");
    assert.equal(b.ws.readyState, b.ws.OPEN);
    // The expired connection's session resumes with a new token.
    const [, s2] = await open(s, await token("henry"), { session: String(sa["token"]) });
    assert.deepEqual([s2["resumed"], s2["member_id"], s2["rooms"]], [true, sa["member_id"], ["h"]]);
  });
});

describe("auth - connection limits", () => {
  function assertRefused(a: Answer, status: number, code: string): void {
    assert.equal(a.status, status);
    assert.ok(Number(a.headers["retry-after"]) >= 1, "Retry-After");
    assert.equal((JSON.parse(a.body) as { error: { code: string } }).error.code, code);
  }

  test("MAX_CONNECTIONS: 503 with Retry-After; a closed socket gives its slot back", async () => {
    const s = await server({ ...AUTH, MAX_CONNECTIONS: "2" });
    const [a] = await open(s, await token("u1"));
    await open(s, await token("u2"));
    assertRefused(await handshake(s, bearer(await token("u3"))), 503, "unavailable");
    a.close();
    await a.closed;
    const [c] = await eventually(async () => open(s, await token("u3")));
    assert.equal(c.ws.readyState, c.ws.OPEN);
  });

  test("MAX_CONNECTIONS_PER_USER: 429 with Retry-After for that user only; slots come back", async () => {
    const s = await server({ ...AUTH, MAX_CONNECTIONS_PER_USER: "2" });
    const [a] = await open(s, await token("ivy"));
    await open(s, await token("ivy"));
    assertRefused(await handshake(s, bearer(await token("ivy"))), 429, "rate_limited");
    await open(s, await token("jack"));
    a.close();
    await a.closed;
    await eventually(async () => open(s, await token("ivy")));
  });

  test("MAX_CONNECTIONS_PER_IP with TRUST_PROXY: each forwarded address has its own budget", async () => {
    const s = await server({ ...AUTH, MAX_CONNECTIONS_PER_IP: "2", TRUST_PROXY: "1" });
    const from = (ip: string) => ({ "X-Forwarded-For": ip });
    for (const ip of ["10.0.0.1", "10.0.0.2"]) {
      await open(s, await token("k"), { headers: from(ip) });
      await open(s, await token("k"), { headers: from(`198.51.100.7, ${ip}`) });
      assertRefused(
        await handshake(s, { ...bearer(await token("k")), ...from(ip) }),
        429,
        "rate_limited",
      );
    }
    // The socket's own address is a third budget.
    await open(s, await token("k"));
    await open(s, await token("k"));
    assertRefused(await handshake(s, bearer(await token("k"))), 429, "rate_limited");
  });

  test("MAX_CONNECTIONS_PER_IP without TRUST_PROXY: X-Forwarded-For is ignored", async () => {
    const s = await server({ ...AUTH, MAX_CONNECTIONS_PER_IP: "2" });
    const [a] = await open(s, await token("l"), { headers: { "X-Forwarded-For": "10.0.0.1" } });
    await open(s, await token("l"), { headers: { "X-Forwarded-For": "10.0.0.2" } });
    const third = await handshake(s, {
      ...bearer(await token("l")),
      "X-Forwarded-For": "10.0.0.3",
    });
    assertRefused(third, 429, "rate_limited");
    a.close();
    await a.closed;
    await eventually(async () => open(s, await token("l")));
  });
});

describe("auth - TLS", { skip: !opensslAvailable() }, () => {
  let s: ServerProcess;
  let dir: string;
  let first: CertPair;
  let wss: string;

  function install(pair: CertPair): void {
    // Write beside, then rename: the server never reads a half-written file.
    for (const [name, text] of [
      ["key.pem", pair.keyPem],
      ["cert.pem", pair.certPem],
    ] as const) {
      writeFileSync(join(dir, `${name}.tmp`), text);
      renameSync(join(dir, `${name}.tmp`), join(dir, name));
    }
  }

  /** The certificate a new TLS handshake sees. */
  function fingerprint(): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect(
        { host: "127.0.0.1", port: s.port, servername: "localhost", rejectUnauthorized: false },
        () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        },
      );
      socket.on("error", reject);
    });
  }

  async function echo(c: TestClient, room: string): Promise<void> {
    await joined(c, room);
    await publish(c, room, "over tls");
    assert.equal((await c.next("message", 5000, (m) => m["target"] === room))["target"], room);
  }

  before(async () => {
    dir = await makeTempDir("tls");
    first = await selfSignedCert();
    install(first);
    s = await server({
      TLS_CERT_FILE: join(dir, "cert.pem"),
      TLS_KEY_FILE: join(dir, "key.pem"),
    });
    wss = `wss://localhost:${s.port}/ws`;
  });

  test("wss:// works with the certificate trusted; plain ws:// and an untrusted client are refused", async () => {
    const [c, session] = await open(s, undefined, { url: wss, ca: first.certPem });
    assert.equal(session["resumed"], false);
    await echo(c, "tls-1");
    assert.equal(await fingerprint(), first.fingerprint256);
    await assert.rejects(TestClient.connect(s.wsUrl));
    await assert.rejects(TestClient.connect(wss), /self[- ]signed|certificate/i);
  });

  test("a replaced certificate is picked up by new handshakes; open sockets stay open", async () => {
    const [old] = await open(s, undefined, { url: wss, ca: first.certPem });
    const next = await selfSignedCert();
    install(next);
    await eventually(async () => (await fingerprint()) === next.fingerprint256, {
      timeoutMs: 10_000,
    });
    const [c] = await open(s, undefined, { url: wss, ca: next.certPem });
    await echo(c, "tls-2");
    await echo(old, "tls-3");
    assert.equal(old.ws.readyState, old.ws.OPEN);
    first = next;
  });

  test("SIGHUP re-reads the certificate; open sockets stay open", async () => {
    const [old] = await open(s, undefined, { url: wss, ca: first.certPem });
    const reloads = () => s.logs.filter((r) => r["msg"] === "TLS certificate reloaded").length;
    const before = reloads();
    s.child.kill("SIGHUP");
    // Unchanged files: only the signal can have caused this reload.
    await eventually(() => reloads() === before + 1);
    assert.equal(await fingerprint(), first.fingerprint256);
    const next = await selfSignedCert();
    install(next);
    s.child.kill("SIGHUP");
    await eventually(async () => (await fingerprint()) === next.fingerprint256);
    const [c] = await open(s, undefined, { url: wss, ca: next.certPem });
    await echo(c, "tls-4");
    await echo(old, "tls-5");
  });
});

describe("auth - off", () => {
  test("without a key: a warning at start, and everything works as before", async () => {
    const s = await server({});
    const warning = s.logs.find((r) =>
      String(r["msg"]).startsWith("running without authentication"),
    );
    assert.equal(warning?.["level"], 40);
    const [c, session] = await open(s, undefined);
    assert.ok(!session["user_id"], "no user_id");
    assert.equal(session["expires_at"], undefined);
    // A token is not even looked at.
    const [d] = await open(s, "garbage", { url: `${s.wsUrl}?token=garbage` });
    await joined(c, "anything");
    await joined(d, "anything");
    await publish(c, "anything", "hi");
    for (const x of [c, d]) assert.ok(!(await x.next("message"))["user_id"]);
    c.send({ refresh: { token: await token("alice") } });
    assert.equal((await c.next("error"))["code"], "bad_request");
  });
});

const clusterSkip = !natsServerAvailable() || !postgresAvailable();
describe("auth - cluster (NATS + PostgreSQL, three nodes)", { skip: clusterSkip }, () => {
  let nats: NatsServer;
  let pg: PostgresServer;
  const nodes: ServerProcess[] = [];

  before(async () => {
    nats = await startNatsServer();
    pg = await startPostgres();
    const url = await pg.createDatabase("auth_cluster");
    const env = {
      ...AUTH,
      BROKER: "nats",
      NATS_URL: nats.url,
      STORE: "postgres",
      POSTGRES_URL: url,
      POSTGRES_POOL_SIZE: "4",
      GAP_WAIT: "30ms",
      ACK_FLUSH_INTERVAL: "100ms",
    };
    for (let i = 0; i < 3; i++) nodes.push(await server(env));
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    for (const n of nodes) await n.stop();
    await nats.close();
    await pg.close();
  });

  test("a user's sockets on three nodes: a publish from one carries user_id to all", async () => {
    const room = "everywhere";
    const mine = [];
    for (const n of nodes) {
      const [c] = await open(n, await token("zoe"));
      await joined(c, room);
      mine.push(c);
    }
    const [other] = await open(nodes[2]!, await token("yan", { read_rooms: [room] }));
    await joined(other, room);
    assert.equal(await publish(mine[1]!, room, "from node 1"), "1");
    for (const c of [...mine, other]) {
      const m = await c.next("message", 15_000);
      assert.deepEqual([m["offset"], m["user_id"], m["content"]], ["1", "zoe", "from node 1"]);
    }
    other.send({ message: { target: room, content: "read only", message_id: "ro-1" } });
    assert.deepEqual(
      [(await other.next("error"))["code"], other.all("error")[0]!["ref"]],
      ["forbidden", "ro-1"],
    );
    assert.equal(await publish(mine[2]!, room, "next"), "2", "nothing stored for the refused one");
  });

  test("a resume on another node by another user gives a fresh session; the owner's stays", async () => {
    const [owner, so] = await open(nodes[0]!, await token("zoe"));
    await joined(owner, "zoe-room");
    const [thief, st] = await open(nodes[1]!, await token("mallory"), {
      session: String(so["token"]),
    });
    assert.deepEqual([st["resumed"], st["user_id"], st["rooms"]], [false, "mallory", []]);
    assert.notEqual(st["member_id"], so["member_id"]);
    // No cross-node takeover: the owner's socket still works.
    assert.equal(await publish(owner, "zoe-room", "mine"), "1");
    assert.equal(owner.ws.readyState, owner.ws.OPEN);
    thief.close();
    // The owner's token still resumes (here: takes over) the owner's session, on a third node.
    const [moved, s2] = await open(nodes[2]!, await token("zoe"), { session: String(so["token"]) });
    assert.deepEqual([s2["resumed"], s2["member_id"]], [true, so["member_id"]]);
    assert.equal((await owner.closed).code, 4001);
    assert.equal((await moved.next("room_joined"))["room_id"], "zoe-room");
  });
});

test("logs - no token appears in any server's output", () => {
  assert.ok(output.size >= 10);
  for (const [s, chunks] of output) {
    const text = chunks.join("");
    for (const t of secrets) assert.ok(!text.includes(t), `a token reached the log of :${s.port}`);
  }
});
