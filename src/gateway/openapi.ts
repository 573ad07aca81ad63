// The OpenAPI 3.1 description of the server API, served at
// /api/v1/openapi.json. test/unit/openapi.test.ts checks it against
// `apiRoutes` in api.ts (same paths, methods and statuses), so the two cannot
// drift. docs/api.md explains the same endpoints with curl examples.

const error = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const retryAfter = {
  "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer" } },
};

const roomId = {
  name: "room_id",
  in: "path",
  required: true,
  description: "1-128 characters of A-Z a-z 0-9 _ - . : @ (percent-encode : and @ if you like).",
  schema: { type: "string", pattern: "^[A-Za-z0-9_.:@-]{1,128}$" },
};

const common = {
  "400": error("`invalid_room` (bad room id) or `bad_request` (bad parameter or body)."),
  "401": {
    ...error("`unauthorized`: missing or wrong API key."),
    headers: { "WWW-Authenticate": { schema: { type: "string", const: "Bearer" } } },
  },
};

const unavailable = {
  ...error("`unavailable`: the store (or broker) is down; nothing was done. Retry."),
  headers: retryAfter,
};

export const openApiDocument = {
  openapi: "3.1.0",
  info: {
    title: "Roomcast server API",
    version: "1",
    description:
      'Publish into rooms, read history and presence, and disconnect users. Off unless API_KEY is set (then every path is 404). Errors are {"error":{"code","message"}} with the codes of docs/errors.md.',
  },
  servers: [{ url: "/" }],
  security: [{ apiKey: [] }],
  paths: {
    "/api/v1/rooms/{room_id}/messages": {
      post: {
        summary: "Publish a message into a room as the server",
        description:
          'The same path as a WebSocket publish: validation, de-duplication by message_id, the next offset, delivery to every member on every node with sender_id "server".',
        parameters: [roomId],
        requestBody: {
          required: true,
          content: {
            "application/json": { schema: { $ref: "#/components/schemas/PublishRequest" } },
          },
        },
        responses: {
          "200": {
            description: "Stored (or found stored: duplicate true, with the original offset).",
            content: {
              "application/json": { schema: { $ref: "#/components/schemas/PublishResult" } },
            },
          },
          ...common,
          "413": error("`too_large`: the body is above MAX_MESSAGE_BYTES."),
          "429": { ...error("`rate_limited`: the room's rate limit."), headers: retryAfter },
          "503": unavailable,
        },
      },
    },
    "/api/v1/rooms/{room_id}/history": {
      get: {
        summary: "Read a page of a room's history",
        parameters: [
          roomId,
          {
            name: "since",
            in: "query",
            description: "Messages with an offset above this one (default 0).",
            schema: { type: "string", pattern: "^[0-9]{1,20}$", default: "0" },
          },
          {
            name: "limit",
            in: "query",
            description: "At most this many messages (default 100; above 1000 is clamped to 1000).",
            schema: { type: "integer", minimum: 0, default: 100, maximum: 1000 },
          },
        ],
        responses: {
          "200": {
            description: "The page, with the room's head offset and epoch.",
            content: {
              "application/json": { schema: { $ref: "#/components/schemas/HistoryPage" } },
            },
          },
          "400": error(
            "`invalid_room`, `bad_request` (since or limit malformed) or `offset_out_of_range` (since beyond the head).",
          ),
          "401": common["401"],
          "503": unavailable,
        },
      },
    },
    "/api/v1/rooms/{room_id}/presence": {
      get: {
        summary: "Who is connected and joined to a room now, on every node",
        parameters: [roomId],
        responses: {
          "200": {
            description: "The members present.",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Presence" } } },
          },
          ...common,
        },
      },
    },
    "/api/v1/users/{user_id}/disconnect": {
      post: {
        summary: "Close every socket of a user (4502) and end its sessions",
        description:
          "Accepted also for a user with no socket. Every socket of the user on every node is closed with 4502 within seconds, and its sessions can no longer be resumed. Not a ban: the user may connect again with a valid token.",
        parameters: [
          {
            name: "user_id",
            in: "path",
            required: true,
            description: "The user id (the JWT `sub`), percent-encoded.",
            schema: { type: "string", minLength: 1 },
          },
        ],
        responses: {
          "202": {
            description: "Sessions ended; the close is on its way to every node.",
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["user_id"],
                  properties: { user_id: { type: "string" } },
                },
              },
            },
          },
          ...common,
          "503": unavailable,
        },
      },
    },
    "/api/v1/openapi.json": {
      get: {
        summary: "This document",
        security: [],
        responses: { "200": { description: "The OpenAPI 3.1 document." } },
      },
    },
  },
  components: {
    securitySchemes: {
      apiKey: {
        type: "http",
        scheme: "bearer",
        description: "One of the keys of API_KEY: `Authorization: Bearer <key>`.",
      },
    },
    schemas: {
      Error: {
        type: "object",
        required: ["error"],
        properties: {
          error: {
            type: "object",
            required: ["code", "message"],
            properties: {
              code: {
                type: "string",
                description: "A stable code of docs/errors.md; branch on it, not on message.",
              },
              message: { type: "string" },
            },
          },
        },
      },
      PublishRequest: {
        type: "object",
        required: ["content"],
        properties: {
          content: { type: "string" },
          message_id: {
            type: "string",
            minLength: 1,
            maxLength: 128,
            description: "The idempotency key; filled by the server when missing.",
          },
          traceparent: { type: "string", maxLength: 512 },
          tracestate: { type: "string", maxLength: 512 },
        },
      },
      PublishResult: {
        type: "object",
        required: ["room_id", "message_id", "offset", "duplicate"],
        properties: {
          room_id: { type: "string" },
          message_id: { type: "string" },
          offset: { type: "string", description: "uint64 as a decimal string." },
          duplicate: { type: "boolean" },
        },
      },
      Message: {
        type: "object",
        description: "A message as the WebSocket JSON subprotocol delivers it.",
        required: ["target", "content", "message_id", "sent_at", "sender_id", "offset"],
        properties: {
          target: { type: "string" },
          content: { type: "string" },
          message_id: { type: "string" },
          sent_at: { type: "string", format: "date-time" },
          sender_id: { type: "string" },
          user_id: { type: "string" },
          offset: { type: "string" },
          traceparent: { type: "string" },
          tracestate: { type: "string" },
        },
      },
      HistoryPage: {
        type: "object",
        required: ["room_id", "epoch", "offset", "messages"],
        properties: {
          room_id: { type: "string" },
          epoch: { type: "string" },
          offset: { type: "string", description: "The room's head offset ('0' when empty)." },
          messages: { type: "array", items: { $ref: "#/components/schemas/Message" } },
        },
      },
      Presence: {
        type: "object",
        required: ["room_id", "members"],
        properties: {
          room_id: { type: "string" },
          members: {
            type: "array",
            items: {
              type: "object",
              required: ["member_id"],
              properties: {
                member_id: { type: "string" },
                user_id: { type: "string", description: "Absent for anonymous members." },
              },
            },
          },
        },
      },
    },
  },
} as const;
