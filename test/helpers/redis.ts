// The private redis-server of the tests (tools/redis-server.ts, shared with the
// benchmark), and whether the tests needing it can run here.
import { hasBinary } from "../../tools/process-harness.js";
import { requireBinary } from "./require-binary.js";

export {
  REDIS_AOF_EVERYSEC,
  startRedisServer,
  type RedisServer,
  type RedisServerOptions,
} from "../../tools/redis-server.js";

/** Whether tests needing redis-server can run; throws under CI=true when it is missing. */
export function redisServerAvailable(): boolean {
  return requireBinary(hasBinary("redis-server"), "redis-server");
}
