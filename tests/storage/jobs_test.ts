/**
 * Background jobs: a flush's entries survive their encoding; flushes and
 * merges give the same tables on the store's thread and in a worker; a
 * worker reports damage as a CorruptionError naming the table; a job never
 * writes past the file numbers reserved for it.
 */
import assert from "node:assert/strict";
import { denoEnv } from "../../storage/env_deno.ts";
import { CorruptionError } from "../../storage/errors.ts";
import {
  encodeEntries,
  encodeMemtable,
  filesFor,
  FlushCursor,
  type FlushJob,
  InlineRunner,
  type Job,
  type JobRunner,
  recycleEntryBuffer,
  spareEntryBuffers,
} from "../../storage/jobs.ts";
import { Memtable } from "../../storage/memtable.ts";
import type { SourceEntry } from "../../storage/merge.ts";
import {
  BlockCache,
  type TableMeta,
  tableName,
  TableReader,
} from "../../storage/sstable/mod.ts";
import {
  JobWorker,
  WORKER_CLOSED_IDLE_MS,
  WORKER_IDLE_MS,
  WorkerRunner,
} from "../../storage/worker_runner.ts";
import { bytesToBinary, Prng } from "../../util/mod.ts";
import { tempDir, testSeed } from "../helpers.ts";

const OPTIONS = { blockBytes: 512, bloomBitsPerKey: 10 };

/** `n` entries with distinct sorted keys, some tombstones and empty values. */
function entries(rng: Prng, n: number, seqBase: number): SourceEntry[] {
  const keys = new Set<string>();
  while (keys.size < n) {
    keys.add(String.fromCharCode(...rng.bytes(1 + rng.int(20))));
  }
  return [...keys].sort().map((key, i) => ({
    key,
    seq: seqBase + i,
    value: rng.chance(0.1) ? undefined : rng.bytes(rng.int(300)),
    expiry: rng.chance(0.1) ? 1_800_000_000_000 + i : 0,
  }));
}

