// The server API (/api/v1): what a backend calls to publish into rooms, read
// a room's history and presence, and disconnect a user. Off unless API_KEY is
// set (its paths are then 404). Every answer is JSON; every error is
// {"error":{"code","message"}} with a code of docs/errors.md. The routes are
// listed once, in `apiRoutes`, and test/unit/openapi.test.ts holds the OpenAPI
// document (openapi.ts) to them.
//
// Publishing takes the router's one publish path (validation, store dedup and
// offset, local room and every other node), as the server: sender_id "server",
// no grants.
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { create } from "@bufbuild/protobuf";
import { messageJson } from "../protocol/codec.js";
import { ErrorCode, WireError, errorDescriptions } from "../protocol/errors.js";
import { MessageSchema, type Message } from "../protocol/gen/roomcast/v1/envelope_pb.js";
import { checkRoomId } from "../protocol/validate.js";
import { Delivery } from "../core/delivery.js";
import type { Published, Publisher, PresentMember } from "../core/router.js";
import type { Logger } from "../observability/logging.js";
import type { HistoryPage } from "../ports/store.js";
import { openApiDocument } from "./openapi.js";

/** What the API asks of the node; implemented by the Router. */
export interface ApiHost {
  publish(roomId: string, msg: Message, from: Publisher): Promise<Published>;
  history(roomId: string, since: bigint, limit: number): Promise<HistoryPage>;
  presence(roomId: string): Promise<PresentMember[]>;
  disconnectUser(userId: string): Promise<void>;
}

export interface ApiOptions {
  /** Accepted keys (API_KEY); none turns the API off. */
  readonly keys: readonly string[];
  /** Largest request body (MAX_MESSAGE_BYTES); larger is 413 too_large. */
  readonly maxBodyBytes: number;
}

/** `limit` of a history read when the request gives none, and the most one read returns. */
export const HISTORY_DEFAULT_LIMIT = 100;
export const HISTORY_MAX_LIMIT = 1000;

/** Every route with the statuses it answers; the OpenAPI document must list exactly these. */
export const apiRoutes = [
  {
    method: "POST",
    path: "/api/v1/rooms/{room_id}/messages",
    statuses: [200, 400, 401, 413, 429, 503],
  },
  { method: "GET", path: "/api/v1/rooms/{room_id}/history", statuses: [200, 400, 401, 503] },
  { method: "GET", path: "/api/v1/rooms/{room_id}/presence", statuses: [200, 400, 401] },
  { method: "POST", path: "/api/v1/users/{user_id}/disconnect", statuses: [202, 400, 401, 503] },
  { method: "GET", path: "/api/v1/openapi.json", statuses: [200] },
] as const;

type Route = (typeof apiRoutes)[number];
type Params = Record<string, string>;

/** Past the limit, this much more is read and dropped so the client can read the 413. */
const DISCARD_BYTES = 1024 * 1024;
const MAX_UINT64 = 2n ** 64n - 1n;

