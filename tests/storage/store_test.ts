/**
 * The store API: operations, batches, ordering under concurrency, scans
 * with point-in-time views, limits, the directory lock, and fail-stop after
 * an I/O error. A seeded model test checks random operation sequences with
 * reopens against an in-memory sorted model.
 */
import assert from "node:assert/strict";
import {
  type Env,
  limits,
  LockedError,
  openStore,
  type ReadableFile,
  type ScanOptions,
  StoreClosedError,
  StoreFailedError,
  type StoreOptions,
  type SyncMode,
  type WritableFile,
} from "../../storage/mod.ts";
import { denoEnv } from "../../storage/env_deno.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import { ReadKey } from "../../storage/input.ts";
import { readCurrent, readManifest } from "../../storage/manifest.ts";
import { tableName } from "../../storage/sstable/mod.ts";
import { Prng } from "../../util/mod.ts";
import {
  names,
  overriding,
  tempDir,
  testSeed,
  text,
  wrapWritable,
} from "../helpers.ts";

const enc = new TextEncoder();

async function collect(
  it: AsyncIterable<{ key: Uint8Array; value: Uint8Array }>,
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of it) out.push(`${text(e.key)}=${text(e.value)}`);
  return out;
}

for (const sync of ["always", "interval", "none"] as SyncMode[]) {
  Deno.test(`put, get, delete and reopen keep their meaning under sync ${sync}`, async () => {
    await using tmp = await tempDir();
    let store = await openStore(tmp.path, { sync });
    await store.put("a", "1");
    await store.put(enc.encode("b"), enc.encode("2"));
    await store.put("a", "3");
    await store.delete("b");
    await store.delete("never-there");
    assert.equal(text(await store.get("a")), "3");
    assert.equal(await store.get("b"), undefined);
    assert.equal(await store.has("a"), true);
    assert.equal(await store.count(), 1);
    await store.close();
    store = await openStore(tmp.path, { sync });
    assert.equal(text(await store.get("a")), "3");
    assert.equal(await store.get("b"), undefined);
    assert.equal(store.stats().numKeys, 1);
    assert.equal(store.stats().lastSequence, 5);
    await store.close();
  });
}

Deno.test("values are copies: mutating an input or a result changes nothing stored", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  const v = enc.encode("abc");
  await store.put("k", v);
  v[0] = 0x7a;
  const got = (await store.get("k"))!;
  assert.equal(text(got), "abc");
  got[0] = 0x7a;
  assert.equal(text(await store.get("k")), "abc");
  await store.close();
});

Deno.test("a write's values are the store's own once the call returns, under every sync mode and when it waits for a flush", async () => {
  // A write is kept for later when it waits for its fsync or for a flush:
  // it must have copied the caller's array before the call returned.
  for (const sync of ["always", "interval", "none"] as const) {
    await using tmp = await tempDir();
    const store = await openStore(tmp.path, { sync, memtableBytes: 4096 });
    const pending: Promise<void>[] = [];
    const want = new Map<string, string>();
    for (let i = 0; i < 400; i++) {
      const key = `k${i}`;
      const v = enc.encode(`value ${i} ${"x".repeat(60)}`);
      want.set(key, text(v)!);
      if (i % 3 === 0) {
        pending.push(store.put(key, v));
      } else if (i % 3 === 1) {
        pending.push(store.batch([{ type: "put", key, value: v }]));
      } else {
        // One array for two puts of a batch, changed after the call.
        pending.push(store.batch([
          { type: "put", key, value: v },
          { type: "put", key: `${key}-again`, value: v },
        ]));
        want.set(`${key}-again`, text(v)!);
      }
      v.fill(0x21);
    }
    await Promise.all(pending);
    if (sync === "none") {
      assert.ok(store.stats().writeStalls > 0, "no write waited for a flush");
    }
    for (const [k, v] of want) {
      assert.equal(text(await store.get(k)), v, `${sync}: ${k}`);
    }
    await store.close();
    const reopened = await openStore(tmp.path);
    for (const [k, v] of want) {
      assert.equal(text(await reopened.get(k)), v, `${sync}, reopened: ${k}`);
    }
    await reopened.close();
  }
});

Deno.test("binary keys and values, empty values and maximal keys round trip", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  const key = Uint8Array.of(0, 255, 128, 0);
  const value = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  await store.put(key, value);
  await store.put("empty", "");
  const big = new Uint8Array(limits.KEY_BYTES_MAX).fill(0x80);
  await store.put(big, "big");
  await store.close();
  store = await openStore(tmp.path);
  assert.deepEqual(await store.get(key), value);
  assert.deepEqual(await store.get("empty"), new Uint8Array(0));
  assert.equal(text(await store.get(big)), "big");
  await store.close();
});

Deno.test("a get finds a key given as a built-up string, UTF-8 text or bytes, in memtables and in tables, whatever key came before", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  const encoder = new TextEncoder();
  // Keys of every kind, each read in turn as text and as bytes, so that a
  // get's key buffer is left by a key of one kind and reused by another.
  const keys: string[] = [];
  for (let i = 0; i < 300; i++) {
    keys.push(
      i % 3 === 0
        ? "key-" + String(i).padStart(12, "0")
        : i % 3 === 1
        ? `clé-${i}-ü`
        : String.fromCharCode(0x4e00 + i) + i,
    );
  }
  for (const [i, k] of keys.entries()) await store.put(k, `v${i}`);
  const check = async (where: string) => {
    for (const [i, k] of keys.entries()) {
      assert.equal(text(await store.get(k)), `v${i}`, `${where}: ${k}`);
      assert.equal(
        text(await store.get(encoder.encode(k))),
        `v${i}`,
        `${where}: ${k} as bytes`,
      );
      assert.equal(await store.get(k + "x"), undefined, `${where}: ${k}x`);
      assert.equal(await store.get(k.slice(0, -1)), undefined);
    }
  };
  assert.equal(store.stats().flushes, 0);
  await check("memtables");
  await store.close();
  // Reopened with tiny memtables, and pushed into tables by other writes.
  store = await openStore(tmp.path, { memtableBytes: 4096 });
  for (let i = 0; i < 300; i++) await store.put(`filler${i}`, "x".repeat(50));
  await store.settle();
  assert.ok(store.stats().flushes > 0);
  await check("tables");
  await store.close();
});

