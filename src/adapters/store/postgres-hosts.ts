// POSTGRES_URL with several hosts, as libpq spells it:
//   postgres://user:pass@host1:5432,host2:5432/db?target_session_attrs=read-write
// `pg` 8.x takes one host only (multi-host support is an open pull request,
// brianc/node-postgres#3643), and WHATWG URL refuses the comma list. This
// splits such a URL into one single-host URL per host, in order, with the
// credentials, database and the other parameters of the original, and reads
// `target_session_attrs` (which `pg` would not understand) off it.

/** What a host must be to be used; libpq's names, those that matter for a writer. */
export type SessionAttrs = "any" | "read-write" | "primary";

export interface PostgresHosts {
  /** One single-host URL per host, in the order given. */
  readonly urls: readonly string[];
  readonly targetSessionAttrs: SessionAttrs;
}

const SESSION_ATTRS: readonly string[] = ["any", "read-write", "primary"];

/** Splits a (possibly multi-host) PostgreSQL URL; throws an Error naming what is wrong. */
export function parsePostgresHosts(url: string): PostgresHosts {
  const m = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/.exec(url);
  if (m === null) {
    // Any other URL `pg` takes (socket:/path?db=...) is one host, passed as it is.
    new URL(url); // throws on what is no URL at all
    return { urls: [url], targetSessionAttrs: "any" };
  }
  const [, scheme = "", auth = "", hostList = "", rest = ""] = m;
  const hosts = hostList.split(",").map((h) => h.trim());
  // One host may be empty (postgres:///db?host=/run/postgresql); in a list none may.
  if (hosts.length > 1 && hosts.some((h) => h === "")) {
    throw new Error("empty host in the host list");
  }
  let targetSessionAttrs: SessionAttrs = "any";
  const q = rest.indexOf("?");
  let tail = rest;
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    const attrs = params.get("target_session_attrs");
    if (attrs !== null) {
      if (!SESSION_ATTRS.includes(attrs)) {
        throw new Error(`target_session_attrs must be one of ${SESSION_ATTRS.join(", ")}`);
      }
      targetSessionAttrs = attrs as SessionAttrs;
      // Only then is the query rebuilt (which re-encodes it; pg decodes either spelling).
      params.delete("target_session_attrs");
      const query = params.toString();
      tail = rest.slice(0, q) + (query === "" ? "" : `?${query}`);
    }
  }
  const urls = hosts.map((host) => {
    const single = `${scheme}${auth}${host}${tail}`;
    new URL(single); // throws on a malformed host or port
    return single;
  });
  return { urls, targetSessionAttrs };
}
