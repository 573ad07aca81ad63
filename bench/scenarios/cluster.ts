// Hook for the cluster scenario, which comes later: two Roomcast nodes sharing a
// broker (BROKER=redis or nats) and a store, against two Socket.IO nodes with
// @socket.io/redis-adapter (bench/peers/socketio-server.ts reads REDIS_URL for
// that already), with each room's members split across the nodes so every
// message crosses the broker. To wire it: start the nodes with withServer(),
// give half the members each node's URL (one LoadGenerator per node), and reuse
// runThroughput's ramp and measureWindow, adding both nodes' CPU.
import type { RunContext } from "./context.js";

export interface ClusterPlan {
  nodes: number;
  broker: "redis" | "nats";
  store: "postgres" | "memory";
}

export const CLUSTER_PLAN: ClusterPlan = { nodes: 2, broker: "redis", store: "postgres" };

/** Not implemented yet: says so in the report instead of pretending. */
export function clusterNote(ctx: RunContext): string {
  ctx.log("cluster scenario: not implemented yet (hook in bench/scenarios/cluster.ts)");
  return `Cluster (${CLUSTER_PLAN.nodes} nodes, BROKER=${CLUSTER_PLAN.broker}, STORE=${CLUSTER_PLAN.store}, vs Socket.IO + redis-adapter): not measured yet; hook in bench/scenarios/cluster.ts.`;
}
