// The one JSON input rule protojson leaves loose: 64-bit integers (offsets).
// Its fromJson takes a string through BigInt(), so " 5 ", "0x10" and "+5" are
// read as numbers, and it takes any JSON number that is an integer, including
// ones beyond 2^53 that JSON.parse has already rounded. Roomcast accepts a
// string of decimal digits that fits uint64, or a JSON number whose value is a
// safe non-negative integer (so 1e2 is 100), and nothing else.
//
// The walk follows the schema, not the JSON: only fields that are, or lead to,
// uint64 fields are looked at, so a publish costs a few property reads.
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

const DIGITS = /^[0-9]+$/;
const LEADING_ZEROS = /^0+(?=[0-9])/;
const MAX_UINT64 = 2n ** 64n - 1n;

/** True when `value` is an acceptable JSON spelling of a uint64. */
export function isJsonUint64(value: unknown): boolean {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0;
  if (typeof value !== "string" || !DIGITS.test(value)) return false;
  // Leading zeros do not count towards the 20 digits (and keep BigInt() cheap).
  const digits = value.replace(LEADING_ZEROS, "");
  return digits.length <= 20 && BigInt(digits) <= MAX_UINT64;
}

/** A schema the walk cannot check; a programming error, found by the unit tests. */
export class UnsupportedSchemaError extends Error {
  override readonly name = "UnsupportedSchemaError";
  constructor(
    readonly reason: "map" | "signed_int64" | "recursive",
    readonly where: string,
  ) {
    super(`${where}: ${reason} is not handled by the JSON uint64 walk`);
  }
}

interface Check {
  /** The proto name and, when it differs, the lowerCamelCase name. */
  readonly keys: readonly string[];
  readonly field: DescField;
  /** The message to walk into, for message and repeated-message fields. */
  readonly message: DescMessage | undefined;
}

const plans = new WeakMap<DescMessage, readonly Check[]>();

/**
 * Returns the first field of `json` (read as `desc`) holding an unacceptable
 * 64-bit integer, or undefined. Values of the wrong type are left for fromJson
 * to refuse. Throws on schemas it does not handle (map fields, signed 64-bit
 * integers, recursion): test/unit/codec.test.ts plans the envelope schema, so
 * such a change to the .proto fails the tests rather than passing unchecked.
 */
export function findBadUint64(desc: DescMessage, json: unknown): DescField | undefined {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const obj = json as Record<string, unknown>;
  for (const check of planFor(desc)) {
    for (const key of check.keys) {
      if (!Object.hasOwn(obj, key)) continue;
      const value = obj[key];
      if (value === null) continue;
      const bad = checkValue(check, value);
      if (bad !== undefined) return bad;
    }
  }
  return undefined;
}

function checkValue(check: Check, value: unknown): DescField | undefined {
  const { field, message } = check;
  if (field.fieldKind === "list") {
    if (!Array.isArray(value)) return undefined;
    for (const item of value) {
      const bad =
        message === undefined
          ? item === null || isJsonUint64(item)
            ? undefined
            : field
          : findBadUint64(message, item);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  if (message !== undefined) return findBadUint64(message, value);
  return isJsonUint64(value) ? undefined : field;
}

/** The fields of `desc` worth visiting, computed once per message type. */
export function planFor(desc: DescMessage, visiting = new Set<DescMessage>()): readonly Check[] {
  const known = plans.get(desc);
  if (known !== undefined) return known;
  // The walk is as deep as the schema, never as deep as the JSON: a recursive
  // schema would change that (and make "leads to a uint64" circular).
  if (visiting.has(desc)) throw new UnsupportedSchemaError("recursive", desc.typeName);
  visiting.add(desc);
  const plan: Check[] = [];
  for (const field of desc.fields) {
    const keys = field.jsonName === field.name ? [field.name] : [field.name, field.jsonName];
    if (field.fieldKind === "map") {
      throw new UnsupportedSchemaError("map", `${desc.typeName}.${field.name}`);
    }
    if (field.fieldKind === "message" || (field.fieldKind === "list" && field.message)) {
      const message = field.message;
      if (message !== undefined && planFor(message, visiting).length > 0) {
        plan.push({ keys, field, message });
      }
      continue;
    }
    if (field.fieldKind === "scalar" || field.fieldKind === "list") {
      const scalar = field.scalar;
      if (scalar === ScalarType.UINT64 || scalar === ScalarType.FIXED64) {
        plan.push({ keys, field, message: undefined });
      } else if (
        scalar === ScalarType.INT64 ||
        scalar === ScalarType.SINT64 ||
        scalar === ScalarType.SFIXED64
      ) {
        throw new UnsupportedSchemaError("signed_int64", `${desc.typeName}.${field.name}`);
      }
    }
  }
  visiting.delete(desc);
  plans.set(desc, plan);
  return plan;
}