Deno.test("reads see every durable write issued before them, whether the writes came before or after the first read that met them in flight", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  const w1 = store.put("a", "1");
  // The first read to meet writes in flight indexes them ...
  const g1 = store.get("a");
  // ... and the writes after it join the index.
  const w2 = store.put("b", "2");
  const w3 = store.put("a", "3");
  const g2 = store.get("b");
  const g3 = store.get("a");
  const gm = store.getMany(["a", "b", "c"]);
  const w4 = store.delete("b");
  const g4 = store.get("b");
  assert.equal(text(await g1), "1");
  assert.equal(text(await g2), "2");
  assert.equal(text(await g3), "3");
  assert.deepEqual((await gm).map(text), ["3", "2", undefined]);
  assert.equal(await g4, undefined);
  await Promise.all([w1, w2, w3, w4]);
  // Nothing in flight any more: the next writes are indexed afresh.
  const w5 = store.put("c", "5");
  assert.equal(text(await store.get("c")), "5");
  await w5;
  await store.close();
});

Deno.test("a read sees a durable write of its key that waits behind a flush, with or without an earlier read indexing the writes in flight", async () => {
  for (const sync of ["always", "interval"] as const) {
    for (const earlyRead of [false, true]) {
      await using tmp = await tempDir();
      // Tiny memtables: thousands of writes at once stall behind flushes.
      const store = await openStore(tmp.path, { memtableBytes: 1024, sync });
      const writes: Promise<void>[] = [];
      const fill = (tag: string) => {
        for (let i = 0; i < 2000; i++) {
          writes.push(store.put(`${tag}${i}`, "z".repeat(40)));
        }
      };
      const where = `sync ${sync}, ${
        earlyRead ? "with" : "without"
      } an early read`;
      fill("a");
      const w1 = store.put("hot", "1");
      const early = earlyRead ? store.get("hot") : undefined;
      fill("b");
      const w2 = store.put("hot", "2");
      fill("c");
      await w1;
      assert.ok(store.stats().writeStalls > 0, `${where}: writes stalled`);
      // hot=1 is durable; hot=2 may still wait for room: reads wait for it.
      const [got, many] = await Promise.all([
        store.get("hot"),
        store.getMany(["hot", "a0"]),
      ]);
      assert.equal(text(got), "2", where);
      assert.deepEqual(many.map(text), ["2", "z".repeat(40)], where);
      if (early) assert.equal(text(await early), "1", where);
      await Promise.all([...writes, w2]);
      await store.close();
    }
  }
});

Deno.test("scans and snapshots left open when the store closes fail with StoreClosedError, not a file error; reads issued before close() complete", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 4096,
    background: "inline",
  });
  for (let i = 0; i < 300; i++) {
    await store.put(`k${String(i).padStart(4, "0")}`, "v".repeat(50));
  }
  await store.settle();
  assert.ok(store.stats().levels.some((l) => l.tables > 0), "tables to read");
  const scan = store.scan();
  const keys = store.keys({ reverse: true });
  assert.equal((await scan.next()).done, false);
  assert.equal((await keys.next()).done, false);
  const snapshot = store.snapshot();
  const snapshotScan = snapshot.scan();
  await store.close();
  await assert.rejects(scan.next(), StoreClosedError);
  assert.deepEqual(await scan.next(), { done: true, value: undefined });
  await assert.rejects(keys.next(), StoreClosedError);
  await assert.rejects(snapshotScan.next(), StoreClosedError);
  await assert.rejects(snapshot.get("k0001"), StoreClosedError);
  await assert.rejects(snapshot.getMany(["k0001"]), StoreClosedError);
  assert.throws(() => snapshot.scan(), StoreClosedError);
  snapshot.release();
  // Reads issued before close() was called still complete: close() waits
  // for writes before it closes any table.
  const again = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 4096,
  });
  await again.put("late", "v");
  const before = again.snapshot();
  const first = again.scan().next();
  const count = again.count({ prefix: "k" });
  const snap = before.get("k0001");
  const got = again.get("k0001");
  const closing = again.close();
  assert.equal(text((await first).value!.key), "k0000");
  assert.equal(await count, 300);
  assert.equal(text(await snap), "v".repeat(50));
  assert.equal(text(await got), "v".repeat(50));
  await closing;
});

Deno.test("a caller that transfers the buffer of a value it got does not break later reads", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { sync: "none" });
  await store.put("a", "alpha");
  await store.put("b", "bravo");
  const a = (await store.get("a"))!;
  // Values are views of shared chunks (as with Node's Buffer pool):
  // transferring one's buffer detaches the chunk.
  structuredClone(a, { transfer: [a.buffer as ArrayBuffer] });
  assert.equal(a.length, 0, "the transferred chunk is detached");
  for (let i = 0; i < 3; i++) {
    assert.equal(text(await store.get("a")), "alpha");
    assert.equal(text(await store.get("b")), "bravo");
  }
  const [b] = await store.getMany(["b"]);
  assert.equal(text(b), "bravo");
  const entries: string[] = [];
  for await (const e of store.scan()) {
    entries.push(`${text(e.key)}=${text(e.value)}`);
  }
  assert.deepEqual(entries, ["a=alpha", "b=bravo"]);
  await store.close();
});

Deno.test("a scan goes on to its end bound when the caller transfers the buffer of a value it returned", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 4096,
  });
  for (let i = 0; i < 300; i++) {
    await store.put(`k${String(i).padStart(3, "0")}`, `value-${i}`);
  }
  await store.settle(); // most of the keys are in tables
  let n = 0;
  for await (const e of store.scan({ end: "k200" })) {
    // The values after it come from a copy outside the detached chunk.
    assert.equal(text(e.value), `value-${n}`);
    // Detaches the chunk the value is a view of.
    if (n === 10) {
      structuredClone(e.value, { transfer: [e.value.buffer as ArrayBuffer] });
    }
    n++;
  }
  assert.equal(n, 200, "the scan's own bound is not in a chunk it returned");
  await store.close();
});

