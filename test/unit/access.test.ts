// Access: room patterns and grants, and the JWT verifier (JwtCredentials)
// called directly with real tokens signed here by jose — every refused token
// shape, each public key type as SPKI and as an X.509 certificate, and a real
// JWKS server on 127.0.0.1 (by `kid`, rotation, the unknown-`kid` cooldown).
import assert from "node:assert/strict";
import { createPrivateKey, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  UnsecuredJWT,
  exportJWK,
  exportPKCS8,
  exportSPKI,
  generateKeyPair,
  type GenerateKeyPairResult,
  type JWK,
} from "jose";
import { CredentialError, Grants, RoomPatterns, isRoomPattern } from "../../src/core/access.js";
import { JwtCredentials, type AuthOptions } from "../../src/gateway/auth.js";
import { makeTempDir } from "../../tools/process-harness.js";
import { certificateFor, opensslAvailable } from "../helpers/certs.js";
import { eventually } from "../helpers/eventually.js";
import {
  TEST_SECRET,
  hs256,
  nowSeconds,
  sign,
  startJwksServer,
  type JwksServer,
} from "../helpers/jwt.js";

const base: AuthOptions = {
  jwksCacheTtlMs: 600_000,
  jwksCooldownMs: 30_000,
  jwksTimeoutMs: 5_000,
  clockSkewMs: 30_000,
  defaultRooms: ["*"],
};

function credentials(opts: Partial<AuthOptions>): JwtCredentials {
  const creds = JwtCredentials.fromOptions({ ...base, ...opts });
  assert.ok(creds !== undefined, "authentication should be on");
  return creds;
}

const hmac = () => credentials({ secret: TEST_SECRET });

async function refused(creds: JwtCredentials, token: string): Promise<void> {
  await assert.rejects(creds.verify(token), (err: unknown) => {
    assert.ok(err instanceof CredentialError, `expected CredentialError, got ${String(err)}`);
    if (token.length > 8) assert.ok(!err.message.includes(token), "the reason holds no token");
    return true;
  });
}

describe("access - room patterns", () => {
  test("exact ids, prefixes ending in * and * match as written", () => {
    const p = new RoomPatterns(["lobby", "chat:*", "team-"]);
    assert.equal(p.matches("lobby"), true);
    assert.equal(p.matches("lobby2"), false);
    assert.equal(p.matches("chat:"), true);
    assert.equal(p.matches("chat:general"), true);
    assert.equal(p.matches("chat"), false);
    assert.equal(p.matches("team-"), true);
    assert.equal(p.matches("team-a"), false, "no * means exact");
    assert.equal(new RoomPatterns(["*"]).matches("anything:at-all"), true);
    assert.equal(new RoomPatterns([]).matches("lobby"), false);
  });

  test("isRoomPattern: *, a room id, or a prefix ending in *; * nowhere else", () => {
    for (const ok of ["*", "lobby", "chat:*", "a", "A-z_0.9:@*", "x".repeat(128)])
      assert.equal(isRoomPattern(ok), true, ok);
    for (const bad of ["", "**", "*chat", "ch*at", "chat:**", "room 1", "room/1", "x".repeat(129)])
      assert.equal(isRoomPattern(bad), false, bad);
  });

  test("grants: rooms may be joined and published to, read_rooms only joined", () => {
    const g = new Grants(["chat:*"], ["news", "feed:*"]);
    assert.equal(g.canJoin("chat:1"), true);
    assert.equal(g.canPublish("chat:1"), true);
    assert.equal(g.canJoin("news"), true);
    assert.equal(g.canPublish("news"), false);
    assert.equal(g.canJoin("feed:x"), true);
    assert.equal(g.canPublish("feed:x"), false);
    assert.equal(g.canJoin("other"), false);
    assert.equal(g.canPublish("other"), false);
    assert.equal(Grants.all.canPublish("anything"), true);
  });
});

describe("access - key configuration", () => {
  test("no key source: authentication is off", () => {
    assert.equal(JwtCredentials.fromOptions(base), undefined);
  });

  test("two key sources are a configuration error", async () => {
    const { publicKey } = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(publicKey);
    assert.throws(() => JwtCredentials.fromOptions({ ...base, secret: "s", publicKeyPem: pem }));
  });

  test("an algorithm that does not fit the key type is a configuration error", async () => {
    const { publicKey } = await generateKeyPair("RS256", { extractable: true });
    const pem = await exportSPKI(publicKey);
    assert.throws(() =>
      JwtCredentials.fromOptions({ ...base, publicKeyPem: pem, algorithms: ["HS256"] }),
    );
    assert.throws(() =>
      JwtCredentials.fromOptions({ ...base, secret: "s", algorithms: ["RS256"] }),
    );
  });
});

