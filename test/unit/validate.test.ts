import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { encodeRoomToken } from "../../src/adapters/broker/room-subject.js";
import { ErrorCode, WireError } from "../../src/protocol/errors.js";
import { MessageSchema } from "../../src/protocol/gen/roomcast/v1/envelope_pb.js";
import { isValidRoomId } from "../../src/protocol/room-id.js";
import { isRfc3339DateTime } from "../../src/protocol/timestamp.js";
import {
  MAX_MESSAGE_ID,
  MAX_TRACE_FIELD,
  checkRoomId,
  validateMessage,
} from "../../src/protocol/validate.js";

const message = (init: MessageInitShape<typeof MessageSchema>) =>
  create(MessageSchema, { target: "r", content: "hi", ...init });

/** Asserts `fn` throws a WireError with `code` (and `ref` when given). */
function throwsWire(fn: () => void, code: ErrorCode, ref?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WireError, String(err));
    assert.equal(err.code, code);
    if (ref !== undefined) assert.equal(err.ref, ref);
    return true;
  });
}

const GOOD_SENT_AT = [
  "2024-03-05T10:20:30Z",
  "2024-03-05t10:20:30z",
  "2024-03-05T10:20:30.1Z",
  "2024-03-05T10:20:30.123456789012Z",
  "2024-03-05T10:20:30+01:00",
  "2024-03-05T10:20:30.5-05:30",
  "2024-03-05T10:20:30-00:00",
  "2024-03-05T00:00:00+23:59",
  "2024-02-29T12:00:00Z", // leap year
  "2000-02-29T12:00:00Z", // divisible by 400: leap
  "2024-01-31T23:59:59Z",
  "2024-04-30T23:59:59Z",
  "0000-01-01T00:00:00Z",
  "9999-12-31T23:59:59Z",
  "2016-12-31T23:59:60Z", // leap second, at 23:59:60 UTC
  "2016-12-31T15:59:60-08:00", // the same instant, local time
  "2017-01-01T00:59:60+01:00", // the same instant, across midnight
];

const BAD_SENT_AT = [
  "1",
  "2024",
  "Tue Mar 05 2024",
  "Tue, 05 Mar 2024 10:20:30 GMT",
  "2024-03-05",
  "2024-03-05T10:20:30", // no offset
  "2024-03-05 10:20:30Z", // space instead of T
  "2024-03-05T10:20Z", // no seconds
  "2024-02-30T00:00:00Z",
  "2023-02-29T00:00:00Z", // not a leap year
  "1900-02-29T00:00:00Z", // divisible by 100, not 400
  "2024-04-31T00:00:00Z",
  "2024-00-10T00:00:00Z",
  "2024-13-10T00:00:00Z",
  "2024-03-00T00:00:00Z",
  "2024-03-05T24:00:00Z",
  "2024-03-05T10:60:00Z",
  "2024-03-05T10:20:61Z",
  "2024-03-05T10:20:60Z", // second 60 outside 23:59 UTC
  "2016-12-31T23:59:60+01:00", // 22:59:60 UTC
  "2024-03-05T10:20:30+24:00",
  "2024-03-05T10:20:30+01:60",
  "2024-03-05T10:20:30+0100",
  "2024-03-05T10:20:30+01",
  "2024-03-05T10:20:30.Z",
  "2024-03-05T10:20:30,5Z",
  "2024-3-5T10:20:30Z",
  "+002024-03-05T10:20:30Z",
  " 2024-03-05T10:20:30Z",
  "2024-03-05T10:20:30Z ",
  "2024-03-05T10:20:30Z\n",
  "２０２４-03-05T10:20:30Z", // full-width digits
  "",
];

describe("validate - sent_at (RFC 3339 date-time)", () => {
  for (const s of GOOD_SENT_AT) {
    test(`accepts ${JSON.stringify(s)}`, () => {
      assert.equal(isRfc3339DateTime(s), true);
      validateMessage(message({ sentAt: s }));
    });
  }
  for (const s of BAD_SENT_AT) {
    test(`refuses ${JSON.stringify(s)} with bad_request`, () => {
      assert.equal(isRfc3339DateTime(s), false);
      throwsWire(
        () => validateMessage(message({ sentAt: s, messageId: "m1" })),
        "bad_request",
        "m1",
      );
    });
  }
  test("a missing sent_at is fine (the server fills it)", () => {
    validateMessage(message({}));
  });
});

describe("validate - message fields", () => {
  test("message_id of 1 and MAX_MESSAGE_ID characters passes", () => {
    validateMessage(message({ messageId: "m" }));
    validateMessage(message({ messageId: "m".repeat(MAX_MESSAGE_ID) }));
  });

  test("empty or too long message_id is bad_request with the room as ref", () => {
    throwsWire(() => validateMessage(message({ messageId: "" })), "bad_request", "r");
    throwsWire(
      () => validateMessage(message({ messageId: "m".repeat(MAX_MESSAGE_ID + 1) })),
      "bad_request",
      "r",
    );
  });

  test("U+0000 in any text field is bad_request", () => {
    for (const field of ["content", "messageId", "traceparent", "tracestate"] as const) {
      throwsWire(() => validateMessage(message({ [field]: "a\u0000b" })), "bad_request");
    }
  });

  test("trace fields are limited to MAX_TRACE_FIELD characters", () => {
    validateMessage(message({ traceparent: "t".repeat(MAX_TRACE_FIELD) }));
    for (const field of ["traceparent", "tracestate"] as const) {
      throwsWire(
        () => validateMessage(message({ [field]: "t".repeat(MAX_TRACE_FIELD + 1) })),
        "bad_request",
      );
    }
  });
});

describe("validate - room id", () => {
  test("checkRoomId accepts a valid id", () => {
    checkRoomId("Az09_-.:@");
  });

  test("checkRoomId refuses with invalid_room and the id (cut to 128) as ref", () => {
    throwsWire(() => checkRoomId("a b"), "invalid_room", "a b");
    throwsWire(() => checkRoomId(""), "invalid_room", "");
    const long = "x".repeat(300);
    throwsWire(() => checkRoomId(long), "invalid_room", long.slice(0, 128));
  });

  test("the broker encoding follows the same one rule", () => {
    for (const id of ["a", "Az09_-.:@", "a".repeat(128), "", "a".repeat(129), "a b", "a*", "é"]) {
      let encodes = true;
      try {
        encodeRoomToken(id);
      } catch {
        encodes = false;
      }
      assert.equal(encodes, isValidRoomId(id), JSON.stringify(id));
    }
  });
});