Deno.test("entries a scan read ahead are read again when the caller transfers the buffer of one handed out before them", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 4096,
  });
  const key = (i: number) => `k${String(i).padStart(3, "0")}`;
  for (let i = 0; i < 300; i++) await store.put(key(i), `value-${i}`);
  await store.settle(); // most of the keys are in tables
  for (let i = 0; i < 300; i += 4) await store.put(key(i), `again-${i}`);
  for (let i = 1; i < 300; i += 9) await store.delete(key(i));
  const want = new Map<string, string>();
  for (let i = 0; i < 300; i++) {
    if (i % 9 === 1) continue;
    want.set(key(i), i % 4 === 0 ? `again-${i}` : `value-${i}`);
  }
  const cases: ScanOptions[] = [
    {},
    { reverse: true },
    { start: key(50), limit: 120 },
    { reverse: true, end: key(250), limit: 77 },
  ];
  for (const options of cases) {
    const expected = [...want].filter(([k]) =>
      (options.start === undefined || k >= options.start) &&
      (options.end === undefined || k < options.end)
    );
    if (options.reverse) expected.reverse();
    const limited = expected.slice(0, options.limit ?? expected.length);
    for (const at of [1, 2, 3, 5, 10, 40]) {
      for (const what of ["key", "value", "keys only"] as const) {
        const got: string[] = [];
        const scan = what === "keys only"
          ? store.keys(options)
          : store.scan(options);
        let n = 0;
        for await (const e of scan) {
          const entry = e instanceof Uint8Array ? { key: e, value: e } : e;
          got.push(
            what === "keys only"
              ? text(entry.key)!
              : `${text(entry.key)}=${text(entry.value)}`,
          );
          // Detaches the memory this entry's copies (and maybe the next
          // ones', read ahead) are in.
          if (++n === at) {
            const buffer = (what === "value" ? entry.value : entry.key).buffer;
            structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });
          }
        }
        assert.deepEqual(
          got,
          limited.map(([k, v]) => what === "keys only" ? k : `${k}=${v}`),
          `${JSON.stringify(options)}, ${what} transferred at ${at}`,
        );
      }
    }
  }
  // Empty values, whose keys (too long for the pool) have buffers of their
  // own: a value read ahead into memory a transfer detached is told by its
  // buffer, not its length.
  const long = (i: number) => `${"x".repeat(5000)}${i}`;
  for (let i = 0; i < 20; i++) await store.put(long(i), "");
  let seen = 0;
  for await (const e of store.scan({ prefix: "xxxx" })) {
    assert.equal(e.value.length, 0);
    assert.ok(e.value.buffer.byteLength > 0, `value ${seen} is detached`);
    if (seen++ === 1) {
      structuredClone(e.value.buffer, {
        transfer: [e.value.buffer as ArrayBuffer],
      });
    }
  }
  assert.equal(seen, 20);
  for (let i = 0; i < 20; i++) await store.delete(long(i));
  // The same through all() after next() read ahead. (Transferring empties
  // what was handed out from that memory, the first key too: kept as text.)
  const scan = store.scan({});
  const first = text((await scan.next()).value!.key)!;
  const second = (await scan.next()).value!;
  const secondKey = text(second.key)!;
  structuredClone(second.key.buffer, {
    transfer: [second.key.buffer as ArrayBuffer],
  });
  const rest = (await scan.all()).map((e) => `${text(e.key)}=${text(e.value)}`);
  assert.deepEqual(
    [first, secondKey, ...rest.map((p) => p.slice(0, p.indexOf("=")))],
    [...want.keys()],
  );
  assert.deepEqual(rest, [...want].slice(2).map(([k, v]) => `${k}=${v}`));
  await store.close();
});

Deno.test("a read key holds a caller's array only until released, and reads text after bytes", () => {
  const k = new ReadKey();
  const big = new Uint8Array(1 << 16);
  const key = big.subarray(5, 21).fill(0x61);
  assert.equal(k.set(key).bytes, key);
  assert.equal(k.binary, "a".repeat(16));
  k.release();
  assert.notEqual(k.bytes.buffer, big.buffer);
  assert.equal(k.length, 0);
  k.set("é!");
  assert.deepEqual(
    k.bytes.subarray(0, k.length),
    Uint8Array.of(0xc3, 0xa9, 0x21),
  );
  assert.equal(k.binary, "\xc3\xa9!");
});