describe("access - HMAC tokens", () => {
  test("a good HS256 token gives the user, its expiry and the default grants", async () => {
    const exp = nowSeconds() + 600;
    const identity = await hmac().verify(await hs256("alice", { exp }, { expiresIn: null }));
    assert.equal(identity.userId, "alice");
    assert.equal(identity.expiresAt, exp * 1000);
    assert.equal(identity.grants.canPublish("any-room"), true);
  });

  test("HS384 and HS512 are accepted by default, and the secret is raw UTF-8", async () => {
    const creds = credentials({ secret: "ünïcode-sécret" });
    for (const alg of ["HS384", "HS512"]) {
      const t = await hs256("alice", {}, { alg }, "ünïcode-sécret");
      assert.equal((await creds.verify(t)).userId, "alice");
    }
  });

  test("a bad signature is refused", async () => {
    await refused(hmac(), await hs256("alice", {}, {}, "another-secret-entirely"));
    const good = await hs256("alice");
    const [h, p, s] = good.split(".");
    const flipped = s!.startsWith("A") ? `B${s!.slice(1)}` : `A${s!.slice(1)}`;
    await refused(hmac(), `${h}.${p}.${flipped}`);
  });

  test("expired beyond the skew is refused; within it, accepted", async () => {
    const creds = hmac(); // 30 s skew
    await refused(creds, await hs256("alice", {}, { expiresIn: -60 }));
    const within = await creds.verify(await hs256("alice", {}, { expiresIn: -10 }));
    assert.equal(within.userId, "alice");
    await refused(
      credentials({ secret: TEST_SECRET, clockSkewMs: 0 }),
      await hs256("alice", {}, { expiresIn: -2 }),
    );
  });

  test("nbf ahead (beyond the skew) is refused", async () => {
    await refused(hmac(), await hs256("alice", {}, { notBefore: 120 }));
    assert.equal((await hmac().verify(await hs256("a", {}, { notBefore: 10 }))).userId, "a");
  });

  test("alg none is refused, whatever the allowlist", async () => {
    const none = new UnsecuredJWT({ sub: "alice" }).setExpirationTime("10m").encode();
    await refused(hmac(), none);
    await refused(credentials({ secret: TEST_SECRET, algorithms: ["HS256"] }), none);
  });

  test("an algorithm outside AUTH_JWT_ALGORITHMS is refused", async () => {
    const creds = credentials({ secret: TEST_SECRET, algorithms: ["HS512"] });
    await refused(creds, await hs256("alice"));
    assert.equal((await creds.verify(await hs256("alice", {}, { alg: "HS512" }))).userId, "alice");
  });

  test("issuer and audience must match; aud may be an array containing it", async () => {
    const creds = credentials({
      secret: TEST_SECRET,
      issuer: "https://id.example",
      audience: "rc",
    });
    const ok = { iss: "https://id.example", aud: "rc" };
    assert.equal((await creds.verify(await hs256("alice", ok))).userId, "alice");
    assert.equal(
      (await creds.verify(await hs256("alice", { ...ok, aud: ["other", "rc"] }))).userId,
      "alice",
    );
    await refused(creds, await hs256("alice", { ...ok, iss: "https://evil.example" }));
    await refused(creds, await hs256("alice", { ...ok, aud: "other" }));
    await refused(creds, await hs256("alice", { ...ok, aud: ["other", "more"] }));
    await refused(creds, await hs256("alice", { aud: "rc" }));
    await refused(creds, await hs256("alice", { iss: "https://id.example" }));
  });

  test("sub and exp are required", async () => {
    const key = new TextEncoder().encode(TEST_SECRET);
    await refused(hmac(), await sign({}, key));
    await refused(hmac(), await sign({ sub: "" }, key));
    await refused(hmac(), await hs256("alice", {}, { expiresIn: null }));
  });

  test("garbage is refused", async () => {
    for (const junk of ["", "abc", "a.b.c", "not.a.jwt.at.all", "eyJhbGciOiJIUzI1NiJ9..", "🙂"])
      await refused(hmac(), junk);
  });
});

