// A multi-host POSTGRES_URL split into one URL per host, as libpq reads it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePostgresHosts } from "../../src/adapters/store/postgres-hosts.js";

test("postgres hosts - one host passes through as it is", () => {
  assert.deepEqual(parsePostgresHosts("postgres://u:p@db:5432/rc?sslmode=require"), {
    urls: ["postgres://u:p@db:5432/rc?sslmode=require"],
    targetSessionAttrs: "any",
  });
});

test("postgres hosts - several hosts keep credentials, database and parameters, in order", () => {
  const parsed = parsePostgresHosts(
    "postgresql://u:p%40ss@a:5432,b,[::1]:5433/rc?target_session_attrs=read-write&application_name=x",
  );
  assert.equal(parsed.targetSessionAttrs, "read-write");
  assert.deepEqual(parsed.urls, [
    "postgresql://u:p%40ss@a:5432/rc?application_name=x",
    "postgresql://u:p%40ss@b/rc?application_name=x",
    "postgresql://u:p%40ss@[::1]:5433/rc?application_name=x",
  ]);
});

test("postgres hosts - URLs without a host list pass through", () => {
  for (const url of ["postgres:///rc?host=/run/postgresql", "socket:/run/postgresql?db=rc"]) {
    assert.deepEqual(parsePostgresHosts(url).urls, [url]);
  }
});

test("postgres hosts - refuses what libpq would not take", () => {
  assert.throws(() => parsePostgresHosts("not a url"));
  assert.throws(() => parsePostgresHosts("postgres://a,,b/rc"), /empty host/);
  assert.throws(
    () => parsePostgresHosts("postgres://a,b/rc?target_session_attrs=standby"),
    /target_session_attrs/,
  );
  assert.throws(() => parsePostgresHosts("postgres://a:notaport,b/rc"));
});
