/**
 * WAL codec: round trips at every field boundary, and decode failures for
 * payloads that do not follow the format; a segment writer reusing the
 * chunks of the one before writes only its own records, and records of
 * every size queued across chunks come back in order.
 */
import assert from "node:assert/strict";
import {
  decodePayload,
  encodedRecordBytes,
  encodeRecord,
  SegmentReader,
  type WalOp,
  type WalRecord,
} from "../../storage/wal.ts";
import { LogWriter, spareLogChunks } from "../../storage/log_writer.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import { testSeed } from "../helpers.ts";
import {
  BatchOpKind,
  WAL_HEADER_BYTES,
  WAL_TYPE_CRC32,
} from "../../storage/format.ts";
import {
  KEY_BYTES_MAX,
  LOG_CHUNK_BYTES,
  VALUE_BYTES_MAX,
} from "../../storage/limits.ts";
import {
  binaryToBytes,
  crc32,
  getFixed32,
  Prng,
  unmaskCrc,
} from "../../util/mod.ts";

/** A put of `value`, a binary string (one char per byte). */
function put(key: string, value: string, expiry = 0): WalOp {
  return { kind: BatchOpKind.PUT, key, value: binaryToBytes(value), expiry };
}
function del(key: string): WalOp {
  return { kind: BatchOpKind.DELETE, key, value: undefined, expiry: 0 };
}

function roundTrip(seq: number, timestamp: number, ops: WalOp[]): void {
  const n = encodedRecordBytes(ops);
  const buf = new Uint8Array(n + 3);
  const end = encodeRecord(buf, 3, seq, timestamp, ops);
  assert.equal(end, n + 3, "encoded length matches the estimate");
  const length = getFixed32(buf, 3 + 4);
  assert.equal(length, n - WAL_HEADER_BYTES);
  const type = buf[3 + 8]!;
  assert.equal(type & WAL_TYPE_CRC32, WAL_TYPE_CRC32, "type says CRC-32");
  assert.equal(
    unmaskCrc(getFixed32(buf, 3)),
    crc32(buf, 3 + 4, end),
    "checksum covers length, type, payload",
  );
  const decoded = decodePayload(
    type & ~WAL_TYPE_CRC32,
    buf.subarray(3 + WAL_HEADER_BYTES, end),
  );
  assert.notEqual(typeof decoded, "string", String(decoded));
  assert.deepEqual(decoded, { seq, timestamp, ops });
}

Deno.test("single puts and deletes round trip, including empty values", () => {
  roundTrip(1, 0, [put("k", "")]);
  roundTrip(2, 1_700_000_000_000, [put("key", "value", 123)]);
  roundTrip(3, 5, [del("k")]);
  roundTrip(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, [
    put("\x00\xff", "\xff\x00", Number.MAX_SAFE_INTEGER),
  ]);
});

Deno.test("keys and values round trip at varint length boundaries", () => {
  for (const n of [127, 128, 16383, 16384]) {
    roundTrip(1, 1, [put("k".repeat(n), "v".repeat(n))]);
  }
  roundTrip(1, 1, [put("k".repeat(KEY_BYTES_MAX), "v".repeat(2097152))]);
});

Deno.test("a maximal key and value round trip", () => {
  roundTrip(9, 9, [
    put("\xab".repeat(KEY_BYTES_MAX), "\xcd".repeat(VALUE_BYTES_MAX)),
  ]);
});

Deno.test("batches round trip with mixed operations", () => {
  const rng = new Prng(3);
  const ops: WalOp[] = [];
  for (let i = 0; i < 200; i++) {
    const key = String.fromCharCode(...rng.bytes(1 + rng.int(20)));
    ops.push(
      rng.chance(0.3) ? del(key) : put(
        key,
        String.fromCharCode(...rng.bytes(rng.int(300))),
        rng.int(1000),
      ),
    );
  }
  roundTrip(100, 7, ops);
  roundTrip(100, 7, [del("a"), del("b")]);
});

Deno.test("payloads that break the format decode to a reason, never a record", () => {
  const ops = [put("key", "value")];
  const buf = new Uint8Array(encodedRecordBytes(ops));
  encodeRecord(buf, 0, 5, 6, ops);
  const payload = buf.subarray(WAL_HEADER_BYTES);
  assert.equal(
    typeof decodePayload(1, payload.subarray(0, 10)),
    "string",
    "short prefix",
  );
  assert.equal(
    typeof decodePayload(1, payload.subarray(0, payload.length - 1)),
    "string",
    "value cut",
  );
  assert.equal(typeof decodePayload(7, payload), "string", "unknown type");
  assert.equal(
    typeof decodePayload(2, payload),
    "string",
    "put body read as delete leaves bytes",
  );
  const zeroSeq = payload.slice();
  zeroSeq.fill(0, 0, 8);
  assert.equal(typeof decodePayload(1, zeroSeq), "string", "sequence 0");
  const batch = [put("a", "1"), del("b")];
  const bb = new Uint8Array(encodedRecordBytes(batch));
  encodeRecord(bb, 0, 1, 1, batch);
  const bp = bb.slice(WAL_HEADER_BYTES);
  bp[16] = 200; // count larger than the payload could hold
  assert.match(String(decodePayload(3, bp)), /count/);
  bp[16] = 2;
  bp[17] = 9; // unknown op kind
  assert.match(String(decodePayload(3, bp)), /kind/);
});