Deno.test("limits reject bad input with clear errors and store nothing", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  await assert.rejects(store.put("", "v"), /Key must not be empty/);
  await assert.rejects(
    store.put(new Uint8Array(limits.KEY_BYTES_MAX + 1), "v"),
    /limit is 65536 \(KEY_BYTES_MAX\)/,
  );
  await assert.rejects(
    store.put("k", new Uint8Array(limits.VALUE_BYTES_MAX + 1)),
    /VALUE_BYTES_MAX/,
  );
  await assert.rejects(store.put(42 as unknown as string, "v"), TypeError);
  await assert.rejects(
    store.batch([{ type: "nope" } as never]),
    /type "put" or "delete"/,
  );
  await assert.rejects(
    store.batch(
      Array.from(
        { length: limits.BATCH_OPS_MAX + 1 },
        () => ({ type: "delete" as const, key: "k" }),
      ),
    ),
    /BATCH_OPS_MAX/,
  );
  await assert.rejects(
    store.getMany(Array(limits.GET_MANY_KEYS_MAX + 1).fill("k")),
    /limit is 10000 \(GET_MANY_KEYS_MAX\)/,
  );
  await assert.rejects(store.get(""), /Key must not be empty/);
  await assert.rejects(store.get(new Uint8Array(0)), /Key must not be empty/);
  await assert.rejects(
    store.get("k".repeat(limits.KEY_BYTES_MAX + 1)),
    /limit is 65536 \(KEY_BYTES_MAX\)/,
  );
  await assert.rejects(
    store.get("é".repeat(limits.KEY_BYTES_MAX / 2 + 1)),
    /Key is 65538 bytes; the limit is 65536/,
  );
  await assert.rejects(
    store.get(new Uint8Array(limits.KEY_BYTES_MAX + 1)),
    /limit is 65536 \(KEY_BYTES_MAX\)/,
  );
  await assert.rejects(store.get(42 as unknown as string), TypeError);
  await assert.rejects(store.getMany("k" as never), /array of keys/);
  await assert.rejects(store.getMany(["k", ""]), /Key must not be empty/);
  assert.throws(() => store.scan({ limit: -1 }), /non-negative integer/);
  assert.throws(
    () => store.scan({ limit: "2" as never }),
    /non-negative integer, got "2"/,
  );
  // Not "got 2", which would read as a valid limit refused.
  assert.throws(
    () => store.scan({ limit: 2n as never }),
    /non-negative integer, got 2n \(a bigint\)$/,
  );
  assert.throws(
    () => store.scan({ reverse: "yes" as never }),
    /Scan reverse must be a boolean, got yes/,
  );
  assert.throws(() => store.scan(null as never), /options must be an object/);
  // A misspelled option is refused, not ignored (a scan of everything).
  assert.throws(
    () => store.scan({ lmit: 1 } as never),
    /^TypeError: Unknown scan option "lmit"; known: start, end, prefix, limit, reverse$/,
  );
  assert.throws(() => store.keys({ prefx: "a" } as never), /"prefx"/);
  await assert.rejects(
    store.count({ star: "a" } as never),
    /^TypeError: Unknown count option "star"; known: start, end, prefix$/,
  );
  await assert.rejects(store.count(null as never), /options must be an object/);
  await assert.rejects(
    store.count({ limit: 5 } as never),
    /^TypeError: count takes prefix, start and end, not limit$/,
  );
  // A bad operation of a batch is named, and nothing of the batch is kept.
  await assert.rejects(
    store.batch([
      { type: "put", key: "ok", value: "1" },
      { type: "put", key: "", value: "2" },
    ]),
    /Batch operation 1: Key must not be empty/,
  );
  await assert.rejects(
    store.batch([{ type: "put", key: "k", value: undefined as never }]),
    (error: unknown) =>
      error instanceof TypeError &&
      /Batch operation 0: Value must be a string or a Uint8Array/.test(
        error.message,
      ),
  );
  // Lone surrogates have no UTF-8: "\ud800" and "\udc00" would both have
  // been stored as U+FFFD.
  await assert.rejects(
    store.put("a\ud800", "v"),
    /Key is not well-formed UTF-16: a lone surrogate at index 1/,
  );
  await assert.rejects(
    store.put("k", "\udc00x"),
    /Value is not well-formed UTF-16: a lone surrogate at index 0/,
  );
  await assert.rejects(store.get("\udc00"), /Key is not well-formed/);
  assert.throws(() => store.scan({ prefix: "\ud800" }), /Scan prefix is not/);
  assert.equal(text(await store.get("ok")), undefined);
  assert.equal(store.stats().lastSequence, 0);
  assert.equal(await store.count(), 0);
  await store.close();
  await assert.rejects(store.put("k", "v"), StoreClosedError);
});

Deno.test("a batch is atomic: one record, all of it replays or none", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  await store.put("x", "old");
  await store.batch([
    { type: "put", key: "a", value: "1" },
    { type: "delete", key: "x" },
    { type: "put", key: "a", value: "2" },
  ]);
  assert.equal(store.stats().wal.records, 2);
  assert.equal(text(await store.get("a")), "2");
  await store.close();
  const path = `${tmp.path}/000001.log`;
  const full = await Deno.readFile(path);
  // Cut anywhere inside the batch record: none of the batch survives.
  await Deno.writeFile(path, full.subarray(0, full.length - 1));
  store = await openStore(tmp.path);
  assert.equal(await store.get("a"), undefined);
  assert.equal(text(await store.get("x")), "old");
  await store.close();
});

Deno.test("concurrent operations behave as if applied one at a time in issue order", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  const results: Array<Promise<unknown>> = [];
  for (let i = 0; i < 200; i++) {
    results.push(store.put("k", String(i)));
    results.push(store.get("k").then(text));
    if (i % 50 === 0) results.push(store.delete("k"), store.get("k"));
    if (i % 30 === 0) {
      results.push(
        store.getMany(["k", "absent", "k"]).then((vs) => vs.map(text)),
      );
    }
    if (i % 40 === 0) results.push(store.count());
  }
  const settled = await Promise.all(results);
  let expected: string | undefined;
  let r = 0;
  for (let i = 0; i < 200; i++) {
    r++; // put
    expected = String(i);
    assert.equal(settled[r++], expected, `get after put ${i}`);
    if (i % 50 === 0) {
      r++;
      assert.equal(settled[r++], undefined, `get after delete ${i}`);
    }
    if (i % 30 === 0) {
      const e = i % 50 === 0 ? undefined : expected;
      assert.deepEqual(settled[r++], [e, undefined, e], `getMany ${i}`);
    }
    if (i % 40 === 0) {
      assert.equal(settled[r++], i % 50 === 0 ? 0 : 1, `count ${i}`);
    }
  }
  assert.ok(store.stats().wal.groupMax > 1, "writes shared fsyncs");
  await store.close();
});