describe("access - grants from claims", () => {
  test("rooms grants join and publish, read_rooms only join", async () => {
    const id = await hmac().verify(
      await hs256("alice", { rooms: ["chat:*"], read_rooms: ["news"] }),
    );
    assert.equal(id.grants.canPublish("chat:1"), true);
    assert.equal(id.grants.canJoin("news"), true);
    assert.equal(id.grants.canPublish("news"), false);
    assert.equal(id.grants.canJoin("lobby"), false);
  });

  test("read_rooms alone grants no publishing", async () => {
    const id = await hmac().verify(await hs256("alice", { read_rooms: ["*"] }));
    assert.equal(id.grants.canJoin("x"), true);
    assert.equal(id.grants.canPublish("x"), false);
  });

  test("neither claim: AUTH_DEFAULT_ROOMS applies", async () => {
    const creds = credentials({ secret: TEST_SECRET, defaultRooms: ["lobby", "pub:*"] });
    const id = await creds.verify(await hs256("alice"));
    assert.equal(id.grants.canPublish("lobby"), true);
    assert.equal(id.grants.canPublish("pub:x"), true);
    assert.equal(id.grants.canJoin("private"), false);
    // An empty claim is present: it grants nothing, not the default.
    const none = await creds.verify(await hs256("alice", { rooms: [] }));
    assert.equal(none.grants.canJoin("lobby"), false);
  });

  test("invalid patterns grant nothing; a claim that is not an array is refused", async () => {
    const id = await hmac().verify(await hs256("alice", { rooms: ["ch*at", 7, "ok"] }));
    assert.equal(id.grants.canJoin("ok"), true);
    assert.equal(id.grants.canJoin("chat"), false);
    assert.equal(id.grants.canJoin("ch*at"), false);
    await refused(hmac(), await hs256("alice", { rooms: "*" }));
  });
});

describe("access - public keys", () => {
  const canCert = opensslAvailable();
  for (const alg of ["RS256", "PS256", "ES256", "EdDSA"]) {
    test(`${alg}: SPKI PEM, PEM file and X.509 certificate verify; others are refused`, async () => {
      const pair = await generateKeyPair(alg, { extractable: true });
      const spki = await exportSPKI(pair.publicKey);
      const token = await sign({ sub: "alice" }, pair.privateKey, { alg });
      const viaSpki = credentials({ publicKeyPem: spki });
      assert.equal((await viaSpki.verify(token)).userId, "alice");

      const dir = await makeTempDir("jwtkey");
      const file = join(dir, "key.pem");
      writeFileSync(file, spki);
      assert.equal((await credentials({ publicKeyFile: file }).verify(token)).userId, "alice");

      if (canCert) {
        const cert = await certificateFor(await exportPKCS8(pair.privateKey));
        assert.match(cert, /BEGIN CERTIFICATE/);
        assert.equal((await credentials({ publicKeyPem: cert }).verify(token)).userId, "alice");
      }

      // Another key of the same type: a bad signature.
      const other = await generateKeyPair(alg, { extractable: true });
      await refused(viaSpki, await sign({ sub: "alice" }, other.privateKey, { alg }));
      // Algorithm confusion: HS256 keyed with the public key's PEM text.
      const confused = await sign({ sub: "mallory" }, new TextEncoder().encode(spki), {
        alg: "HS256",
      });
      await refused(viaSpki, confused);
    });
  }

  test("one RSA key verifies the RS and PS families by default; an allowlist narrows it", async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    const spki = await exportSPKI(pair.publicKey);
    // A KeyObject, not the CryptoKey (which is bound to one hash).
    const key = createPrivateKey(await exportPKCS8(pair.privateKey));
    const open = credentials({ publicKeyPem: spki });
    const narrow = credentials({ publicKeyPem: spki, algorithms: ["RS256"] });
    for (const alg of ["RS384", "PS256", "PS512"]) {
      const t = await sign({ sub: "alice" }, key, { alg });
      assert.equal((await open.verify(t)).userId, "alice", alg);
      await refused(narrow, t);
    }
    assert.equal(
      (await narrow.verify(await sign({ sub: "a" }, key, { alg: "RS256" }))).userId,
      "a",
    );
  });
});

