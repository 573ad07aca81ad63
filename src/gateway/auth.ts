// JWT verification with `jose`, from one key source: an HMAC secret, a PEM
// public key (SPKI or X.509 certificate), or a remote JWKS. Everything about a
// caller is decided here before the upgrade (and again on `refresh`).
//
// - The algorithm allowlist defaults to the key type's family; `none` is never
//   accepted, and an HMAC token is refused where a public key is configured
//   (jose also refuses a symmetric algorithm with an asymmetric key).
// - The remote key set is cached (AUTH_JWKS_CACHE_TTL) and an unknown `kid`
//   refetches at most once per AUTH_JWKS_COOLDOWN: jose's remote set does both,
//   so a flood of made-up `kid`s costs the key server one request per cooldown,
//   and a rotated key is picked up without a restart.
// - A token never reaches a log line: errors carry jose's code, not the token.
import { createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from "jose";
import {
  CredentialError,
  Grants,
  isRoomPattern,
  type Credentials,
  type Identity,
} from "../core/access.js";

export interface AuthOptions {
  readonly secret?: string | undefined;
  readonly publicKeyPem?: string | undefined;
  readonly publicKeyFile?: string | undefined;
  readonly jwksUrl?: string | undefined;
  readonly jwksCacheTtlMs: number;
  readonly jwksCooldownMs: number;
  readonly jwksTimeoutMs: number;
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
  readonly algorithms?: readonly string[] | undefined;
  readonly clockSkewMs: number;
  /** AUTH_DEFAULT_ROOMS: grants when a token has neither `rooms` nor `read_rooms`. */
  readonly defaultRooms: readonly string[];
}

const HMAC = ["HS256", "HS384", "HS512"];
const RSA = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
const EC = ["ES256", "ES384", "ES512"];
const OKP = ["EdDSA"];
export const supportedAlgorithms = [...HMAC, ...RSA, ...EC, ...OKP];

type KeySource =
  | { readonly kind: "secret"; readonly key: Uint8Array }
  | { readonly kind: "public"; readonly key: KeyObject }
  | { readonly kind: "jwks"; readonly keys: ReturnType<typeof createRemoteJWKSet> };

export class JwtCredentials implements Credentials {
  readonly clockSkewMs: number;
  readonly #source: KeySource;
  readonly #algorithms: string[];
  readonly #opts: AuthOptions;
  readonly #defaultGrants: Grants;

  private constructor(source: KeySource, algorithms: string[], opts: AuthOptions) {
    this.#source = source;
    this.#algorithms = algorithms;
    this.#opts = opts;
    this.clockSkewMs = opts.clockSkewMs;
    this.#defaultGrants = new Grants(opts.defaultRooms);
  }

  /** Undefined when no key source is configured: authentication is off. */
  static fromOptions(opts: AuthOptions): JwtCredentials | undefined {
    const pem =
      opts.publicKeyPem ??
      (opts.publicKeyFile === undefined ? undefined : readFileSync(opts.publicKeyFile, "utf8"));
    const sources = [opts.secret, pem, opts.jwksUrl].filter((s) => s !== undefined);
    if (sources.length === 0) return undefined;
    if (sources.length > 1) {
      throw new Error(
        "configure one key source: AUTH_JWT_SECRET, AUTH_JWT_PUBLIC_KEY(_FILE) or AUTH_JWKS_URL",
      );
    }
    let source: KeySource;
    let family: string[];
    if (opts.secret !== undefined) {
      source = { kind: "secret", key: new TextEncoder().encode(opts.secret) };
      family = HMAC;
    } else if (pem !== undefined) {
      const key = publicKeyFromPem(pem);
      source = { kind: "public", key };
      family = familyOf(key);
    } else {
      source = {
        kind: "jwks",
        keys: createRemoteJWKSet(new URL(opts.jwksUrl!), {
          cacheMaxAge: opts.jwksCacheTtlMs,
          cooldownDuration: opts.jwksCooldownMs,
          timeoutDuration: opts.jwksTimeoutMs,
        }),
      };
      family = [...RSA, ...EC, ...OKP];
    }
    const algorithms = opts.algorithms?.length ? [...opts.algorithms] : family;
    for (const alg of algorithms) {
      if (!family.includes(alg)) {
        throw new Error(
          `AUTH_JWT_ALGORITHMS: ${alg} does not fit the configured ${source.kind} key`,
        );
      }
    }
    return new JwtCredentials(source, algorithms, opts);
  }

  async verify(token: string): Promise<Identity> {
    const options = {
      algorithms: this.#algorithms,
      clockTolerance: Math.floor(this.clockSkewMs / 1000),
      requiredClaims: ["sub", "exp"],
      ...(this.#opts.issuer !== undefined && { issuer: this.#opts.issuer }),
      ...(this.#opts.audience !== undefined && { audience: this.#opts.audience }),
    };
    let payload: JWTPayload;
    try {
      const source = this.#source;
      payload =
        source.kind === "jwks"
          ? (await jwtVerify(token, source.keys, options)).payload
          : (await jwtVerify(token, source.key, options)).payload;
    } catch (err) {
      throw new CredentialError(reasonOf(err));
    }
    const sub = payload.sub;
    if (typeof sub !== "string" || sub === "") throw new CredentialError("sub is empty");
    return { userId: sub, expiresAt: payload.exp! * 1000, grants: this.#grantsOf(payload) };
  }

  #grantsOf(payload: JWTPayload): Grants {
    const rooms = patterns(payload["rooms"]);
    const readRooms = patterns(payload["read_rooms"]);
    if (rooms === undefined && readRooms === undefined) return this.#defaultGrants;
    return new Grants(rooms ?? [], readRooms ?? []);
  }
}

/** A claim's patterns; invalid patterns grant nothing. */
function patterns(claim: unknown): string[] | undefined {
  if (claim === undefined) return undefined;
  if (!Array.isArray(claim)) throw new CredentialError("rooms claims must be arrays of patterns");
  return claim.filter((p): p is string => typeof p === "string" && isRoomPattern(p));
}

function publicKeyFromPem(pem: string): KeyObject {
  if (pem.includes("BEGIN CERTIFICATE")) return new X509Certificate(pem).publicKey;
  return createPublicKey(pem);
}

function familyOf(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case "rsa":
    case "rsa-pss":
      return RSA;
    case "ec":
      return EC;
    case "ed25519":
    case "ed448":
      return OKP;
    default:
      throw new Error(`AUTH_JWT_PUBLIC_KEY: unsupported key type ${key.asymmetricKeyType}`);
  }
}

/** Why a token was refused, without the token: jose's error code. */
function reasonOf(err: unknown): string {
  if (err instanceof CredentialError) return err.message;
  if (err instanceof errors.JOSEError) return err.code;
  return "unverifiable token";
}