Deno.test("gets and getMany behind stalled writes see the latest write of each key issued before them, while later writes are flushed, in every sync mode", async () => {
  const seed = testSeed("reads behind stalls");
  for (const sync of ["none", "interval", "always"] as const) {
    for (let round = 0; round < 4; round++) {
      const rng = new Prng(seed + round);
      const store = await openStore("/db", {
        env: new MemEnv(),
        background: "inline",
        sync,
        memtableBytes: 4096 * (1 + rng.int(4)),
        l0MergeTrigger: 2 + rng.int(3),
        idleMergeMs: 0,
      });
      const where = `${sync}, seed ${seed + round}`;
      const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
      const model = new Map<string, string>();
      const reads: Array<
        { at: number; promise: Promise<unknown>; want: unknown }
      > = [];
      const writes: Promise<void>[] = [];
      // Unawaited bursts: memtables freeze until writes stall, and the
      // stalled ones are performed while the reads behind them wait.
      for (let i = 0; i < 2500; i++) {
        const key = keys[rng.int(keys.length)]!;
        const r = rng.int(10);
        if (r < 6) {
          const value = `${key}:${i}:${"p".repeat(rng.int(300))}`;
          model.set(key, value);
          writes.push(store.put(key, value));
        } else if (r < 7) {
          model.delete(key);
          writes.push(store.delete(key));
        } else if (r < 9) {
          reads.push({
            at: i,
            promise: store.get(key).then(text),
            want: model.get(key),
          });
        } else {
          const ks = [key, keys[rng.int(keys.length)]!];
          reads.push({
            at: i,
            promise: store.getMany(ks).then((vs) => vs.map(text)),
            want: ks.map((k) => model.get(k)),
          });
        }
      }
      await Promise.all(writes);
      assert.ok(store.stats().writeStalls > 0, `writes stalled (${where})`);
      for (const { at, promise, want } of reads) {
        assert.deepEqual(await promise, want, `read ${at} (${where})`);
      }
      await store.close();
    }
  }
});

Deno.test("under sync none, writes acknowledged to a segment whose file is still opening survive a background failure and a close", async () => {
  const mem = new MemEnv();
  let slowLogs = false;
  let failTables = false;
  // New WAL segments take 50 ms to open (a busy disk), and a flush cannot
  // create its table: the store fails while the new segment is opening.
  const env = overriding(mem, {
    openWritable: async (path) => {
      if (slowLogs && path.endsWith(".log")) {
        await new Promise((r) => setTimeout(r, 50));
      }
      if (failTables && path.endsWith(".sst.tmp")) {
        throw new Error("EIO: cannot create the table");
      }
      return await mem.openWritable(path);
    },
  });
  const options = {
    env,
    background: "inline" as const,
    sync: "none" as const,
    memtableBytes: 1024,
    idleMergeMs: 0,
  };
  const store = await openStore("/db", options);
  slowLogs = failTables = true;
  const acked: string[] = [];
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 14; i++) {
    const key = `k${String(i).padStart(2, "0")}`;
    writes.push(
      store.put(key, "v".repeat(100)).then(() => void acked.push(key)),
    );
  }
  await Promise.allSettled(writes);
  await new Promise((r) => setTimeout(r, 100));
  assert.match(String(store.stats().failure), /cannot create the table/);
  await assert.rejects(store.close(), StoreFailedError);
  slowLogs = failTables = false;
  const reopened = await openStore("/db", options);
  const missing: string[] = [];
  for (const key of acked) {
    if ((await reopened.get(key)) === undefined) missing.push(key);
  }
  await reopened.close();
  assert.ok(acked.length > 10, `${acked.length} acknowledged`);
  assert.deepEqual(missing, [], "acknowledged writes lost without a crash");
});

Deno.test("getMany reads every key at one point in time, in issue order", async () => {
  await using tmp = await tempDir();
  // A tiny memtable: the keys are spread over memtables and tables.
  const store = await openStore(tmp.path, { memtableBytes: 4096 });
  for (let i = 0; i < 300; i++) await store.put(`k${i}`, `old${i}`);
  const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
  // Writes in flight before the call are seen, writes issued after are not.
  const before = store.put("k7", "new7");
  const read = store.getMany([...keys, "missing"]);
  const after = store.put("k8", "new8");
  const values = (await read).map(text);
  assert.equal(values.length, 301);
  assert.equal(values[7], "new7");
  assert.equal(values[8], "old8");
  assert.equal(values[299], "old299");
  assert.equal(values[300], undefined);
  await Promise.all([before, after]);
  const again = await store.getMany(["k8", "k8"]);
  assert.equal(text(again[0]), "new8");
  // Each result is its own copy.
  again[0]![0] = 0;
  assert.equal(text(again[1]), "new8");
  assert.deepEqual(await store.getMany([]), []);
  await store.close();
  await assert.rejects(store.getMany(["k1"]), StoreClosedError);
  // sync() and settle() alike: nothing to wait for on a closed store.
  await assert.rejects(store.sync(), StoreClosedError);
  await assert.rejects(store.settle(), StoreClosedError);
});

Deno.test("64 concurrent writers are all durable and share fsyncs", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  await Promise.all(Array.from({ length: 64 }, async (_, w) => {
    for (let i = 0; i < 20; i++) await store.put(`w${w}-${i}`, `${w}:${i}`);
  }));
  const syncs = store.stats().wal.syncs;
  assert.ok(syncs < 64 * 20 / 4, `${syncs} fsyncs for 1280 writes`);
  await store.close();
  store = await openStore(tmp.path);
  assert.equal(await store.count(), 1280);
  assert.equal(text(await store.get("w63-19")), "63:19");
  await store.close();
});

Deno.test("scans honour start, end, prefix, limit and reverse", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  for (const k of ["a", "ab", "abc", "b", "ba", "c"]) {
    await store.put(k, k.toUpperCase());
  }
  assert.deepEqual(await collect(store.scan()), [
    "a=A",
    "ab=AB",
    "abc=ABC",
    "b=B",
    "ba=BA",
    "c=C",
  ]);
  assert.deepEqual(await collect(store.scan({ prefix: "a" })), [
    "a=A",
    "ab=AB",
    "abc=ABC",
  ]);
  assert.deepEqual(await collect(store.scan({ start: "ab", end: "ba" })), [
    "ab=AB",
    "abc=ABC",
    "b=B",
  ]);
  assert.deepEqual(
    await collect(store.scan({ start: "ab", end: "ba", reverse: true })),
    ["b=B", "abc=ABC", "ab=AB"],
  );
  assert.deepEqual(await collect(store.scan({ reverse: true, limit: 2 })), [
    "c=C",
    "ba=BA",
  ]);
  assert.deepEqual(
    await collect(store.scan({ prefix: "b", start: "a", end: "bz" })),
    ["b=B", "ba=BA"],
  );
  assert.deepEqual(await collect(store.scan({ limit: 0 })), []);
  assert.equal(await store.count({ prefix: "a" }), 3);
  await store.close();
});