/** A copy of `rows` in a random order (Fisher-Yates). */
function shuffled<T>(rng: Prng, rows: readonly T[]): T[] {
  const out = rows.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function flushJob(dir: string, rows: SourceEntry[], firstFile: number): Job {
  const buf = encodeEntries(rows.values(), 16);
  return {
    kind: "flush",
    dir,
    entries: buf,
    firstFile,
    files: filesFor(buf.length),
    options: OPTIONS,
  };
}

/** Every entry of the tables, in order, values as binary strings. */
async function readAll(dir: string, metas: TableMeta[]): Promise<string[]> {
  const out: string[] = [];
  for (const m of metas) {
    const t = await TableReader.open(
      denoEnv,
      dir,
      m.fileNumber,
      new BlockCache(0),
      { negatives: 0, falsePositives: 0 },
    );
    try {
      for (const b of t.scanBlocks()) {
        for (let i = 0; i < b.keys.length; i++) {
          const v = b.values[i];
          out.push(JSON.stringify([
            b.keys[i],
            b.seqs[i],
            v === undefined ? null : String.fromCharCode(...v),
            b.expiries[i],
          ]));
        }
      }
    } finally {
      t.close();
    }
  }
  return out;
}

Deno.test("flush entries round trip through their encoding and a FlushCursor", () => {
  const seed = testSeed("jobs encoding");
  const rng = new Prng(seed);
  const rows = entries(rng, 2000, 1);
  rows.push({
    key: "\xff".repeat(300),
    seq: 2 ** 53 - 1,
    value: new Uint8Array(0),
    expiry: 0,
  });
  // A small size hint makes the buffer grow many times.
  const decoded = readAllEntries(encodeEntries(rows.values(), 1));
  assert.equal(decoded.length, rows.length);
  for (let i = 0; i < rows.length; i++) {
    assert.deepEqual(decoded[i], rows[i], `entry ${i}, seed ${seed}`);
  }
  assert.throws(
    () => readAllEntries(encodeEntries(rows.values(), 1).subarray(0, 50)),
    CorruptionError,
  );
});

Deno.test("a memtable encodes the same into a recycled buffer full of garbage", () => {
  const seed = testSeed("jobs recycled entry buffer");
  const rng = new Prng(seed);
  const rows = entries(rng, 3000, 1);
  const mem = new Memtable();
  for (const r of shuffled(rng, rows)) {
    mem.apply(r.seq, r.key, r.value, r.expiry);
  }
  spareEntryBuffers.clear();
  const fresh = encodeMemtable(mem);
  const sorted = (buf: Uint8Array) =>
    readAllEntries(buf).sort((a, b) => a.key < b.key ? -1 : 1);
  assert.deepEqual(sorted(fresh), rows, `seed ${seed}`);
  const expected = fresh.slice();
  // The buffer comes back dirty.
  const used = fresh.buffer as ArrayBuffer;
  new Uint8Array(used).fill(0xa5);
  recycleEntryBuffer(used);
  assert.equal(spareEntryBuffers.size, 1);
  const again = encodeMemtable(mem);
  assert.equal(again.buffer, used, "the recycled buffer is used");
  assert.equal(spareEntryBuffers.size, 0);
  assert.deepEqual(again, expected);
  // One too small for the memtable is not used.
  recycleEntryBuffer(new ArrayBuffer(64));
  const third = encodeMemtable(mem);
  assert.notEqual(third.buffer.byteLength, 64);
  assert.deepEqual(third, expected);
  // Empty (moved away) buffers are not kept.
  recycleEntryBuffer(new ArrayBuffer(0));
  assert.equal(spareEntryBuffers.size, 0);
});

Deno.test("a worker hands a flush's entries buffer back for the next flush", async () => {
  await using tmp = await tempDir();
  const worker = new JobWorker();
  const runner = new WorkerRunner(worker);
  try {
    const rng = new Prng(testSeed("jobs entry buffer back"));
    const rows = entries(rng, 500, 1);
    const mem = new Memtable();
    for (const r of rows) mem.apply(r.seq, r.key, r.value, r.expiry);
    spareEntryBuffers.clear();
    const encoded = encodeMemtable(mem);
    const size = encoded.buffer.byteLength;
    const metas = await runner.run({
      kind: "flush",
      dir: tmp.path,
      entries: encoded,
      firstFile: 1,
      files: filesFor(size),
      options: OPTIONS,
    });
    assert.equal(metas.reduce((n, m) => n + m.entries, 0), rows.length);
    // Moved to the worker, then back.
    assert.equal(encoded.buffer.byteLength, 0);
    assert.equal(spareEntryBuffers.size, 1);
    assert.equal(encodeMemtable(mem).buffer.byteLength, size);
    assert.equal(spareEntryBuffers.size, 0);
  } finally {
    runner.close();
    worker.terminate();
    spareEntryBuffers.clear();
  }
});

/** Every entry a FlushCursor reads from `buf`, values copied. */
function readAllEntries(buf: Uint8Array): SourceEntry[] {
  const c = new FlushCursor(buf);
  const out: SourceEntry[] = [];
  while (c.next()) {
    out.push({
      key: c.key,
      seq: c.seq,
      // Values come back as views of the buffer.
      value: c.value?.slice(),
      expiry: c.expiry,
    });
  }
  return out;
}

Deno.test("a flush sorts its entries (unless they are in order already) and refuses a repeated key", () => {
  const rows = entries(new Prng(5), 500, 1);
  const keysOf = (buf: Uint8Array) => {
    const c = new FlushCursor(buf);
    const keys: string[] = [];
    while (c.next()) keys.push(c.key);
    return keys;
  };
  const shuffledRows = shuffled(new Prng(6), rows);
  assert.deepEqual(
    keysOf(encodeEntries(shuffledRows.values(), 16)),
    rows.map((e) => e.key),
  );
  // Entries already in key order (a sequential load) are read as they are.
  assert.deepEqual(
    keysOf(encodeEntries(rows.values(), 16)),
    rows.map((e) => e.key),
  );
  const twice = (e: unknown) =>
    e instanceof CorruptionError && /appears twice/.test(e.message);
  const repeated = [...shuffledRows, { ...rows[42]!, seq: 9999 }];
  assert.throws(() => keysOf(encodeEntries(repeated.values(), 16)), twice);
  // A key repeated right after itself in otherwise sorted entries.
  const repeatedLast = [...rows, { ...rows.at(-1)!, seq: 9999 }];
  assert.throws(() => keysOf(encodeEntries(repeatedLast.values(), 16)), twice);
});

Deno.test("flushes and merges write the same tables inline and in a worker", async () => {
  const seed = testSeed("jobs inline vs worker");
  const results: string[][] = [];
  for (
    const make of [() => new InlineRunner(denoEnv), () => new WorkerRunner()]
  ) {
    await using tmp = await tempDir();
    const runner: JobRunner = make();
    try {
      const rng = new Prng(seed);
      // Three overlapping runs, newest first in the merge.
      const runs: number[][] = [];
      let next = 1;
      for (let r = 0; r < 3; r++) {
        const rows = entries(rng, 3000, 1 + r * 10_000);
        // A memtable hands its keys over in no particular order: the job sorts.
        const metas = await runner.run(
          flushJob(tmp.path, shuffled(rng, rows), next),
        );
        next += filesFor(1 << 20);
        assert.deepEqual(
          await readAll(tmp.path, metas),
          rows.map((e) =>
            JSON.stringify([
              e.key,
              e.seq,
              e.value === undefined ? null : bytesToBinary(e.value),
              e.expiry,
            ])
          ),
        );
        runs.unshift(metas.map((m) => m.fileNumber));
      }
      const merged = await runner.run({
        kind: "merge",
        dir: tmp.path,
        runs,
        dropTombstones: true,
        firstFile: next,
        files: filesFor(1 << 20),
        options: OPTIONS,
      });
      const all = await readAll(tmp.path, merged);
      assert.ok(all.length > 3000, `merged ${all.length} entries`);
      results.push(all);
    } finally {
      runner.close();
    }
  }
  assert.deepEqual(results[1], results[0], `seed ${seed}`);
});

Deno.test("a worker reports a damaged table as a CorruptionError naming it", async () => {
  await using tmp = await tempDir();
  const runner = new WorkerRunner();
  try {
    const rows = entries(new Prng(7), 500, 1);
    const [meta] = await runner.run(flushJob(tmp.path, rows, 1));
    const path = `${tmp.path}/${tableName(meta!.fileNumber)}`;
    const bytes = await Deno.readFile(path);
    bytes[10]! ^= 0x10;
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      runner.run({
        kind: "merge",
        dir: tmp.path,
        runs: [[meta!.fileNumber]],
        dropTombstones: false,
        firstFile: 100,
        files: 4,
        options: OPTIONS,
      }),
      (error: unknown) =>
        error instanceof CorruptionError && error.file === path &&
        /checksum/.test(error.message),
    );
  } finally {
    runner.close();
  }
  await assert.rejects(
    runner.run(flushJob(tmp.path, [], 1)),
    /background worker was stopped/,
  );
});

