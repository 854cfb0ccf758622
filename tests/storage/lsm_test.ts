/**
 * The LSM engine under constant flushing: random put/delete/batch/get/
 * scan/snapshot/reopen sequences with a tiny memtable (so memtables freeze,
 * flush and level 0 merges all the time), checked against an in-memory
 * sorted model; and one operation log replayed under several
 * configurations must give identical results.
 */
import assert from "node:assert/strict";
import {
  CorruptionError,
  type Entry,
  openStore,
  type ScanOptions,
  type Snapshot,
  type Store,
  StoreClosedError,
  type StoreOptions,
} from "../../storage/mod.ts";
import { checkStore } from "../../storage/check.ts";
import { denoEnv } from "../../storage/env_deno.ts";
import {
  type ManifestState,
  readCurrent,
  readManifest,
} from "../../storage/manifest.ts";
import { Prng } from "../../util/mod.ts";
import { names, tempDir, testSeed, text } from "../helpers.ts";

/** The manifest state of a closed store. */
async function readState(dir: string): Promise<ManifestState> {
  const current = await readCurrent(denoEnv, dir);
  assert.ok(current !== undefined, "CURRENT names a manifest");
  return (await readManifest(denoEnv, dir, current)).state;
}

type Model = Map<string, string>;

/** Endings of the model's shorter and longer keys. */
const KEY_SUFFIXES = ["", "0", "00", "\0", "\0x", "é", "~", "5é0"];

function sortedEntries(
  model: Model,
  start: string | undefined,
  end: string | undefined,
  reverse: boolean,
): Array<[string, string]> {
  let out = [...model.entries()].filter(([k]) =>
    (start === undefined || k >= start) && (end === undefined || k < end)
  );
  out.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  if (reverse) out = out.reverse();
  return out;
}

async function collect(
  it: AsyncIterable<{ key: Uint8Array; value: Uint8Array }>,
): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const e of it) out.push([text(e.key)!, text(e.value)!]);
  return out;
}

/**
 * Runs `steps` random operations from `seed` against a store opened with
 * `options`, checking each read against the model. Returns a transcript of
 * every read result, for comparing configurations.
 */
async function runModel(
  seed: number,
  steps: number,
  options: StoreOptions,
  dir: string,
): Promise<string[]> {
  const rng = new Prng(seed);
  const transcript: string[] = [];
  let store: Store = await openStore(dir, options);
  const model: Model = new Map();
  const snapshots: Array<{ snap: Snapshot; model: Model }> = [];
  // Keys of several lengths, some the prefix of others, with bytes below
  // and above the digits ("\0", "é" is two bytes in UTF-8): prefix
  // compression and bytewise order are exercised, not only fixed-width
  // keys. Code-unit order of these strings is their UTF-8 byte order.
  const key = () => {
    const base = `k${String(rng.int(300)).padStart(3, "0")}`;
    return rng.chance(0.75) ? base : base.slice(0, 1 + rng.int(4)) +
      KEY_SUFFIXES[rng.int(KEY_SUFFIXES.length)];
  };
  // Some values empty: an empty value is a value, not a delete.
  const value = (step: number) =>
    rng.chance(0.05)
      ? ""
      : `v${step}-${"x".repeat(rng.int(rng.chance(0.05) ? 3000 : 80))}`;
  const scanOptions = () => {
    const start = rng.chance(0.7) ? key() : undefined;
    const end = rng.chance(0.5) ? key() : undefined;
    const reverse = rng.chance(0.4);
    const limit = rng.chance(0.5) ? rng.int(30) : undefined;
    const opts: {
      start?: string;
      end?: string;
      reverse: boolean;
      limit?: number;
    } = { reverse };
    if (start !== undefined) opts.start = start;
    if (end !== undefined) opts.end = end;
    if (limit !== undefined) opts.limit = limit;
    return opts;
  };
  const expect = (m: Model, opts: ReturnType<typeof scanOptions>) => {
    const all = sortedEntries(m, opts.start, opts.end, opts.reverse);
    return opts.limit === undefined ? all : all.slice(0, opts.limit);
  };
  try {
    for (let step = 0; step < steps; step++) {
      const r = rng.next();
      const where = `seed ${seed} step ${step}`;
      if (r < 0.35) {
        const k = key();
        const v = value(step);
        await store.put(k, v);
        model.set(k, v);
      } else if (r < 0.45) {
        const k = key();
        await store.delete(k);
        model.delete(k);
      } else if (r < 0.52) {
        const ops = Array.from(
          { length: 1 + rng.int(8) },
          () =>
            rng.chance(0.75)
              ? { type: "put" as const, key: key(), value: value(step) }
              : { type: "delete" as const, key: key() },
        );
        await store.batch(ops);
        for (const op of ops) {
          op.type === "put"
            ? model.set(op.key, op.value)
            : model.delete(op.key);
        }
      } else if (r < 0.67) {
        const k = key();
        const got = text(await store.get(k));
        assert.equal(got, model.get(k), `${where} get ${k}`);
        transcript.push(`get ${k} ${got}`);
      } else if (r < 0.72) {
        // Keys may repeat; each gets its own copy of the value.
        const ks = Array.from({ length: 1 + rng.int(20) }, key);
        const got = (await store.getMany(ks)).map(text);
        assert.deepEqual(got, ks.map((k) => model.get(k)), `${where} getMany`);
        transcript.push(`getMany ${got.join(",")}`);
      } else if (r < 0.84) {
        const opts = scanOptions();
        const expected = expect(model, opts);
        if (rng.chance(0.25)) {
          const got: string[] = [];
          for await (const k of store.keys(opts)) got.push(text(k)!);
          assert.deepEqual(
            got,
            expected.map(([k]) => k),
            `${where} keys ${JSON.stringify(opts)}`,
          );
          transcript.push(`keys ${got.length} ${got.at(0)}`);
        } else {
          const got = await collect(store.scan(opts));
          assert.deepEqual(
            got,
            expected,
            `${where} scan ${JSON.stringify(opts)}`,
          );
          transcript.push(`scan ${got.length} ${got.at(0)?.[0]}`);
        }
      } else if (r < 0.88) {
        if (snapshots.length < 3) {
          snapshots.push({ snap: store.snapshot(), model: new Map(model) });
        }
      } else if (r < 0.93) {
        const s = snapshots.shift();
        if (s) {
          const k = key();
          assert.equal(
            text(await s.snap.get(k)),
            s.model.get(k),
            `${where} snapshot get ${k}`,
          );
          const ks = Array.from({ length: 1 + rng.int(5) }, key);
          assert.deepEqual(
            (await s.snap.getMany(ks)).map(text),
            ks.map((k) => s.model.get(k)),
            `${where} snapshot getMany`,
          );
          const opts = scanOptions();
          const got = await collect(s.snap.scan(opts));
          assert.deepEqual(
            got,
            expect(s.model, opts),
            `${where} snapshot scan ${JSON.stringify(opts)}`,
          );
          s.snap.release();
        }
      } else if (r < 0.96) {
        assert.equal(await store.count(), model.size, `${where} count`);
        const p = `k${rng.int(3)}`;
        assert.equal(
          await store.count({ prefix: p }),
          [...model.keys()].filter((k) => k.startsWith(p)).length,
        );
      } else {
        for (const s of snapshots) s.snap.release();
        snapshots.length = 0;
        await store.close();
        store = await openStore(dir, options);
        transcript.push(`reopen ${store.stats().lastSequence}`);
      }
    }
    await store.settle();
    const all = await collect(store.scan());
    assert.deepEqual(
      all,
      sortedEntries(model, undefined, undefined, false),
      `seed ${seed}: final state`,
    );
    transcript.push(`final ${all.length}`);
  } finally {
    for (const s of snapshots) s.snap.release();
    await store.close();
  }
  return transcript;
}