Deno.test("a scan sees one point-in-time view while writes go on", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { sync: "none" });
  for (let i = 0; i < 500; i++) {
    await store.put(`k${String(i).padStart(4, "0")}`, "before");
  }
  const seen: string[] = [];
  let i = 0;
  for await (const e of store.scan()) {
    seen.push(text(e.value)!);
    // Overwrite, delete and insert around the cursor while it runs.
    await store.put(`k${String(i).padStart(4, "0")}`, "after");
    if (i < 250) await store.delete(`k${String(499 - i).padStart(4, "0")}`);
    await store.put(`k${String(i).padStart(4, "0")}x`, "new");
    i++;
  }
  assert.equal(seen.length, 500);
  assert.ok(seen.every((v) => v === "before"));
  assert.equal(text(await store.get("k0100")), "after");
  assert.equal(await store.count(), 1000);
  assert.equal(text(await store.get("k0123x")), "new");
  await store.close();
});

Deno.test("a second open of a locked directory fails and touches nothing", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  await store.put("k", "v");
  await assert.rejects(openStore(tmp.path), (error: unknown) => {
    assert.ok(error instanceof LockedError);
    assert.equal(
      error.message,
      `data directory "${tmp.path}" is already open in this process`,
    );
    return true;
  });
  await store.close();
  const again = await openStore(tmp.path);
  assert.equal(text(await again.get("k")), "v");
  await again.close();
});

Deno.test("close waits for the removal of tables merges made obsolete", async () => {
  await using tmp = await tempDir();
  let started = 0;
  let finished = 0;
  // Removals that take a while: close must not return before they end.
  const slowRemoves: Env = {
    ...denoEnv,
    async remove(path: string) {
      if (!path.endsWith(".sst")) return denoEnv.remove(path);
      started++;
      await new Promise((r) => setTimeout(r, 20));
      await denoEnv.remove(path);
      finished++;
    },
  };
  const store = await openStore(tmp.path, {
    env: slowRemoves,
    background: "inline",
    memtableBytes: 4096,
    sync: "none",
  });
  for (let i = 0; i < 3000 && started === 0; i++) {
    await store.put(`k${i % 300}`, "v".repeat(100));
  }
  assert.ok(started > 0, "a merge made some table obsolete");
  await store.close();
  assert.equal(finished, started, "every removal ended before close returned");
});

Deno.test("an edit's new tables open side by side, and one that fails to open closes the others", async () => {
  await using tmp = await tempDir();
  // Armed, the second table open from then on fails.
  let armed = false;
  let armedOpens = 0;
  const opened: string[] = [];
  const closed: string[] = [];
  const { env: slowOpens, count } = slowTableOpens((path, file) => {
    if (armed && ++armedOpens === 2) {
      file.close();
      throw new Error("EIO: injected open error");
    }
    opened.push(path);
    return closeTracked(file, () => closed.push(path));
  });
  const store = await openStore(tmp.path, {
    env: slowOpens,
    background: "inline",
    sync: "none",
    memtableBytes: 4096,
    // Blocks of 512 bytes in tables of 1 KiB: each flush adds several.
    blockBytes: 512,
    tableBytes: 1024,
  });
  for (let i = 0; i < 200; i++) {
    await store.put(`k${String(i).padStart(4, "0")}`, "v".repeat(60));
  }
  await store.settle();
  assert.ok(store.stats().flushes > 0, "a flush committed");
  assert.ok(count.most >= 2, `at most ${count.most} table opened at once`);
  // An edit whose second table cannot open: the others it opened are
  // closed again, and the store fails, refusing writes.
  armed = true;
  const before = opened.length;
  for (let i = 0; i < 200; i++) {
    try {
      await store.put(`z${String(i).padStart(4, "0")}`, "v".repeat(60));
    } catch {
      break;
    }
  }
  await store.settle().catch(() => {});
  await assert.rejects(store.put("after", "x"), StoreFailedError);
  const failedEdit = opened.slice(before);
  assert.ok(failedEdit.length > 0, "the failed edit opened other tables");
  for (const path of failedEdit) {
    assert.ok(closed.includes(path), `${path} closed after the failed edit`);
  }
  await store.close().catch(() => {});
});

Deno.test("opening a store opens its tables side by side, TABLE_OPENS_AT_ONCE at a time, and names the first bad one", async () => {
  await using tmp = await tempDir();
  const options = {
    background: "inline" as const,
    sync: "none" as const,
    memtableBytes: 4096,
    blockBytes: 512,
    tableBytes: 1024,
  };
  const keys = 900;
  const first = await openStore(tmp.path, options);
  for (let i = 0; i < keys; i++) {
    await first.put(`k${String(i).padStart(4, "0")}`, `v${i}`.repeat(20));
  }
  await first.close();
  const { env: slowOpens, count } = slowTableOpens();
  const store = await openStore(tmp.path, { ...options, env: slowOpens });
  const { TABLE_OPENS_AT_ONCE } = limits;
  assert.ok(count.opens > TABLE_OPENS_AT_ONCE, `${count.opens} tables opened`);
  assert.equal(
    count.most,
    TABLE_OPENS_AT_ONCE,
    `${count.most} tables opened at once`,
  );
  for (let i = 0; i < keys; i += 37) {
    const key = `k${String(i).padStart(4, "0")}`;
    assert.equal(text(await store.get(key)), `v${i}`.repeat(20), key);
  }
  await store.close();
  // Damage to two tables: the error names the one the manifest lists first
  // (its levels in order), whether it is missing or corrupt.
  const tables = (await names(tmp.path)).filter((n) => n.endsWith(".sst"));
  const order = await manifestOrder(tmp.path);
  assert.equal(order.length, tables.length, "every table in the manifest");
  const firstListed = order[0]!;
  const lastListed = order.at(-1)!;
  const bytes = await Deno.readFile(`${tmp.path}/${firstListed}`);
  bytes[bytes.length - 1]! ^= 0xff; // the footer's magic
  await Deno.writeFile(`${tmp.path}/${firstListed}`, bytes);
  await Deno.remove(`${tmp.path}/${lastListed}`);
  await assert.rejects(
    openStore(tmp.path, options),
    new RegExp(`${firstListed}.*bad magic`),
  );
  // Only the missing one: named as missing.
  await Deno.writeFile(
    `${tmp.path}/${firstListed}`,
    bytes.map((b, k) => k === bytes.length - 1 ? b ^ 0xff : b),
  );
  await assert.rejects(
    openStore(tmp.path, options),
    new RegExp(`Table ".*${lastListed}" named by manifest .* is missing`),
  );
});

