import { MemoryLimiter } from "../../src/adapters/ratelimit/memory-limiter.js";
import { rateLimiterContract } from "./rate-limiter.contract.js";

rateLimiterContract(
  "memory rate limiter",
  (now) => Promise.resolve(new MemoryLimiter(now === undefined ? {} : { now })),
  {
    shared: false,
    keysHeld: (l) => Promise.resolve((l as MemoryLimiter).size),
    sweep: (l) => Promise.resolve((l as MemoryLimiter).sweep()),
  },
);