Deno.test("random operations with constant flushes and merges match a sorted model", async () => {
  const base = testSeed("lsm model");
  for (let i = 0; i < 4; i++) {
    await using tmp = await tempDir();
    await runModel((base + i) >>> 0, 1500, {
      memtableBytes: 4096,
      blockBytes: 512,
      l0MergeTrigger: 3,
      // Tiny levels and tables: merges reach levels 2 to 4 all the time.
      l1Bytes: 4096,
      tableBytes: 2048,
      sync: "none",
      // Flushes and merges in worker threads, and on the store's thread.
      background: i % 2 === 0 ? "worker" : "inline",
      // A cache of a few blocks of mixed sizes: inserts often evict
      // several blocks, while scans keep the blocks they are in pinned.
      blockCacheBytes: i < 2 ? 2500 : 8 << 20,
    }, tmp.path);
    const files = await names(tmp.path);
    assert.ok(
      files.some((n) => n.endsWith(".sst")),
      `tables were written: ${files}`,
    );
  }
});

Deno.test("one operation log gives identical results under different configurations", async () => {
  const seed = testSeed("lsm configurations");
  const configs: StoreOptions[] = [
    {
      memtableBytes: 4096,
      blockBytes: 512,
      bloomBitsPerKey: 10,
      l0MergeTrigger: 2,
      // A cache of a few blocks: evictions on almost every read.
      blockCacheBytes: 8192,
      l1Bytes: 2048,
      tableBytes: 1024,
    },
    { memtableBytes: 4 * 1024 * 1024, blockBytes: 4096, bloomBitsPerKey: 10 },
    {
      memtableBytes: 4096,
      blockBytes: 4096,
      bloomBitsPerKey: 0,
      l0MergeTrigger: 4,
      l1Bytes: 16384,
      tableBytes: 4096,
      background: "inline",
    },
    { memtableBytes: 16384, blockBytes: 512, bloomBitsPerKey: 0, sync: "none" },
    {
      memtableBytes: 2048,
      blockBytes: 1024,
      l0MergeTrigger: 3,
      sync: "interval",
    },
  ];
  const transcripts: string[][] = [];
  for (const config of configs) {
    await using tmp = await tempDir();
    transcripts.push(await runModel(seed, 1000, config, tmp.path));
  }
  for (let i = 1; i < transcripts.length; i++) {
    assert.deepEqual(
      transcripts[i],
      transcripts[0],
      `config ${i} differs (seed ${seed})`,
    );
  }
});

Deno.test("flushed data survives reopen and obsolete WAL segments are deleted", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path, {
    memtableBytes: 4096,
    l0MergeTrigger: 4,
  });
  for (let i = 0; i < 2000; i++) {
    await store.put(
      `key${String(i).padStart(5, "0")}`,
      `value ${i} ${"y".repeat(40)}`,
    );
  }
  await store.settle();
  const stats = store.stats();
  assert.ok(stats.flushes > 10, `${stats.flushes} flushes`);
  assert.ok(
    stats.merges + stats.moves > 0,
    `${stats.merges} merges, ${stats.moves} moves`,
  );
  assert.ok(stats.levels[0]!.tables < 4);
  await store.close();
  const files = await names(tmp.path);
  assert.ok(
    files.filter((n) => n.endsWith(".log")).length <= 2,
    `segments left: ${files}`,
  );
  assert.equal(files.filter((n) => n.startsWith("MANIFEST-")).length, 1);
  store = await openStore(tmp.path, { memtableBytes: 4096 });
  assert.ok(store.recovery.tables > 0);
  assert.equal(await store.count(), 2000);
  assert.equal(
    text(await store.get("key01234")),
    `value 1234 ${"y".repeat(40)}`,
  );
  await store.close();
});