Deno.test("a worker started ahead of its first job runs it, and stops after its idle time when none comes", async () => {
  await using tmp = await tempDir();
  const worker = new JobWorker();
  const runner = new WorkerRunner(worker);
  try {
    assert.equal(runner.started, false);
    runner.prepare();
    assert.equal(runner.started, true);
    await new Promise((r) => setTimeout(r, WORKER_IDLE_MS + 300));
    assert.equal(runner.started, false, "stopped with no job");
    runner.prepare();
    const rows = entries(new Prng(5), 300, 1);
    const [meta] = await runner.run(flushJob(tmp.path, rows, 1));
    assert.equal(meta!.entries, 300);
    // Idle after its job, it would stop WORKER_IDLE_MS later; a prepare
    // two thirds of the way there keeps it up past that.
    await new Promise((r) => setTimeout(r, (2 * WORKER_IDLE_MS) / 3));
    runner.prepare();
    await new Promise((r) => setTimeout(r, (2 * WORKER_IDLE_MS) / 3));
    assert.equal(runner.started, true, "kept up by prepare");
  } finally {
    runner.close();
  }
  // Its last runner closed, the thread stops after the shorter wait.
  assert.equal(runner.started, true);
  await new Promise((r) => setTimeout(r, WORKER_CLOSED_IDLE_MS + 300));
  assert.equal(runner.started, false, "stopped after its last runner closed");
  runner.prepare();
  assert.equal(runner.started, false, "not started once closed");
});

