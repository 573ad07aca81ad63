import assert from "node:assert/strict";
import { test } from "node:test";
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { Opcode, buildFrame } from "../../src/gateway/frame.js";

// @types/ws does not declare ws's Receiver (the frame parser), but ws exports it.
const { Receiver } = createRequire(import.meta.url)("ws") as {
  Receiver: new (opts: { isServer: boolean; binaryType: string }) => EventEmitter & {
    write(chunk: Buffer): void;
  };
};

// ws's own parser is the reference: every length class must parse back.
function parse(frame: Buffer, binary: boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const r = new Receiver({ isServer: false, binaryType: "nodebuffer" });
    r.on("message", (data: Buffer, isBinary: boolean) => {
      assert.equal(isBinary, binary);
      resolve(data);
    });
    r.on("error", reject);
    r.write(frame);
  });
}

for (const size of [0, 1, 125, 126, 65_535, 65_536, 200_000]) {
  test(`frame - ${size} bytes parse back with ws's receiver`, async () => {
    const payload = Buffer.alloc(size, 0x61);
    assert.deepEqual(await parse(buildFrame(Opcode.Binary, payload), true), payload);
    assert.deepEqual(await parse(buildFrame(Opcode.Text, payload), false), payload);
  });
}