Deno.test("overwriting a few keys forever keeps WAL segments bounded by the memtable size", async () => {
  await using tmp = await tempDir();
  const memtableBytes = 64 * 1024;
  let store = await openStore(tmp.path, { memtableBytes });
  const value = (i: number) => `${i} ${"v".repeat(100)}`;
  // 5,000 overwrites of 10 keys: about 640 KiB of log for a memtable that
  // never holds more than 10 live versions (about 2 KiB), though its arena
  // keeps the bytes of the versions it dropped until it is flushed.
  for (let i = 0; i < 5000; i++) await store.put(`hot${i % 10}`, value(i));
  await store.settle();
  const stats = store.stats();
  assert.ok(
    stats.memtableBytes <= memtableBytes + 1024,
    `memtable ${stats.memtableBytes} B`,
  );
  assert.ok(stats.flushes >= 3, `${stats.flushes} flushes`);
  assert.ok(
    stats.walBytes <= 2 * memtableBytes + 1024,
    `current segment ${stats.walBytes} B`,
  );
  await store.close();
  for (const name of await names(tmp.path)) {
    if (!name.endsWith(".log")) continue;
    const { size } = await Deno.stat(`${tmp.path}/${name}`);
    assert.ok(size <= 2 * memtableBytes + 1024, `${name}: ${size} B`);
  }
  store = await openStore(tmp.path, { memtableBytes });
  assert.ok(
    store.recovery.ops <= (2 * memtableBytes) / 100,
    `replayed ${store.recovery.ops} ops`,
  );
  for (let k = 0; k < 10; k++) {
    assert.equal(text(await store.get(`hot${k}`)), value(4990 + k));
  }
  await store.close();
});

Deno.test("level 0 below its trigger is merged down once writes go idle, and not while they go on", async () => {
  await using tmp = await tempDir();
  const options = {
    memtableBytes: 16 * 1024,
    l0MergeTrigger: 8,
    idleMergeMs: 500,
  };
  let store = await openStore(tmp.path, options);
  const value = (i: number) => `value ${i} ${"z".repeat(60)}`;
  const frozen = () => {
    const s = store.stats();
    return s.flushes + s.immutableMemtables;
  };
  // Three memtables' worth of keys: level 0 gets three tables, below its
  // trigger of 8.
  let n = 0;
  while (frozen() < 3) {
    await store.put(`k${String(n).padStart(5, "0")}`, value(n));
    n++;
  }
  // Then a trickle of small writes for three idle periods, one every 20
  // ms: too few bytes to freeze a memtable, too frequent for an idle merge.
  const trickleEnds = Date.now() + 3 * options.idleMergeMs;
  let hot = 0;
  while (Date.now() < trickleEnds) {
    await store.put("hot", String(hot++));
    await new Promise((r) => setTimeout(r, 20));
  }
  await store.settle();
  let stats = store.stats();
  assert.equal(stats.idleMerges, 0, "no idle merge while writes go on");
  const l0 = stats.levels[0]!.tables;
  assert.ok(l0 >= 2 && l0 < 8, `level 0 holds ${l0} tables`);
  // Idle: level 0 goes down without a write to trigger it.
  const deadline = Date.now() + 10_000;
  while (store.stats().levels[0]!.tables > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  await store.settle();
  stats = store.stats();
  assert.equal(stats.levels[0]!.tables, 0, "level 0 merged down");
  assert.equal(stats.idleMerges, 1);
  for (let k = 0; k < n; k++) {
    assert.equal(
      text(await store.get(`k${String(k).padStart(5, "0")}`)),
      value(k),
    );
  }
  assert.equal(text(await store.get("hot")), String(hot - 1));
  await store.close();
  // With idleMergeMs 0 it never happens. (No merge is due either: level 0
  // only grows.)
  store = await openStore(tmp.path, {
    ...options,
    l0MergeTrigger: 1000,
    idleMergeMs: 0,
  });
  for (let j = 0; frozen() < 3; j++) await store.put(`n${j}`, value(j));
  await store.settle();
  const before = store.stats().levels[0]!.tables;
  assert.ok(before >= 2, `level 0 holds ${before} tables`);
  await new Promise((r) => setTimeout(r, 2 * options.idleMergeMs));
  assert.equal(store.stats().levels[0]!.tables, before);
  assert.equal(store.stats().idleMerges, 0);
  await store.close();
});

Deno.test("the idle merge of level 0 happens during a loop of reads that resolve at once", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 16 * 1024,
    l0MergeTrigger: 8,
    idleMergeMs: 100,
  });
  try {
    let n = 0;
    while (store.stats().flushes + store.stats().immutableMemtables < 3) {
      await store.put(`k${String(n++).padStart(5, "0")}`, "v".repeat(60));
    }
    await store.settle();
    const l0 = store.stats().levels[0]!.tables;
    assert.ok(l0 >= 2 && l0 < 8, `level 0 holds ${l0} tables`);
    // Only reads from here on, each resolved at once (no timer awaited):
    // the idle merge's timer must still get its turn.
    const deadline = Date.now() + 10_000;
    let reads = 0;
    while (store.stats().idleMerges === 0 && Date.now() < deadline) {
      const k = `k${String(reads++ % n).padStart(5, "0")}`;
      if ((reads & 1) === 0) assert.ok(await store.get(k), k);
      else for await (const _ of store.scan({ start: k, limit: 3 }));
    }
    assert.equal(store.stats().idleMerges, 1, `after ${reads} reads`);
  } finally {
    await store.close();
  }
});

Deno.test("a pending idle merge does not keep a program that left its store open from exiting", async () => {
  await using tmp = await tempDir();
  const started = performance.now();
  const child = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      new URL("../fixtures/left_open.ts", import.meta.url).pathname,
      tmp.path,
      "60000",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  assert.equal(child.code, 0, new TextDecoder().decode(child.stderr));
  const l0 = Number(new TextDecoder().decode(child.stdout).trim());
  assert.ok(l0 >= 2, `level 0 held ${l0} tables`);
  // The idle merge was a minute away; the worker stops within a second of
  // its last job.
  assert.ok(seconds < 30, `exited after ${seconds.toFixed(1)} s`);
});

