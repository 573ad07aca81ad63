import { MemoryLimiter } from "../../src/adapters/ratelimit/memory-limiter.js";
import { rateLimiterContract } from "./rate-limiter.contract.js";

rateLimiterContract(
  "memory rate limiter",
  (now) => Promise.resolve(new MemoryLimiter(now === undefined ? {} : { now })),
  {
    shared: false,
    keysHeld: (l, prefix) =>
      Promise.resolve([...(l as MemoryLimiter).keys()].filter((k) => k.startsWith(prefix)).length),
    sweep: (l) => Promise.resolve((l as MemoryLimiter).sweep()),
  },
);
