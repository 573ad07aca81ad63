// Rates in configuration: `N/DURATION` (`20/1s`, `600/1m`) or `off`.
import { parseDuration } from "./duration.js";

export interface RateText {
  readonly count: number;
  readonly periodMs: number;
}

/** The rate, `null` for `off`, or undefined when the text is neither. */
export function parseRate(text: string): RateText | null | undefined {
  const t = text.trim();
  if (t === "off") return null;
  const match = /^(\d+)\/(.+)$/.exec(t);
  if (match === null) return undefined;
  const count = Number(match[1]);
  const periodMs = parseDuration(match[2] ?? "");
  if (!Number.isSafeInteger(count) || count < 1 || periodMs === undefined || periodMs < 1) {
    return undefined;
  }
  return { count, periodMs };
}