Deno.test("writes stalled behind flushes keep issue order for reads, counts and scans", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 1024,
    sync: "none",
  });
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 3000; i++) {
    writes.push(
      store.put(`k${String(i).padStart(5, "0")}`, `v${i} ${"z".repeat(30)}`),
    );
  }
  // Issued after every write above, before any is awaited.
  const count = store.count();
  const get = store.get("k02999");
  const scan = (async () => {
    let n = 0;
    for await (const _ of store.scan({ prefix: "k029" })) n++;
    return n;
  })();
  const later = store.put("k99999", "after");
  await Promise.all(writes);
  assert.ok(store.stats().writeStalls > 0, "the test must stall writes");
  assert.equal(await count, 3000);
  assert.equal(text(await get), `v2999 ${"z".repeat(30)}`);
  assert.equal(await scan, 100);
  await later;
  assert.equal(await store.count(), 3001);
  await store.close();
});

Deno.test("freezes during flushes never reuse a live file number (64 durable writers, tiny memtable)", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path, {
    memtableBytes: 1024,
    l0MergeTrigger: 3,
  });
  await Promise.all(Array.from({ length: 64 }, async (_, w) => {
    for (let i = 0; i < 40; i++) {
      await store.put(`w${w}-${i}`, `${w}:${i} ${"q".repeat(20)}`);
    }
  }));
  assert.ok(store.stats().flushes > 5);
  await store.close();
  store = await openStore(tmp.path);
  assert.equal(await store.count(), 64 * 40);
  for (let w = 0; w < 64; w += 7) {
    assert.equal(
      text(await store.get(`w${w}-39`)),
      `${w}:39 ${"q".repeat(20)}`,
    );
  }
  await store.close();
});

Deno.test("a snapshot or scan released after close does not throw", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 1024,
    l0MergeTrigger: 2,
  });
  for (let i = 0; i < 300; i++) await store.put(`k${i}`, "v".repeat(50));
  const snap = store.snapshot();
  for (let i = 0; i < 300; i++) await store.put(`k${i}`, "w".repeat(50));
  await store.settle();
  await store.close();
  snap.release();
});

Deno.test("a directory with tables but no CURRENT is refused, not wiped", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { memtableBytes: 1024 });
  for (let i = 0; i < 200; i++) await store.put(`k${i}`, "v".repeat(50));
  await store.settle();
  await store.close();
  await Deno.remove(`${tmp.path}/CURRENT`);
  const before = await names(tmp.path);
  await assert.rejects(openStore(tmp.path), /CURRENT is missing/);
  assert.deepEqual(await names(tmp.path), before);
});

Deno.test("data spread over several levels by merges and moves reads back, deletes included, after reopen", async () => {
  const seed = testSeed("lsm deep levels");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const options = {
    memtableBytes: 8192,
    l0MergeTrigger: 2,
    l1Bytes: 8192,
    tableBytes: 4096,
    sync: "none",
  } as const;
  let store = await openStore(tmp.path, options);
  const model = new Map<string, string>();
  for (let i = 0; i < 6000; i++) {
    const k = `key${String(rng.int(3000)).padStart(5, "0")}`;
    if (rng.chance(0.2)) {
      await store.delete(k);
      model.delete(k);
    } else {
      const v = `v${i} `.padEnd(20 + rng.int(60), "x");
      await store.put(k, v);
      model.set(k, v);
    }
  }
  await store.settle();
  const stats = store.stats();
  const deepest = stats.levels.findLastIndex((l) => l.tables > 0);
  assert.ok(deepest >= 3, `deepest level ${deepest} (seed ${seed})`);
  assert.ok(stats.merges > 0 && stats.moves > 0, JSON.stringify(stats));
  await store.close();
  const report = await checkStore(denoEnv, tmp.path);
  assert.deepEqual(report.problems, [], `seed ${seed}`);
  // Every level from 1 sorted and disjoint, as the manifest and the
  // tables' own properties say.
  const state = await readState(tmp.path);
  for (let l = 1; l < state.levels.length; l++) {
    const level = state.levels[l]!;
    for (let i = 1; i < level.length; i++) {
      assert.ok(level[i - 1]!.largest < level[i]!.smallest, `level ${l}`);
    }
  }
  store = await openStore(tmp.path, options);
  const want = [...model].sort(([a], [b]) => a < b ? -1 : 1);
  assert.deepEqual(await collect(store.scan()), want, `seed ${seed}`);
  for (const [k, v] of want.slice(0, 200)) {
    assert.equal(text(await store.get(k)), v);
  }
  assert.equal(await store.count(), model.size);
  await store.close();
});

Deno.test("sequential writes move level-0 tables down without rewriting them", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path, {
    memtableBytes: 4096,
    l0MergeTrigger: 2,
    sync: "none",
  });
  for (let i = 0; i < 3000; i++) {
    await store.put(
      `key${String(i).padStart(6, "0")}`,
      `v${i}`.padEnd(60, "."),
    );
  }
  await store.settle();
  const stats = store.stats();
  assert.ok(stats.moves > 0, `${stats.moves} moves`);
  assert.equal(stats.merges, 0, "no table needed rewriting");
  assert.ok(stats.levels[1]!.tables > 0);
  await store.close();
  store = await openStore(tmp.path);
  assert.equal(await store.count(), 3000);
  assert.equal(text(await store.get("key001234")), "v1234".padEnd(60, "."));
  const keys: string[] = [];
  for await (const k of store.keys({ start: "key002990" })) keys.push(text(k)!);
  assert.deepEqual(
    keys,
    Array.from({ length: 10 }, (_, i) => `key00${2990 + i}`),
  );
  await store.close();
});

