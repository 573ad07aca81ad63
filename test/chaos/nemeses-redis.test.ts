// Issue 16: every nemesis on a three-node cluster on Redis, checked (nemesis-suite.ts).
import { chaosSuite } from "./nemesis-suite.js";

chaosSuite("redis");
