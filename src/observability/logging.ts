// Structured JSON logs (pino). Never log tokens or message bodies: the
// redact list below is the last line of defence, not the first.
import { pino, type Logger as PinoLogger } from "pino";

export type Logger = PinoLogger;

/** `ids`: fields to add to every line, e.g. the active trace's (tracing.ts traceIds). */
export function createLogger(level: string, ids?: () => Record<string, string>): Logger {
  return pino({
    level,
    ...(ids !== undefined && { mixin: ids }),
    base: { service: "roomcast", pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["token", "*.token", "content", "*.content", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
  });
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