Deno.test("a paused scan returns the right values while other reads churn the block cache", async () => {
  // A scan reads values straight from cached blocks; a block evicted while
  // the scan still points into it must not have its buffer reused.
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 16 * 1024,
    l0MergeTrigger: 2,
    blockCacheBytes: 16 * 1024,
    sync: "none",
  });
  const key = (i: number) => `key${String(i).padStart(5, "0")}`;
  const value = (i: number) => `value ${i} `.padEnd(100, String(i % 10));
  for (let i = 0; i < 4000; i++) await store.put(key(i), value(i));
  await store.settle();
  const scans = [0, 1000, 2000, 3000].map((start) => ({
    start,
    it: store.scan({ start: key(start), limit: 200 })[Symbol.asyncIterator](),
    seen: 0,
  }));
  // Interleave the scans with point reads all over the key space.
  for (let round = 0; round < 200; round++) {
    for (const s of scans) {
      const r = await s.it.next();
      assert.ok(!r.done);
      assert.equal(text(r.value.key), key(s.start + s.seen));
      assert.equal(text(r.value.value), value(s.start + s.seen));
      s.seen++;
    }
    for (let j = 0; j < 20; j++) {
      const i = (round * 197 + j * 211) % 4000;
      assert.equal(text(await store.get(key(i))), value(i));
    }
  }
  const cache = store.stats().blockCache;
  assert.ok(cache.misses > 1000, `${cache.misses} block cache misses`);
  await store.close();
});

Deno.test("values a scan returns are its own: overwriting each as it comes changes no later value, scan or get", async () => {
  // A scan that takes several values from one table block copies the block
  // once and hands out views of the copy: the views must not overlap, and
  // must not be the cached block itself.
  await using tmp = await tempDir();
  const key = (i: number) => `key${String(i).padStart(5, "0")}`;
  const value = (i: number) => `value ${i} `.padEnd(40 + (i % 60), "v");
  let store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 16 * 1024,
  });
  for (let i = 0; i < 3000; i += 2) await store.put(key(i), value(i));
  await store.settle();
  assert.ok(store.stats().levels.some((l) => l.tables > 0));
  await store.close();
  // Odd keys stay in the memtable: the scan merges both sources.
  store = await openStore(tmp.path, { sync: "none" });
  for (let i = 1; i < 3000; i += 2) await store.put(key(i), value(i));
  const read = async () => {
    let i = 100;
    for await (const e of store.scan({ start: key(100), limit: 2000 })) {
      assert.equal(text(e.key), key(i));
      assert.equal(text(e.value), value(i));
      e.value.fill(0x21);
      e.key.fill(0x21);
      i++;
    }
    assert.equal(i, 2100);
  };
  await read();
  await read();
  for (let i = 0; i < 3000; i += 7) {
    assert.equal(text(await store.get(key(i))), value(i));
  }
  await store.close();
});

Deno.test("a burst of unawaited durable writes still freezes and flushes memtables at their size", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { memtableBytes: 2048 });
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 3000; i++) {
    writes.push(store.put(`key${i % 500}`, `v${i} ${"x".repeat(i % 60)}`));
  }
  await Promise.all(writes);
  const stats = store.stats();
  // Writes not yet applied count toward the memtable's size: without that,
  // all 3000 would land in one memtable far over its 2 KiB.
  assert.ok(stats.flushes > 20, `${stats.flushes} flushes`);
  assert.ok(
    stats.memtableBytes < 64 * 1024,
    `memtable at ${stats.memtableBytes} bytes`,
  );
  assert.equal(await store.count(), 500);
  await store.close();
});

/**
 * Which of `files` are still in `dir` after forcing garbage collections
 * (up to 50, 10 ms apart) until none is.
 */
async function collectUntilGone(
  gc: () => void,
  dir: string,
  files: string[],
): Promise<string[]> {
  const left = async () => (await names(dir)).filter((n) => files.includes(n));
  let still = await left();
  for (let attempt = 0; attempt < 50 && still.length > 0; attempt++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
    still = await left();
  }
  return still;
}

Deno.test("a scan dropped without being read releases its view once collected", async () => {
  // Needs --v8-flags=--expose-gc (the test task passes it) to force a GC.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log(
      "SKIPPED: run with --v8-flags=--expose-gc to force garbage collection",
    );
    return;
  }
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 1024,
    l0MergeTrigger: 2,
  });
  for (let i = 0; i < 200; i++) {
    await store.put(`k${String(i).padStart(3, "0")}`, "v".repeat(40));
  }
  await store.settle();
  const tablesBefore = (await names(tmp.path)).filter((n) =>
    n.endsWith(".sst")
  );
  assert.ok(tablesBefore.length > 0);
  (() => {
    store.scan(); // pinned, never read, dropped
  })();
  for (let i = 0; i < 200; i++) {
    await store.put(`k${String(i).padStart(3, "0")}`, "w".repeat(40));
  }
  await store.settle();
  // Without the release on collection, the dropped scan would pin the old
  // tables forever (it may already have been collected by now).
  const stillThere = await collectUntilGone(gc, tmp.path, tablesBefore);
  assert.deepEqual(stillThere, [], "collected scan released its tables");
  await store.close();
});

Deno.test("a snapshot's scan, started and dropped unfinished, lets go of the view once collected and the snapshot released", async () => {
  // Needs --v8-flags=--expose-gc (the test task passes it) to force a GC.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log(
      "SKIPPED: run with --v8-flags=--expose-gc to force garbage collection",
    );
    return;
  }
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 1024,
    l0MergeTrigger: 2,
  });
  const fill = async (v: string) => {
    for (let i = 0; i < 200; i++) {
      await store.put(`k${String(i).padStart(3, "0")}`, v.repeat(40));
    }
    await store.settle();
  };
  await fill("v");
  const tablesBefore = (await names(tmp.path)).filter((n) =>
    n.endsWith(".sst")
  );
  assert.ok(tablesBefore.length > 0);
  const snap = store.snapshot();
  await (async () => {
    // Started (it holds the snapshot's view), then dropped unfinished.
    const it = snap.scan()[Symbol.asyncIterator]();
    assert.equal(text((await it.next()).value?.value), "v".repeat(40));
  })();
  snap.release();
  await fill("w");
  const stillThere = await collectUntilGone(gc, tmp.path, tablesBefore);
  assert.deepEqual(stillThere, [], "the collected scan let go of its tables");
  await store.close();
});

