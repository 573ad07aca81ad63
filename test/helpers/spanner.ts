// The private Cloud Spanner emulator of the tests (tools/spanner-emulator.ts,
// shared with the benchmark), and whether the tests needing it can run here.
import { SPANNER_EMULATOR_PACKAGE, spannerGatewayPath } from "../../tools/spanner-emulator.js";
import { requireBinary } from "./require-binary.js";

export { startSpannerEmulator, type SpannerEmulator } from "../../tools/spanner-emulator.js";

/** Whether Spanner tests can run; throws under CI=true when the emulator is missing. */
export function spannerEmulatorAvailable(): boolean {
  return requireBinary(
    spannerGatewayPath() !== undefined,
    `Spanner emulator (${SPANNER_EMULATOR_PACKAGE})`,
  );
}