for (const failing of ["move", "flush"] as const) {
  Deno.test(`a moved table keeps its open reader, and a failed manifest append of a ${failing} closes only the tables its edit opened`, async () => {
    await using tmp = await tempDir();
    const opens = new Map<string, number>();
    const closed = new Set<string>();
    // Tables opened since the last manifest append: a flush's edit opens
    // its table, a merge's its outputs; a move's edit opens none.
    let openedForEdit: string[] = [];
    let armed = false;
    let failedEdit: string[] | undefined;
    const env: Env = {
      ...denoEnv,
      async openReadable(path: string) {
        const file = await denoEnv.openReadable(path);
        if (!path.endsWith(".sst")) return file;
        opens.set(path, (opens.get(path) ?? 0) + 1);
        openedForEdit.push(path);
        return closeTracked(file, () => closed.add(path));
      },
      async openWritable(path: string): Promise<WritableFile> {
        const file = await denoEnv.openWritable(path);
        if (!path.includes("MANIFEST-")) return file;
        return wrapWritable(file, {
          append(bytes) {
            const edit = openedForEdit;
            openedForEdit = [];
            const isMove = edit.length === 0;
            if (armed && !failedEdit && isMove === (failing === "move")) {
              failedEdit = edit;
              throw new Error("EIO: injected manifest write error");
            }
            file.append(bytes);
          },
        });
      },
    };
    const store = await openStore(tmp.path, {
      env,
      background: "inline",
      sync: "none",
      memtableBytes: 4096,
      blockBytes: 512,
      tableBytes: 1024,
    });
    const key = (i: number) => `k${String(i).padStart(5, "0")}`;
    // Keys in order: flushed tables do not overlap, and merges move them
    // down as they are.
    let written = 0;
    while (store.stats().moves < 3 && written < 5000) {
      await store.put(key(written), `v${written}`.repeat(10));
      written++;
    }
    await store.settle();
    assert.ok(store.stats().moves >= 3, `${store.stats().moves} moves`);
    const listed = await manifestOrder(tmp.path);
    for (const name of listed) {
      const path = `${tmp.path}/${name}`;
      assert.equal(opens.get(path), 1, `${name} opened once, moved or not`);
      assert.ok(!closed.has(path), `${name} still open`);
    }
    armed = true;
    let refused = false;
    for (let i = written; i < written + 5000 && !refused; i++) {
      await store.put(key(i), `v${i}`.repeat(10)).catch(() => refused = true);
    }
    await store.settle().catch(() => {});
    assert.ok(failedEdit, `the ${failing} edit's append failed`);
    await assert.rejects(store.put("after", "x"), StoreFailedError);
    for (const path of failedEdit) {
      assert.ok(closed.has(path), `${path}, opened by the failed edit, closed`);
    }
    // The tables of the last edit on disk stay open, moved ones included:
    // the store still reads everything written before.
    for (const name of await manifestOrder(tmp.path)) {
      assert.ok(!closed.has(`${tmp.path}/${name}`), `${name} still open`);
    }
    for (let i = 0; i < written; i++) {
      assert.equal(text(await store.get(key(i))), `v${i}`.repeat(10), key(i));
    }
    await store.close().catch(() => {});
  });
}

/**
 * denoEnv with table opens that take 5 ms (as under a loop of reads, where
 * each read of an open waits for a turn of the event loop), counting them
 * and the most in flight at once. `wrap` sees each table file opened, and
 * may wrap it or fail the open.
 */
function slowTableOpens(
  wrap: (path: string, file: ReadableFile) => ReadableFile = (_, f) => f,
): { env: Env; count: { opens: number; most: number } } {
  const count = { opens: 0, most: 0 };
  let opening = 0;
  const env: Env = {
    ...denoEnv,
    async openReadable(path: string) {
      if (!path.endsWith(".sst")) return denoEnv.openReadable(path);
      count.opens++;
      count.most = Math.max(count.most, ++opening);
      try {
        await new Promise((r) => setTimeout(r, 5));
        return wrap(path, await denoEnv.openReadable(path));
      } finally {
        opening--;
      }
    },
  };
  return { env, count };
}

/** `file`, calling `onClose` when it is closed. */
function closeTracked(file: ReadableFile, onClose: () => void): ReadableFile {
  return {
    ...file,
    readSync: (at: number, buf: Uint8Array) => file.readSync(at, buf),
    read: (at: number, buf: Uint8Array) => file.read(at, buf),
    close: () => {
      onClose();
      file.close();
    },
  };
}

/** The tables the manifest of `dir` names, in its order (levels in order). */
async function manifestOrder(dir: string): Promise<string[]> {
  const { state } = await readManifest(
    denoEnv,
    dir,
    (await readCurrent(denoEnv, dir))!,
  );
  return state.levels.flat().map((meta) => tableName(meta.fileNumber));
}

/** An Env whose WAL segments fail their n-th syncData or append. */
function failingEnv(fail: "sync" | "append", n: number): Env {
  let count = 0;
  return {
    ...denoEnv,
    async openWritable(path: string): Promise<WritableFile> {
      const file = await denoEnv.openWritable(path);
      if (!path.endsWith(".log")) return file;
      return wrapWritable(file, {
        append(bytes) {
          if (fail === "append" && ++count === n) {
            throw new Error("EIO: injected write error");
          }
          file.append(bytes);
        },
        syncData() {
          if (fail === "sync" && ++count === n) {
            return Promise.reject(new Error("EIO: injected fsync error"));
          }
          return file.syncData();
        },
      });
    },
  };
}