Deno.test("a corrupt record in the live WAL after flushed tables refuses to open; --repair keeps a prefix with no hole", async () => {
  await using tmp = await tempDir();
  const ops: Array<[string, string]> = [];
  let store = await openStore(tmp.path, {
    memtableBytes: 16384,
    l0MergeTrigger: 3,
  });
  for (let i = 0; i < 400; i++) {
    const op: [string, string] = [`k${i % 300}`, `v${i} ${"w".repeat(i % 30)}`];
    ops.push(op);
    await store.put(op[0], op[1]);
  }
  const lastSeq = store.stats().lastSequence;
  await store.close();
  assert.equal(lastSeq, 400);
  const segment = (await names(tmp.path)).filter((n) => n.endsWith(".log")).at(
    -1,
  )!;
  const path = `${tmp.path}/${segment}`;
  const bytes = await Deno.readFile(path);
  assert.ok(bytes.length > 150, `live segment of ${bytes.length} bytes`);
  bytes[Math.floor(bytes.length / 3)]! ^= 0x08;
  await Deno.writeFile(path, bytes);
  await assert.rejects(openStore(tmp.path), CorruptionError);
  store = await openStore(tmp.path, { repair: true });
  const seq = store.stats().lastSequence;
  assert.ok(
    seq < 400 && store.recovery.tables > 0,
    `repaired to sequence ${seq}`,
  );
  // The state is exactly the first `seq` puts: tables, then the WAL's
  // valid prefix, with nothing missing in between.
  const want = new Map<string, string>();
  for (const [k, v] of ops.slice(0, seq)) want.set(k, v);
  const got = new Map<string, string>();
  for await (const e of store.scan()) got.set(text(e.key)!, text(e.value)!);
  assert.deepEqual(got, want);
  await store.close();
});

Deno.test("a loop of reads resolved at once still lets background flushes commit", async () => {
  // With sync "none", writes and reads served from memory resolve at once,
  // and a loop awaiting only them never lets the event loop turn: the
  // worker's results (events) would wait until the loop ends. Reads must
  // make room for a turn now and then while background work runs.
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 4096,
    background: "worker",
  });
  try {
    const frozen = () => store.stats().immutableMemtables;
    let i = 0;
    // Write every key, then until a memtable is frozen, waiting for its flush.
    while (i < 300 || frozen() === 0) {
      await store.put(`key${i % 300}`, `value ${i} ${"x".repeat(40)}`);
      assert.ok(++i < 100_000, "no memtable froze");
    }
    const flushes = store.stats().flushes;
    let gets = 0;
    while (frozen() > 0 && gets < 4_000_000) {
      for (let j = 0; j < 1024; j++, gets++) {
        assert.ok(await store.get(`key${j % 300}`));
      }
    }
    assert.equal(frozen(), 0, `flush not committed after ${gets} gets`);
    assert.ok(store.stats().flushes > flushes);
    // The same for the entries of scans.
    while (frozen() === 0) {
      await store.put(`key${i % 300}`, `value ${i} ${"x".repeat(40)}`);
      assert.ok(++i < 200_000, "no memtable froze");
    }
    let entries = 0;
    while (frozen() > 0 && entries < 4_000_000) {
      for await (const _ of store.keys()) entries++;
    }
    assert.equal(frozen(), 0, `flush not committed after ${entries} entries`);
    // And for scans read many entries per call, each complete.
    while (frozen() === 0) {
      await store.put(`key${i % 300}`, `value ${i} ${"x".repeat(40)}`);
      assert.ok(++i < 300_000, "no memtable froze");
    }
    let batched = 0;
    while (frozen() > 0 && batched < 4_000_000) {
      const keys = await store.keys().all();
      assert.equal(keys.length, 300);
      batched += keys.length;
    }
    assert.equal(frozen(), 0, `flush not committed after ${batched} entries`);
  } finally {
    await store.close();
  }
});

Deno.test("a snapshot keeps reading its memtables after they are flushed and their successors fill up", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 8 * 1024,
    idleMergeMs: 0,
  });
  const value = (round: number, i: number) =>
    `${round}:${i}:${"x".repeat(40 + (i % 7))}`;
  for (let i = 0; i < 40; i++) await store.put(`k${i}`, value(0, i));
  const snap = store.snapshot();
  // The same keys again, many memtables' worth: the snapshot's memtable is
  // flushed, and memtables made after it (whose buffers come from
  // memtables no one reads any more) are written over and over.
  const before = store.stats().flushes;
  for (let round = 1; round <= 30; round++) {
    for (let i = 0; i < 40; i++) await store.put(`k${i}`, value(round, i));
  }
  await store.settle();
  assert.ok(store.stats().flushes - before >= 10, "memtables were flushed");
  for (let i = 0; i < 40; i++) {
    assert.equal(text(await snap.get(`k${i}`)), value(0, i), `k${i}`);
    assert.equal(text(await store.get(`k${i}`)), value(30, i), `k${i} now`);
  }
  const scanned: string[] = [];
  for await (const e of snap.scan({ prefix: "k" })) {
    scanned.push(`${text(e.key)}=${text(e.value)}`);
  }
  assert.deepEqual(
    scanned,
    Array.from({ length: 40 }, (_, i) => `k${i}`).sort().map((k) =>
      `${k}=${value(0, Number(k.slice(1)))}`
    ),
  );
  snap.release();
  // Released, its memtable's buffers serve new memtables.
  for (let i = 0; i < 40; i++) await store.put(`k${i}`, value(31, i));
  for (let i = 0; i < 40; i++) {
    assert.equal(text(await store.get(`k${i}`)), value(31, i));
  }
  await store.close();
});

