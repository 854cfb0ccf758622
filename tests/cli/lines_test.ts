/** Splitting piped input into lines: bytes kept exactly, limits in bytes. */
import assert from "node:assert/strict";
import { BadLine, LINE_BYTES_MAX, readLines } from "../../cli/lines.ts";

function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks);
}

async function collect(...chunks: Uint8Array[]) {
  const out: Array<string | BadLine> = [];
  for await (const line of readLines(streamOf(...chunks))) out.push(line);
  return out;
}

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("lines split on LF and CRLF across chunks; a last line needs no newline", async () => {
  assert.deepEqual(
    await collect(enc("PUT a 1\r\nPU"), enc("T b 2\n\nGET"), enc(" a")),
    ["PUT a 1", "PUT b 2", "", "GET a"],
  );
  // A byte order mark opening the input is dropped (a script saved by an
  // editor that writes one: its first command was unknown); anywhere else
  // it is part of the line, as a NUL is.
  assert.deepEqual(
    await collect(
      enc("\uFEFFPUT a 1\nx\uFEFF\n\uFEFFy\n\u0000line too long\n"),
    ),
    ["PUT a 1", "x\uFEFF", "\uFEFFy", "\u0000line too long"],
  );
});

Deno.test("a line that is not valid UTF-8 is refused in its place, even split across chunks", async () => {
  const got = await collect(
    enc("PUT k "),
    new Uint8Array([0xe2, 0x82]),
    enc("\nPUT k \u20ac\n"),
    new Uint8Array([0xe2]),
    new Uint8Array([0x82, 0xac, 0x0a]),
  );
  assert.equal(got.length, 3);
  assert.ok(got[0] instanceof BadLine);
  assert.match(got[0].message, /not valid UTF-8/);
  assert.deepEqual(got.slice(1), ["PUT k \u20ac", "\u20ac"]);
});

Deno.test("the line limit counts bytes, and the line after a long one is read", async () => {
  // Two bytes per character: half as many characters as the limit allows
  // bytes, and then some, pass it.
  const long = enc("PUT k " + "\u00e9".repeat(LINE_BYTES_MAX / 2 + 1) + "\n");
  const got = await collect(
    long.subarray(0, 1 << 20),
    long.subarray(1 << 20),
    enc("GET k\n"),
  );
  assert.equal(got.length, 2);
  assert.ok(got[0] instanceof BadLine);
  assert.match(got[0].message, /line longer than \d+ bytes/);
  assert.equal(got[1], "GET k");
  // Exactly at the limit is a line.
  const atLimit = new Uint8Array(LINE_BYTES_MAX + 1).fill(0x61);
  atLimit[LINE_BYTES_MAX] = 0x0a;
  const [line] = await collect(atLimit);
  assert.equal(typeof line, "string");
  assert.equal((line as string).length, LINE_BYTES_MAX);
});