for (const fail of ["sync", "append"] as const) {
  Deno.test(`after a failed ${fail} nothing is acknowledged and the store turns read-only`, async () => {
    await using tmp = await tempDir();
    const store = await openStore(tmp.path, { env: failingEnv(fail, 3) });
    await store.put("a", "1");
    await store.put("b", "2");
    const results = await Promise.allSettled([
      store.put("c", "3"),
      store.put("d", "4"),
    ]);
    assert.ok(
      results.every((r) => r.status === "rejected"),
      "the failed group is not acked",
    );
    await assert.rejects(store.put("e", "5"), (error: unknown) => {
      assert.ok(error instanceof StoreFailedError);
      assert.match(
        error.message,
        /injected .* accepts no more writes until it is reopened/,
      );
      return true;
    });
    assert.equal(text(await store.get("a")), "1", "reads still work");
    assert.equal(
      await store.get("c"),
      undefined,
      "an unacked write is not visible",
    );
    assert.match(store.stats().failure!, /injected/);
    await store.close().catch(() => {});
    const reopened = await openStore(tmp.path);
    assert.equal(text(await reopened.get("a")), "1");
    assert.equal(text(await reopened.get("b")), "2");
    assert.equal(await reopened.get("e"), undefined);
    await reopened.close();
  });
}

Deno.test("random operations with reopens match a sorted model", async () => {
  const seed = testSeed("store model");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const modes: SyncMode[] = ["always", "interval", "none"];
  let store = await openStore(tmp.path, { sync: modes[rng.int(3)]! });
  const model = new Map<string, string>();
  const key = () => `k${rng.int(60)}`;
  for (let step = 0; step < 1500; step++) {
    const r = rng.next();
    if (r < 0.4) {
      const k = key();
      const v = `v${step}`;
      await store.put(k, v);
      model.set(k, v);
    } else if (r < 0.55) {
      const k = key();
      await store.delete(k);
      model.delete(k);
    } else if (r < 0.65) {
      const ops = Array.from(
        { length: 1 + rng.int(5) },
        () =>
          rng.chance(0.7)
            ? { type: "put" as const, key: key(), value: `b${step}` }
            : { type: "delete" as const, key: key() },
      );
      await store.batch(ops);
      for (const op of ops) {
        op.type === "put" ? model.set(op.key, op.value) : model.delete(op.key);
      }
    } else if (r < 0.85) {
      const k = key();
      assert.equal(
        text(await store.get(k)),
        model.get(k),
        `seed ${seed} step ${step} get ${k}`,
      );
    } else if (r < 0.97) {
      const start = key();
      const reverse = rng.chance(0.5);
      const limit = rng.int(10);
      let expected = [...model.entries()].filter(([k]) => k >= start).sort((
        [a],
        [b],
      ) => a < b ? -1 : 1);
      if (reverse) expected = expected.reverse();
      expected = expected.slice(0, limit);
      const got = await collect(store.scan({ start, reverse, limit }));
      assert.deepEqual(
        got,
        expected.map(([k, v]) => `${k}=${v}`),
        `seed ${seed} step ${step} scan`,
      );
    } else {
      await store.close();
      store = await openStore(tmp.path, { sync: modes[rng.int(3)]! });
      assert.equal(
        store.stats().numKeys,
        model.size,
        `seed ${seed} step ${step} reopen`,
      );
    }
  }
  await store.close();
});

Deno.test("options that are not an object of known names are refused before anything is touched", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/db`;
  for (const bad of ["", undefined]) {
    await assert.rejects(
      openStore(bad as never),
      /^TypeError: openStore needs the data directory's path, got (an empty string|undefined)$/,
    );
  }
  const cases: Array<[unknown, RegExp]> = [
    [null, /^Store options must be an object$/],
    [[], /^Store options must be an object$/],
    [
      { sync: "none", memtableByte: 4096 },
      /^Unknown store option "memtableByte"; known: sync, repair, env, memtableBytes,/,
    ],
    [{ repair: "yes" }, /^Store option repair must be true or false$/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(
      openStore(dir, options as StoreOptions),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      JSON.stringify(options),
    );
  }
  // A number given as a string is shown as one, not as a valid number.
  await assert.rejects(
    openStore(dir, { memtableBytes: "4096" as never }),
    /^RangeError: memtableBytes must be an integer from \d+ to \d+, got "4096"$/,
  );
  assert.deepEqual(await names(tmp.path), [], "nothing created");
});

Deno.test("a store path that is a file, or under one, is refused in words, not as a mkdir errno", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/file`;
  await Deno.writeTextFile(file, "not a store");
  await assert.rejects(
    openStore(file),
    (e: Error) =>
      e.message ===
        `Cannot open a store in "${file}": it exists and is not a directory (a file, or a symbolic link to nothing)`,
  );
  // A symbolic link to nothing: not called a file.
  await Deno.symlink(`${tmp.path}/nowhere`, `${tmp.path}/link`);
  await assert.rejects(
    openStore(`${tmp.path}/link`),
    /link": it exists and is not a directory \(a file, or a symbolic link to nothing\)$/,
  );
  await assert.rejects(
    openStore(`${file}/sub`),
    (e: Error) =>
      e.message ===
        `Cannot open a store in "${file}/sub": a file stands where a directory on its path should be`,
  );
  assert.equal(await Deno.readTextFile(file), "not a store");
});

Deno.test("a store in new directories syncs each one's entry in its parent before it opens; an existing directory's parent is left alone", async () => {
  await using tmp = await tempDir();
  const synced: string[] = [];
  const env = overriding(denoEnv, {
    syncDir: (dir) => {
      synced.push(dir);
      return denoEnv.syncDir(dir);
    },
  });
  const dir = `${tmp.path}/a/b/c`;
  let store = await openStore(dir, { env });
  const atOpen = [...synced];
  await store.put("k", "v");
  await store.close();
  // Without these a power cut could lose the new directories, and with
  // them every acknowledged write of the store.
  for (const parent of [tmp.path, `${tmp.path}/a`, `${tmp.path}/a/b`]) {
    assert.ok(atOpen.includes(parent), `${parent} synced: ${atOpen}`);
  }
  synced.length = 0;
  store = await openStore(dir, { env });
  await store.close();
  assert.ok(!synced.includes(`${tmp.path}/a/b`), `${synced}`);
});