Deno.test("a snapshot's scan first read after the snapshot's release fails with a RangeError, and one started before reads on", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  await store.put("a", "1");
  await store.put("b", "2");
  const snap = store.snapshot();
  // Made, not started: it takes its hold of the view at its first read.
  const late = snap.scan()[Symbol.asyncIterator]();
  const early = snap.scan()[Symbol.asyncIterator]();
  assert.equal(text((await early.next()).value?.key), "a");
  snap.release();
  await assert.rejects(late.next(), RangeError, "Snapshot was released");
  assert.deepEqual(await late.next(), { done: true, value: undefined });
  await store.put("b", "3");
  const e = await early.next();
  assert.equal(`${text(e.value?.key)}=${text(e.value?.value)}`, "b=2");
  assert.equal((await early.next()).done, true);
  await store.close();
});

Deno.test("a snapshot's scan goes on reading its own view after the snapshot is released", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 8 * 1024,
    idleMergeMs: 0,
    l0MergeTrigger: 2,
  });
  // "a" and "f…" end up in tables, "m" stays in the memtable.
  await store.put("a", "table-value");
  for (let i = 0; i < 200; i++) await store.put(`f${i}`, "x".repeat(50));
  await store.settle();
  await store.put("m", "snapshot-value");
  const snap = store.snapshot();
  const it = snap.scan({ start: "a", end: "n" })[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(text(first.value?.key), "a");
  snap.release();
  await assert.rejects(
    snap.get("a"),
    RangeError,
    "the snapshot itself is gone",
  );
  // Many memtables and merges later: the snapshot's memtable is flushed
  // (its buffers free for reuse only once the scan is done) and the tables
  // it read are merged away.
  for (let r = 0; r < 20; r++) {
    for (let i = 0; i < 100; i++) await store.put(`a${i}`, `r${r}`.repeat(30));
    for (let i = 0; i < 200; i++) await store.put(`f${i}`, `r${r}`.repeat(25));
    await store.put("m", `r${r}`);
  }
  await store.settle();
  assert.ok(store.stats().merges > 0, "tables were merged");
  const rest: string[] = [];
  for (let e = await it.next(); !e.done; e = await it.next()) {
    rest.push(`${text(e.value.key)}=${text(e.value.value)}`);
  }
  const f = Array.from({ length: 200 }, (_, i) => `f${i}`).sort();
  assert.deepEqual(rest, [
    ...f.map((k) => `${k}=${"x".repeat(50)}`),
    "m=snapshot-value",
  ]);
  await store.close();
});

Deno.test("next() reads ahead: next(), nextv() and all() mixed in one scan skip and repeat nothing", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 16 * 1024,
  });
  const key = (i: number) => `key${String(i).padStart(5, "0")}`;
  for (let i = 0; i < 2000; i++) await store.put(key(i), `value ${i}`);
  await store.settle();
  for (let i = 0; i < 2000; i += 3) await store.put(key(i), `again ${i}`);
  const pairs = (es: Entry[]) =>
    es.map((e) => `${text(e.key)}=${text(e.value)}`);
  const seed = testSeed("mixed scan calls");
  const rng = new Prng(seed);
  for (let round = 0; round < 40; round++) {
    const options: ScanOptions = rng.chance(0.5)
      ? { start: key(rng.int(2000)), limit: 1 + rng.int(400) }
      : { reverse: true, start: key(rng.int(1000)) };
    const want = pairs(await store.scan(options).all());
    const scan = store.scan(options);
    const got: Entry[] = [];
    for (let done = false; !done;) {
      const pick = rng.int(3);
      if (pick === 0) {
        for (let n = rng.int(40); n > 0 && !done; n--) {
          const r = await scan.next();
          if (r.done) done = true;
          else got.push(r.value);
        }
      } else if (pick === 1) {
        const size = 1 + rng.int(20);
        const chunk = await scan.nextv(size);
        got.push(...chunk);
        done = chunk.length < size;
      } else if (rng.chance(0.2)) {
        got.push(...await scan.all());
        done = true;
      }
    }
    assert.deepEqual(
      pairs(got),
      want,
      `round ${round}: ${JSON.stringify(options)}`,
    );
    assert.equal((await scan.next()).done, true);
  }
  // Entries read ahead are not handed out once the scan is broken off.
  const scan = store.scan({ start: key(0) });
  let taken = 0;
  for await (const _ of scan) if (++taken === 2) break;
  assert.equal((await scan.next()).done, true);
  assert.deepEqual(await scan.all(), []);
  // Calls made without awaiting the one before, on a scan that starts
  // later (a snapshot's): each entry once, in order.
  const snapshot = store.snapshot();
  const want = pairs(await snapshot.scan({ limit: 40 }).all());
  const overlapping = snapshot.scan({ limit: 40 });
  const [a, b, rest, c] = await Promise.all([
    overlapping.next(),
    overlapping.next(),
    overlapping.nextv(30),
    overlapping.next(),
  ]);
  const tail = await overlapping.all();
  assert.deepEqual(
    pairs([a.value!, b.value!, ...rest, ...(c.done ? [] : [c.value]), ...tail]),
    want,
  );
  snapshot.release();
  // Nor once the store is closed: the scan fails, as one not read ahead,
  // whether it read ahead to its end or not.
  const open = store.scan({ start: key(0) });
  await open.next();
  await open.next();
  const ended = store.scan({ start: key(0), limit: 3 });
  for (let i = 0; i < 3; i++) assert.equal((await ended.next()).done, false);
  const endedAll = store.scan({ start: key(0), limit: 3 });
  await endedAll.next();
  await endedAll.next();
  await store.close();
  await assert.rejects(open.next(), StoreClosedError);
  assert.equal((await open.next()).done, true);
  await assert.rejects(ended.next(), StoreClosedError);
  await assert.rejects(endedAll.all(), StoreClosedError);
});