describe("access - JWKS", () => {
  const servers: JwksServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  async function keyWithKid(alg: string, kid: string): Promise<[GenerateKeyPairResult, JWK]> {
    const pair = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" };
    return [pair, jwk];
  }

  async function jwks(keys: JWK[]): Promise<JwksServer> {
    const s = await startJwksServer(keys);
    servers.push(s);
    return s;
  }

  test("keys are picked by kid, and the set is fetched once and cached", async () => {
    const [a, ja] = await keyWithKid("RS256", "a");
    const [b, jb] = await keyWithKid("ES256", "b");
    const server = await jwks([ja, jb]);
    const creds = credentials({ jwksUrl: server.url });
    for (let i = 0; i < 3; i++) {
      assert.equal(
        (await creds.verify(await sign({ sub: "ua" }, a.privateKey, { alg: "RS256", kid: "a" })))
          .userId,
        "ua",
      );
      assert.equal(
        (await creds.verify(await sign({ sub: "ub" }, b.privateKey, { alg: "ES256", kid: "b" })))
          .userId,
        "ub",
      );
    }
    assert.equal(server.requests, 1);
    // The right kid with the wrong key is a bad signature.
    await refused(creds, await sign({ sub: "x" }, b.privateKey, { alg: "ES256", kid: "a" }));
    // No kid: accepted only when exactly one key fits the alg.
    assert.equal(
      (await creds.verify(await sign({ sub: "nokid" }, b.privateKey, { alg: "ES256" }))).userId,
      "nokid",
    );
    const [c, jc] = await keyWithKid("ES256", "c");
    const two = await jwks([jb, jc]);
    await refused(
      credentials({ jwksUrl: two.url }),
      await sign({ sub: "nokid" }, c.privateKey, { alg: "ES256" }),
    );
    // HMAC is never accepted from a key set.
    await refused(creds, await hs256("mallory", {}, { kid: "a" }));
  });

  test("rotation: a new kid verifies without a restart, a removed one no longer does", async () => {
    const [old, jold] = await keyWithKid("ES256", "k-old");
    const [neu, jnew] = await keyWithKid("ES256", "k-new");
    const server = await jwks([jold]);
    const creds = credentials({ jwksUrl: server.url, jwksCooldownMs: 500 });
    const oldToken = await sign({ sub: "alice" }, old.privateKey, { alg: "ES256", kid: "k-old" });
    assert.equal((await creds.verify(oldToken)).userId, "alice");
    server.setKeys([jnew]);
    const newToken = await sign({ sub: "alice" }, neu.privateKey, { alg: "ES256", kid: "k-new" });
    const id = await eventually(() => creds.verify(newToken), { timeoutMs: 5_000 });
    assert.equal(id.userId, "alice");
    await refused(creds, oldToken);
  });

  test("a flood of unknown kids costs the key server at most one request per cooldown", async () => {
    const [k, jk] = await keyWithKid("ES256", "real");
    const server = await jwks([jk]);
    const cooldownMs = 1_000;
    const creds = credentials({ jwksUrl: server.url, jwksCooldownMs: cooldownMs });
    await creds.verify(await sign({ sub: "alice" }, k.privateKey, { alg: "ES256", kid: "real" }));
    const before = server.requests;
    const started = Date.now();
    let tokens = 0;
    while (Date.now() - started < 2_500) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, () =>
          sign({ sub: "mallory" }, k.privateKey, { alg: "ES256", kid: randomUUID() }),
        ),
      );
      const results = await Promise.allSettled(batch.map((t) => creds.verify(t)));
      assert.ok(results.every((r) => r.status === "rejected"));
      tokens += batch.length;
    }
    const elapsed = Date.now() - started;
    const fetched = server.requests - before;
    assert.ok(tokens >= 100, `only ${tokens} tokens tried`);
    assert.ok(fetched >= 1, "an unknown kid does refetch after the cooldown");
    assert.ok(
      fetched <= Math.ceil(elapsed / cooldownMs) + 1,
      `${fetched} fetches for ${tokens} unknown kids in ${elapsed} ms`,
    );
    // The real key still verifies throughout.
    assert.equal(
      (
        await creds.verify(
          await sign({ sub: "alice" }, k.privateKey, { alg: "ES256", kid: "real" }),
        )
      ).userId,
      "alice",
    );
  });

  test("an unreachable key server refuses the token (no crash, no hang)", async () => {
    const [k, jk] = await keyWithKid("ES256", "gone");
    const server = await jwks([jk]);
    const url = server.url;
    await server.close();
    const creds = credentials({ jwksUrl: url, jwksTimeoutMs: 1_000 });
    const started = Date.now();
    await refused(creds, await sign({ sub: "a" }, k.privateKey, { alg: "ES256", kid: "gone" }));
    assert.ok(Date.now() - started < 3_000);
  });
});
