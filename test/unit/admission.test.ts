import assert from "node:assert/strict";
import { it } from "node:test";
import { Admission, isRefusal, type Slot } from "../../src/gateway/admission.js";

const limits = { maxConnections: 3, maxPerUser: 2, maxPerIp: 2, trustProxy: 0 };

function slot(admission: Admission, user: string, ip: string): Slot {
  const got = admission.admit(user, ip);
  assert.ok(!isRefusal(got), `refused: ${JSON.stringify(got)}`);
  return got;
}

void it("admission - per-user, per-address and node limits; a slot given back twice frees one place", () => {
  const admission = new Admission(limits);
  const a = slot(admission, "u1", "10.0.0.1");
  slot(admission, "u1", "10.0.0.2");
  assert.deepEqual(admission.admit("u1", "10.0.0.3"), {
    status: 429,
    message: "too many connections for this user",
  });
  slot(admission, "", "10.0.0.1");
  assert.deepEqual(admission.admit("", "10.0.0.1"), { status: 503, message: "node full" });

  a.release();
  a.release(); // idempotent: the second call must not free another place
  slot(admission, "u2", "10.0.0.4");
  assert.deepEqual(admission.admit("u3", "10.0.0.5"), { status: 503, message: "node full" });
});

void it("admission - the address limit counts anonymous and logged-in connections alike", () => {
  const admission = new Admission({ ...limits, maxConnections: 0 });
  slot(admission, "", "10.0.0.9");
  const b = slot(admission, "u1", "10.0.0.9");
  assert.deepEqual(admission.admit("u2", "10.0.0.9"), {
    status: 429,
    message: "too many connections from this address",
  });
  b.release();
  slot(admission, "u2", "10.0.0.9");
});