Deno.test("a scan meeting a corrupt block hands out every entry before it, then the error, however it is read", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 64 * 1024,
  });
  const key = (i: number) => `key${String(i).padStart(5, "0")}`;
  for (let i = 0; i < 5000; i++) {
    await store.put(key(i), `value ${i} ${"x".repeat(60)}`);
  }
  await store.settle();
  await store.close();
  // A byte in the middle of the biggest table: inside some data block.
  let table = "";
  let size = 0;
  for (const name of await names(tmp.path)) {
    if (!name.endsWith(".sst")) continue;
    const s = (await Deno.stat(`${tmp.path}/${name}`)).size;
    if (s > size) [table, size] = [name, s];
  }
  const bytes = await Deno.readFile(`${tmp.path}/${table}`);
  bytes[Math.floor(size / 2)]! ^= 0x20;
  await Deno.writeFile(`${tmp.path}/${table}`, bytes);
  store = await openStore(tmp.path);
  try {
    const read = async (how: "for await" | "nextv") => {
      const got: string[] = [];
      const scan = store.scan();
      const error = await (async () => {
        try {
          if (how === "for await") {
            for await (const e of scan) got.push(text(e.key)!);
          } else {
            for (;;) {
              const [e] = await scan.nextv(1);
              if (e === undefined) break;
              got.push(text(e.key)!);
            }
          }
        } catch (error) {
          return error;
        }
        return undefined;
      })();
      assert.ok(error instanceof CorruptionError, `${how}: ${error}`);
      assert.match(error.message, new RegExp(table));
      return got;
    };
    const one = await read("nextv");
    assert.ok(one.length > 0, "entries before the corrupt block");
    assert.deepEqual(await read("for await"), one);
    assert.deepEqual(one, one.map((_, i) => key(i)));
    // next() up to just before the last good entry (reading ahead, it has
    // met the error by then), then all() or nextv(): the error, not the
    // rest as if the scan had ended there.
    for (const rest of ["all", "nextv"] as const) {
      const scan = store.scan();
      for (let i = 0; i < one.length - 1; i++) await scan.next();
      await assert.rejects(
        rest === "all" ? scan.all() : scan.nextv(100),
        CorruptionError,
        rest,
      );
    }
  } finally {
    await store.close();
  }
});

Deno.test("nextv() and all() hand over what for await reads, over memtables and tables, forward and reverse", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    sync: "none",
    memtableBytes: 16 * 1024,
  });
  const key = (i: number) => `key${String(i).padStart(5, "0")}`;
  for (let i = 0; i < 3000; i++) await store.put(key(i), `value ${i}`);
  for (let i = 0; i < 3000; i += 7) await store.delete(key(i));
  // Some keys in tables, some rewritten in the memtable.
  await store.settle();
  for (let i = 0; i < 3000; i += 5) await store.put(key(i), `again ${i}`);
  const pairs = (es: Entry[]) =>
    es.map((e) => `${text(e.key)}=${text(e.value)}`);
  const cases: ScanOptions[] = [
    {},
    { start: key(100), end: key(2900) },
    { prefix: "key01" },
    { start: key(10), limit: 123 },
    { reverse: true, limit: 500 },
    { start: key(2999), end: key(3000) },
    { prefix: "nothing" },
  ];
  for (const options of cases) {
    const what = JSON.stringify(options);
    const want = pairs(await Array.fromAsync(store.scan(options)));
    assert.deepEqual(pairs(await store.scan(options).all()), want, what);
    const chunks: Entry[] = [];
    const scan = store.scan(options);
    for (;;) {
      const got = await scan.nextv(7);
      assert.ok(got.length <= 7, what);
      chunks.push(...got);
      if (got.length < 7) break;
    }
    assert.deepEqual(await scan.nextv(7), [], `${what}: ended`);
    assert.deepEqual(pairs(chunks), want, `${what} by nextv`);
    const keys = (await store.keys(options).all()).map((k) => text(k));
    assert.deepEqual(keys, want.map((p) => p.slice(0, p.indexOf("="))));
  }
  // all() after next(): the rest; the scan has ended after it.
  const scan = store.scan({ start: key(1000), limit: 50 });
  const first = await scan.next();
  assert.equal(text(first.value!.key), key(1000));
  const rest = await scan.all();
  assert.equal(rest.length, 49);
  // key(1001) was deleted.
  assert.equal(text(rest[0]!.key), key(1002));
  assert.deepEqual(await scan.next(), { done: true, value: undefined });
  for (const size of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(store.scan().nextv(size), RangeError, String(size));
  }
  await store.close();
});

Deno.test("all() waits for the writes issued before the scan, reads a snapshot's view, and fails once the store is closed", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  const writes = [store.put("a", "1"), store.put("b", "2")];
  // Issued after the puts, read before they are durable: still sees them.
  const pending = store.scan().all();
  const later = store.put("c", "3");
  assert.deepEqual(
    (await pending).map((e) => text(e.key)),
    ["a", "b"],
  );
  await Promise.all([...writes, later]);
  const snapshot = store.snapshot();
  await store.put("d", "4");
  assert.deepEqual(
    (await snapshot.scan().all()).map((e) => text(e.key)),
    ["a", "b", "c"],
  );
  snapshot.release();
  const open = store.scan();
  await store.close();
  await assert.rejects(open.all(), StoreClosedError);
  // The failure ended the scan.
  assert.deepEqual(await open.nextv(2), []);
});