const STATUS: Partial<Record<ErrorCode, number>> = {
  bad_request: 400,
  invalid_room: 400,
  offset_out_of_range: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

export class ServerApi {
  readonly #host: ApiHost;
  readonly #opts: ApiOptions;
  readonly #log: Logger;
  /** SHA-256 of each key: equal-length digests compare in constant time. */
  readonly #keyDigests: readonly Buffer[];

  constructor(host: ApiHost, opts: ApiOptions, log: Logger) {
    this.#host = host;
    this.#opts = opts;
    this.#log = log;
    this.#keyDigests = opts.keys.map(digest);
  }

  get enabled(): boolean {
    return this.#keyDigests.length > 0;
  }

  /** Answers a request under /api; false for any other path (the gateway's). */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (path !== "/api" && !path.startsWith("/api/")) return false;
    void this.#serve(req, res, path).catch((err: unknown) => {
      this.#log.error({ err }, "server API request failed unexpectedly");
      if (!res.headersSent) fail(res, new WireError(ErrorCode.Internal));
      else res.destroy();
    });
    return true;
  }

  async #serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    try {
      await this.#route(req, res, path);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      fail(res, err);
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (!this.enabled) return fail(res, new WireError(ErrorCode.NotFound, "the server API is off"));
    const found = match(path);
    if (found === undefined) return fail(res, new WireError(ErrorCode.NotFound, "no such path"));
    const [routes, params] = found;
    const route = routes.find((r) => r.method === req.method);
    if (route === undefined) {
      res.setHeader("Allow", routes.map((r) => r.method).join(", "));
      return fail(res, new WireError(ErrorCode.BadRequest, "method not allowed"), 405);
    }
    if (route.path === "/api/v1/openapi.json") return json(res, 200, openApiDocument);
    if (!this.#authorized(req)) {
      res.setHeader("WWW-Authenticate", "Bearer");
      return fail(res, new WireError(ErrorCode.Unauthorized, "a valid API key is required"));
    }
    await this.#dispatch(route, params, req, res);
  }

  async #dispatch(route: Route, params: Params, req: IncomingMessage, res: ServerResponse) {
    const roomId = params["room_id"];
    if (roomId !== undefined) checkRoomId(roomId);
    switch (route.path) {
      case "/api/v1/rooms/{room_id}/messages": {
        const msg = parsePublish(await this.#body(req, res), roomId!);
        const result = await this.#host.publish(roomId!, msg, { senderId: "server" });
        return json(res, 200, {
          room_id: roomId,
          message_id: result.messageId,
          offset: result.offset.toString(),
          duplicate: result.duplicate,
        });
      }
      case "/api/v1/rooms/{room_id}/history": {
        const query = new URL(req.url ?? "/", "http://localhost").searchParams;
        const since = parseOffset(query.get("since"));
        const limit = parseLimit(query.get("limit"));
        const page = await this.#host.history(roomId!, since, limit);
        return json(res, 200, {
          room_id: roomId,
          epoch: page.epoch,
          offset: page.head.toString(),
          messages: page.messages.map((m) => messageJson(Delivery.fromStored(m).message)),
        });
      }
      case "/api/v1/rooms/{room_id}/presence": {
        const members = await this.#host.presence(roomId!);
        return json(res, 200, {
          room_id: roomId,
          members: members.map((m) => ({
            member_id: m.memberId,
            ...(m.userId !== "" && { user_id: m.userId }),
          })),
        });
      }
      case "/api/v1/users/{user_id}/disconnect": {
        const userId = params["user_id"]!;
        await this.#host.disconnectUser(userId);
        return json(res, 202, { user_id: userId });
      }
      case "/api/v1/openapi.json":
        return json(res, 200, openApiDocument);
    }
  }

  #authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    const key = header === undefined ? undefined : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
    if (key === undefined) return false;
    const given = digest(key);
    let ok = false;
    // Every key is compared, so the time says nothing about which one matched.
    for (const k of this.#keyDigests) ok = timingSafeEqual(given, k) || ok;
    return ok;
  }

  /**
   * The request body, at most maxBodyBytes; larger rejects with too_large at
   * once. Node drops the unread rest after the answer (keeping the connection)
   * unless it is huge, when the connection is closed instead.
   */
  #body(req: IncomingMessage, res: ServerResponse): Promise<Buffer> {
    const max = this.#opts.maxBodyBytes;
    const tooLarge = (size: number) => {
      if (size > max + DISCARD_BYTES) res.setHeader("Connection", "close");
      return new WireError(ErrorCode.TooLarge, `the body is limited to ${max} bytes`);
    };
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers["content-length"] ?? "0");
      if (declared > max) return reject(tooLarge(declared));
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size <= max) chunks.push(chunk);
        else reject(tooLarge(size));
      });
      req.once("end", () => resolve(Buffer.concat(chunks)));
      req.once("error", reject);
    });
  }
}

function digest(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

/** The routes whose pattern fits `path` (one per method) and the decoded parameters. */
function match(path: string): [Route[], Params] | undefined {
  const parts = path.split("/");
  let params: Params | undefined;
  const routes: Route[] = [];
  for (const route of apiRoutes) {
    const pattern = route.path.split("/");
    if (pattern.length !== parts.length) continue;
    const got: Params = {};
    let ok = true;
    for (let i = 0; i < pattern.length && ok; i++) {
      const want = pattern[i]!;
      const part = parts[i]!;
      if (want.startsWith("{")) {
        if (part === "") ok = false;
        else got[want.slice(1, -1)] = decodeSegment(part);
      } else ok = want === part;
    }
    if (!ok) continue;
    routes.push(route);
    params = got;
  }
  return params === undefined ? undefined : [routes, params];
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new WireError(ErrorCode.BadRequest, "malformed percent-encoding in the path");
  }
}

function parsePublish(body: Buffer, roomId: string): Message {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw new WireError(ErrorCode.BadRequest, "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new WireError(ErrorCode.BadRequest, "the body must be a JSON object");
  }
  const v = value as Record<string, unknown>;
  if (typeof v["content"] !== "string") {
    throw new WireError(ErrorCode.BadRequest, "content must be a string");
  }
  const msg = create(MessageSchema, { target: roomId, content: v["content"] });
  for (const [field, set] of [
    ["message_id", (s: string) => (msg.messageId = s)],
    ["traceparent", (s: string) => (msg.traceparent = s)],
    ["tracestate", (s: string) => (msg.tracestate = s)],
  ] as const) {
    const x = v[field];
    if (x === undefined || x === null) continue;
    if (typeof x !== "string")
      throw new WireError(ErrorCode.BadRequest, `${field} must be a string`);
    set(x);
  }
  return msg;
}

function parseOffset(text: string | null): bigint {
  if (text === null || text === "") return 0n;
  if (!/^\d{1,20}$/.test(text) || BigInt(text) > MAX_UINT64) {
    throw new WireError(ErrorCode.BadRequest, "since must be an offset (0 to 2^64-1)");
  }
  return BigInt(text);
}

function parseLimit(text: string | null): number {
  if (text === null || text === "") return HISTORY_DEFAULT_LIMIT;
  if (!/^\d{1,12}$/.test(text)) {
    throw new WireError(ErrorCode.BadRequest, "limit must be a non-negative integer");
  }
  return Math.min(Number(text), HISTORY_MAX_LIMIT);
}

function fail(res: ServerResponse, err: WireError, status = STATUS[err.code] ?? 400): void {
  if (err.retryAfterMs !== undefined && (status === 429 || status === 503)) {
    res.setHeader("Retry-After", String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
  }
  const message = err.message === "" ? errorDescriptions[err.code] : err.message;
  json(res, status, { error: { code: err.code, message } });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-store",
  });
  res.end(text);
}