Deno.test("runners share their worker: one closing leaves the other's jobs running on the same thread", async () => {
  await using tmp = await tempDir();
  const worker = new JobWorker();
  const a = new WorkerRunner(worker);
  const b = new WorkerRunner(worker);
  try {
    const rows = entries(new Prng(9), 300, 1);
    assert.equal((await a.run(flushJob(tmp.path, rows, 1)))[0]!.entries, 300);
    // b finds the thread a started.
    assert.equal(b.started, true);
    const running = b.run(flushJob(tmp.path, rows, 100));
    a.close();
    await assert.rejects(
      a.run(flushJob(tmp.path, rows, 200)),
      /background worker was stopped/,
    );
    assert.equal((await running)[0]!.entries, 300);
    // b is still open: the thread waits the full idle time for its jobs.
    await new Promise((r) => setTimeout(r, WORKER_CLOSED_IDLE_MS + 300));
    assert.equal(b.started, true, "kept for the runner still open");
  } finally {
    a.close();
    b.close();
    worker.terminate();
  }
  assert.equal(b.started, false);
});

Deno.test("runners given two workers flush on one and merge on the other; a close fails only its own jobs, on both threads, and each thread stops once its last runner closes", async () => {
  await using tmp = await tempDir();
  const flushes = new JobWorker();
  const merges = new JobWorker();
  const a = new WorkerRunner(flushes, merges);
  const b = new WorkerRunner(flushes, merges);
  const mergeOf = (table: number, firstFile: number): Job => ({
    kind: "merge",
    dir: tmp.path,
    runs: [[table]],
    dropTombstones: false,
    firstFile,
    files: 4,
    options: OPTIONS,
  });
  try {
    const rows = entries(new Prng(13), 400, 1);
    // Job 1 on the flush thread.
    const [meta] = await a.run(flushJob(tmp.path, rows, 1));
    assert.equal(meta!.entries, 400);
    assert.equal(flushes.started, true);
    assert.equal(merges.started, false, "a flush starts no merge thread");
    // Job 1 on the merge thread.
    const merged = await b.run(mergeOf(meta!.fileNumber, 10));
    assert.equal(merges.started, true);
    assert.deepEqual(
      await readAll(tmp.path, merged),
      await readAll(tmp.path, [meta!]),
    );
    // Job 2 on each thread: a's flush, b's merge. Closing a fails its
    // flush and a merge of its own, and not b's merge of the same number
    // on the other thread.
    const flushing = a.run(flushJob(tmp.path, rows, 20));
    const bMerging = b.run(mergeOf(meta!.fileNumber, 30));
    const aMerging = a.run(mergeOf(meta!.fileNumber, 40));
    a.close();
    await assert.rejects(flushing, /background worker was stopped/);
    await assert.rejects(aMerging, /background worker was stopped/);
    assert.equal((await bMerging)[0]!.entries, 400);
    // b is still open: both threads wait the full idle time for its jobs.
    await new Promise((r) => setTimeout(r, WORKER_CLOSED_IDLE_MS + 300));
    assert.equal(flushes.started, true, "flush thread kept for b");
    assert.equal(merges.started, true, "merge thread kept for b");
    // One more job on each thread arms its idle stop for an open runner
    // (WORKER_IDLE_MS); its last runner closed, each thread stops after the
    // shorter wait instead.
    await b.run(flushJob(tmp.path, rows, 50));
    await b.run(mergeOf(meta!.fileNumber, 60));
    b.close();
    await new Promise((r) => setTimeout(r, WORKER_CLOSED_IDLE_MS + 300));
    assert.equal(flushes.started, false, "flush thread stopped");
    assert.equal(merges.started, false, "merge thread stopped");
  } finally {
    a.close();
    b.close();
    flushes.terminate();
    merges.terminate();
  }
});

Deno.test("a job that needs more file numbers than reserved fails", async () => {
  await using tmp = await tempDir();
  const rows = entries(new Prng(11), 20_000, 1);
  const job = flushJob(tmp.path, rows, 1);
  await assert.rejects(
    new InlineRunner(denoEnv).run({ ...job, files: 1 }),
    /more than the 1 file numbers reserved/,
  );
});

/** A merge job over `runs` of rows (newest first), each run cut into tables. */
async function mergeRows(
  dir: string,
  runs: SourceEntry[][],
  dropTombstones: boolean,
): Promise<TableMeta[]> {
  const runner = new InlineRunner(denoEnv);
  const runFiles: number[][] = [];
  let next = 1;
  for (const rows of runs) {
    // Small tables, so that a run spans several of them.
    const job = flushJob(dir, rows, next);
    const files = filesFor((job as FlushJob).entries.length, 16 * 1024);
    const metas = await runner.run({
      ...job,
      files,
      options: { ...OPTIONS, tableBytes: 16 * 1024 },
    });
    assert.ok(metas.length > 1 || rows.length < 200, "a run of tables");
    next += files;
    runFiles.push(metas.map((m) => m.fileNumber));
  }
  return await runner.run({
    kind: "merge",
    dir,
    runs: runFiles,
    dropTombstones,
    firstFile: next,
    files: filesFor(1 << 20),
    options: OPTIONS,
  });
}