Deno.test("a segment's writer takes the chunks of the one closed before it, dirty, and writes only its own records", async () => {
  const env = new MemEnv();
  await env.mkdirAll("/db");
  spareLogChunks.clear();
  /** The records of segment `path`, then how the segment ended. */
  const readBack = async (path: string) => {
    const reader = new SegmentReader(await env.openReadable(path));
    const out: Array<WalRecord | string> = [];
    for (;;) {
      const r = await reader.next();
      if (r.kind !== "record") return { out, end: r.kind };
      out.push(decodePayload(r.type, r.payload));
    }
  };
  const open = (path: string) =>
    new LogWriter(env, path, env.openWritable(path), "none", 0);
  // The first writer queues 2 MB of records in chunks, before its file
  // is open.
  const first = open("/db/000001.log");
  const big = binaryToBytes("y".repeat(5000));
  for (let i = 0; i < 400; i++) {
    first.append(i + 1, [put(`big-${i}`, "y".repeat(5000))], undefined);
  }
  assert.equal(spareLogChunks.size, 0, "nothing is written yet");
  await first.close();
  const kept = spareLogChunks.size;
  assert.ok(
    kept >= Math.floor((400 * 5000) / LOG_CHUNK_BYTES),
    `its chunks are kept once written (${kept})`,
  );
  const second = open("/db/000002.log");
  const ops = [put("a", "1"), del("b"), put("c", "")];
  for (let i = 0; i < ops.length; i++) {
    second.append(1000 + i, [ops[i]!], undefined);
  }
  assert.equal(spareLogChunks.size, kept - 1, "the next writer takes one");
  await second.close();
  const { out, end } = await readBack("/db/000002.log");
  assert.equal(end, "end");
  assert.deepEqual(
    out.map((r) => typeof r === "string" ? r : [r.seq, r.ops]),
    ops.map((op, i) => [1000 + i, [op]]),
  );
  const firstBack = await readBack("/db/000001.log");
  assert.equal(firstBack.out.length, 400);
  assert.deepEqual((firstBack.out[399] as WalRecord).ops[0]!.value, big);
  spareLogChunks.clear();
});

Deno.test("records of every size, queued across chunks before and after the file opens, come back in order in every mode", async () => {
  const seed = testSeed("log chunks");
  for (const mode of ["none", "interval", "always"] as const) {
    const rng = new Prng(seed);
    const env = new MemEnv();
    await env.mkdirAll("/db");
    const path = "/db/000001.log";
    const writer = new LogWriter(env, path, env.openWritable(path), mode, 0);
    const written: WalOp[][] = [];
    const acks: Promise<void>[] = [];
    for (let i = 0; i < 120; i++) {
      // Mostly small records, some near a chunk and some past one.
      const size = rng.int(10) === 0
        ? LOG_CHUNK_BYTES - 64 + rng.int(2 * LOG_CHUNK_BYTES)
        : rng.int(3000);
      const ops = [put(`k${i}`, "x".repeat(size)), del(`d${i}`)];
      written.push(ops);
      if (mode === "none") {
        writer.append(2 * i + 1, ops, undefined);
      } else {
        const { promise, resolve, reject } = Promise.withResolvers<void>();
        writer.append(2 * i + 1, ops, { onDurable: resolve, onFailed: reject });
        acks.push(promise);
      }
      // Now and then the event loop turns: queued records are written.
      if (rng.int(8) === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await Promise.all(acks);
    await writer.close();
    const reader = new SegmentReader(await env.openReadable(path));
    const back: WalOp[][] = [];
    for (;;) {
      const r = await reader.next();
      if (r.kind !== "record") {
        assert.equal(r.kind, "end", `${mode}, seed ${seed}`);
        break;
      }
      const record = decodePayload(r.type, r.payload);
      assert.ok(typeof record !== "string", `${mode}: ${record}`);
      assert.equal(record.seq, 2 * back.length + 1);
      back.push(record.ops);
    }
    assert.equal(back.length, written.length, `${mode}, seed ${seed}`);
    for (let i = 0; i < written.length; i++) {
      assert.deepEqual(
        back[i],
        written[i],
        `${mode} record ${i}, seed ${seed}`,
      );
    }
  }
  spareLogChunks.clear();
});