Deno.test("a merge keeps each key's entry from the newest run holding it, and drops tombstones only at the bottom", async () => {
  const seed = testSeed("merge against a model");
  const rng = new Prng(seed);
  for (const dropTombstones of [false, true]) {
    await using tmp = await tempDir();
    // Four runs over overlapping key sets (keys of 1-20 random bytes, so
    // prefixes of each other and bytes from 0x80 occur), newest first.
    const runs = [0, 1, 2, 3].map((r) =>
      entries(rng, 1 + rng.int(2500), 1 + r * 10_000)
    );
    const newest = new Map<string, SourceEntry>();
    for (const rows of runs) {
      for (const e of rows) if (!newest.has(e.key)) newest.set(e.key, e);
    }
    const want = [...newest.values()]
      .filter((e) => !dropTombstones || e.value !== undefined)
      .sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
      .map((e) =>
        JSON.stringify([
          e.key,
          e.seq,
          e.value === undefined ? null : bytesToBinary(e.value),
          e.expiry,
        ])
      );
    const merged = await mergeRows(tmp.path, runs, dropTombstones);
    assert.deepEqual(
      await readAll(tmp.path, merged),
      want,
      `seed ${seed}, dropTombstones ${dropTombstones}`,
    );
  }
});

Deno.test("a merge refuses a run whose tables are out of key order", async () => {
  await using tmp = await tempDir();
  const rng = new Prng(5);
  const low = entries(rng, 200, 1).map((e) => ({ ...e, key: "a" + e.key }));
  const high = entries(rng, 200, 1000).map((e) => ({ ...e, key: "b" + e.key }));
  const runner = new InlineRunner(denoEnv);
  const a = await runner.run(flushJob(tmp.path, low, 1));
  const b = await runner.run(flushJob(tmp.path, high, 100));
  const job = (run: number[]): Job => ({
    kind: "merge",
    dir: tmp.path,
    runs: [run],
    dropTombstones: false,
    firstFile: 200,
    files: filesFor(1 << 20),
    options: OPTIONS,
  });
  const inOrder = await runner.run(job([a[0]!.fileNumber, b[0]!.fileNumber]));
  assert.equal(inOrder.reduce((n, m) => n + m.entries, 0), 400);
  await assert.rejects(
    runner.run({
      ...job([b[0]!.fileNumber, a[0]!.fileNumber]),
      firstFile: 300,
    }),
    (e) => e instanceof CorruptionError && /keys out of order/.test(e.message),
  );
});

Deno.test("flush cursors read right whether they reuse a finished one's arrays or run side by side", () => {
  const seed = testSeed("flush scratch reuse");
  const rng = new Prng(seed);
  const keysOf = (c: FlushCursor) => {
    const keys: string[] = [];
    while (c.next()) keys.push(c.key);
    return keys;
  };
  const big = entries(rng, 5000, 1);
  const small = entries(rng, 40, 1);
  const encode = (rows: SourceEntry[]) =>
    encodeEntries(shuffled(rng, rows).values(), 16);
  // A big flush, then a small one in the arrays it leaves: nothing of the
  // big one's keys or order shows through.
  assert.deepEqual(keysOf(new FlushCursor(encode(big))), big.map((e) => e.key));
  assert.deepEqual(
    keysOf(new FlushCursor(encode(small))),
    small.map((e) => e.key),
    `seed ${seed}`,
  );
  // Two at once (as two stores' flushes on one thread): each keeps its own.
  const a = new FlushCursor(encode(big));
  const b = new FlushCursor(encode(small));
  const fromA: string[] = [];
  const fromB: string[] = [];
  for (let more = true; more;) {
    const ma = a.next();
    const mb = b.next();
    if (ma) fromA.push(a.key);
    if (mb) fromB.push(b.key);
    more = ma || mb;
  }
  assert.deepEqual(fromA, big.map((e) => e.key), `seed ${seed}`);
  assert.deepEqual(fromB, small.map((e) => e.key), `seed ${seed}`);
});
