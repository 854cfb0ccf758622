/**
 * Standalone throughput run: ops/s of kv, Deno KV and raw baselines on the
 * same workloads, measured with plain loops for a fixed time, printed as a
 * markdown table with ratios to baselines measured in the same run.
 *
 *   deno run -A --unstable-kv bench/run.ts [--quick] [--rounds N] [--seconds S]
 *     [--only ID,ID...]
 *
 * `--only` runs the named workloads (ids in `workloads` below) and the
 * baselines they are compared with.
 *
 * Rounds interleave every workload (a baseline next to what it is compared
 * with). The table reports each workload's median ops/s over the rounds with
 * the min-max range, and each ratio as the median of the per-round ratios,
 * to damp the noise of a shared machine. Progress goes to stderr, the
 * markdown report to stdout. Targets are explained in docs/benchmarks.md.
 */
import { parseArgs } from "node:util";
import { openStore, type Store } from "../storage/mod.ts";
import { WAL_PREALLOCATE_BYTES } from "../storage/limits.ts";
import { copyBytes } from "../util/mod.ts";
import { median } from "../cli/bench.ts";
import {
  DURABLE_VALUE_BYTES,
  KEY_SPACE,
  makeBenchDir,
  makeKeys,
  makeValue,
  MEMORY_VALUE_BYTES,
  openAppend,
  openAppendSync,
  RAW_RECORD_BYTES,
  shuffledKeys,
  writeAll,
  writeAllSync,
  WRITERS,
} from "./workload.ts";

/** Fast loops read the clock once per this many ops. */
const CLOCK_EVERY_OPS = 1024;
/** Ops per batch when preloading the read workload. */
const PRELOAD_BATCH_OPS = 500;

interface Measurement {
  ops: number;
  ms: number;
  /** Per-op latencies in ms, for the workloads that record them. */
  latenciesMs?: number[];
  /** WAL records per fsync, for the kv durable workloads. */
  recordsPerSync?: number;
}

interface Workload {
  id: string;
  label: string;
  run(ms: number): Promise<Measurement>;
}

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    seconds: { type: "string" },
    only: { type: "string" },
  },
});
const ROUNDS = Number(flags.rounds ?? (flags.quick ? 1 : 3));
const MEASURE_MS = 1000 * Number(flags.seconds ?? (flags.quick ? 1 : 2.5));
const WARMUP_MS = Math.min(500, MEASURE_MS / 5);
if (!(ROUNDS >= 1) || !(MEASURE_MS > 0)) {
  throw new RangeError("--rounds must be >= 1 and --seconds > 0");
}

const root = await makeBenchDir();
const keys = makeKeys();
const readOrder = shuffledKeys(keys);
const durableValue = makeValue(DURABLE_VALUE_BYTES);
const memoryValue = makeValue(MEMORY_VALUE_BYTES);
const rawRecord = makeValue(RAW_RECORD_BYTES);
let dirCounter = 0;

function freshPath(name: string): string {
  return `${root}/${name}-${++dirCounter}`;
}

/** Runs `body` with a fresh kv store, then closes and deletes it. */
async function withStore<T>(
  sync: "always" | "none",
  body: (store: Store) => Promise<T>,
  memtableBytes?: number,
): Promise<T> {
  const dir = freshPath(`kv-${sync}`);
  const store = await openStore(
    dir,
    memtableBytes === undefined ? { sync } : { sync, memtableBytes },
  );
  try {
    return await body(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `body` with a fresh Deno KV database, then closes and deletes it. */
async function withDenoKv<T>(body: (kv: Deno.Kv) => Promise<T>): Promise<T> {
  const dir = freshPath("denokv");
  await Deno.mkdir(dir);
  const kv = await Deno.openKv(`${dir}/db.sqlite`);
  try {
    return await body(kv);
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Calls `op` (awaited) in a loop for `ms`; optionally records latencies. */
async function timedLoop(
  ms: number,
  op: (i: number) => Promise<unknown>,
  latenciesMs?: number[],
): Promise<Measurement> {
  const start = performance.now();
  const deadline = start + ms;
  let ops = 0;
  let now = start;
  while (now < deadline) {
    await op(ops++);
    const after = performance.now();
    latenciesMs?.push(after - now);
    now = after;
  }
  return { ops, ms: now - start };
}

/** Like timedLoop for sub-microsecond ops: reads the clock less often. */
async function fastLoop(
  ms: number,
  op: (i: number) => Promise<unknown> | unknown,
): Promise<Measurement> {
  const start = performance.now();
  const deadline = start + ms;
  let ops = 0;
  let now = start;
  while (now < deadline) {
    for (let j = 0; j < CLOCK_EVERY_OPS; j++) await op(ops++);
    now = performance.now();
  }
  return { ops, ms: now - start };
}

/**
 * Awaits `get(i)` directly for `ms`, as a caller writing
 * `await store.get(key)` does (no extra async wrapper per read). Throws if
 * any read finds nothing: every read key was preloaded.
 */
async function readLoop(
  ms: number,
  what: string,
  get: (i: number) => Promise<unknown> | unknown,
): Promise<Measurement> {
  const start = performance.now();
  const deadline = start + ms;
  let ops = 0;
  let misses = 0;
  let now = start;
  while (now < deadline) {
    for (let j = 0; j < CLOCK_EVERY_OPS; j++) {
      if ((await get(ops++)) === undefined) misses++;
    }
    now = performance.now();
  }
  if (misses > 0) throw new Error(`${what} missed ${misses} preloaded keys`);
  return { ops, ms: now - start };
}

/** Warms up, then measures, a {@linkcode readLoop}. */
async function reads(
  ms: number,
  what: string,
  get: (i: number) => Promise<unknown> | unknown,
): Promise<Measurement> {
  await readLoop(WARMUP_MS, what, get);
  return await readLoop(ms, what, get);
}

/** Keys per getMany call in the batched read workloads. */
const GET_MANY_KEYS = 100;

/**
 * Awaits `getMany(i)` (GET_MANY_KEYS keys per call) for `ms`, counting each
 * key as one read. Throws if any read finds nothing.
 */
async function manyReads(
  ms: number,
  what: string,
  getMany: (i: number) => Promise<readonly unknown[]>,
): Promise<Measurement> {
  const loop = async (ms: number) => {
    const start = performance.now();
    const deadline = start + ms;
    let calls = 0;
    let misses = 0;
    let now = start;
    while (now < deadline) {
      for (let j = 0; j < CLOCK_EVERY_OPS / GET_MANY_KEYS; j++) {
        for (const v of await getMany(calls++)) if (v == null) misses++;
      }
      now = performance.now();
    }
    if (misses > 0) throw new Error(`${what} missed ${misses} preloaded keys`);
    return { ops: calls * GET_MANY_KEYS, ms: now - start };
  };
  await loop(WARMUP_MS);
  return await loop(ms);
}

/** The GET_MANY_KEYS keys of getMany call `i`, in random order. */
function readKeys(i: number): string[] {
  const out: string[] = [];
  for (let j = 0; j < GET_MANY_KEYS; j++) {
    out.push(readKey(i * GET_MANY_KEYS + j));
  }
  return out;
}

/** `WRITERS` closed-loop writers, each awaiting its own op, for `ms`. */
async function concurrentLoops(
  ms: number,
  op: (i: number) => Promise<unknown>,
): Promise<Measurement> {
  const start = performance.now();
  const deadline = start + ms;
  let ops = 0;
  const writer = async (w: number) => {
    for (let i = w; performance.now() < deadline; i += WRITERS) {
      await op(i);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  return { ops, ms: performance.now() - start };
}

function keyOf(i: number): string {
  return keys[i % KEY_SPACE]!;
}

/**
 * Times the op `makeOp` makes for a fresh file (`name`, opened by `open`),
 * after a warm-up, then closes and removes the file.
 */
async function rawFileLoop(
  ms: number,
  name: string,
  open: (path: string) => Deno.FsFile | Promise<Deno.FsFile>,
  makeOp: (file: Deno.FsFile) => () => Promise<void>,
  latenciesMs?: number[],
): Promise<Measurement> {
  const path = freshPath(name);
  const file = await open(path);
  try {
    const op = makeOp(file);
    await timedLoop(WARMUP_MS, op);
    return await timedLoop(ms, op, latenciesMs);
  } finally {
    file.close();
    await Deno.remove(path);
  }
}

async function rawAsync(ms: number): Promise<Measurement> {
  const latenciesMs: number[] = [];
  const m = await rawFileLoop(
    ms,
    "raw-async",
    openAppend,
    (file) => async () => {
      await writeAll(file, rawRecord);
      await file.syncData();
    },
    latenciesMs,
  );
  return { ...m, latenciesMs };
}

/**
 * kv's own pattern: a synchronous append, then an awaited syncData. Faster
 * here than the all-async pattern (one awaited op instead of two), so the
 * durable-writer targets are measured against it: the strictest raw rate.
 */
function rawMixed(ms: number): Promise<Measurement> {
  return rawFileLoop(ms, "raw-mixed", openAppend, (file) => async () => {
    writeAllSync(file, rawRecord);
    await file.syncData();
  });
}

/**
 * One append of WRITERS records and one syncData, counted as WRITERS ops:
 * the disk's ceiling for a group commit of that size.
 */
async function rawGroup(ms: number): Promise<Measurement> {
  const group = new Uint8Array(WRITERS * RAW_RECORD_BYTES);
  for (let w = 0; w < WRITERS; w++) group.set(rawRecord, w * RAW_RECORD_BYTES);
  const m = await rawFileLoop(
    ms,
    "raw-group",
    openAppend,
    (file) => async () => {
      await writeAll(file, group);
      await file.syncData();
    },
  );
  return { ops: m.ops * WRITERS, ms: m.ms };
}

/**
 * kv's WAL pattern since segments are preallocated: rawMixed's appends,
 * into zero-filled space grown WAL_PREALLOCATE_BYTES ahead (ftruncate), so
 * that an fdatasync need not commit a new file size. Diagnostic: the
 * targets stay against rawMixed, the plain append.
 */
function rawPrealloc(ms: number): Promise<Measurement> {
  const open = (path: string) => Deno.open(path, { create: true, write: true });
  return rawFileLoop(ms, "raw-prealloc", open, (file) => {
    let end = 0;
    let size = 0;
    return async () => {
      end += RAW_RECORD_BYTES;
      if (end > size) {
        size = end + WAL_PREALLOCATE_BYTES;
        file.truncateSync(size);
      }
      writeAllSync(file, rawRecord);
      await file.syncData();
    };
  });
}

function rawSync(ms: number): Promise<Measurement> {
  // deno-lint-ignore require-await
  return rawFileLoop(ms, "raw-sync", openAppendSync, (file) => async () => {
    writeAllSync(file, rawRecord);
    file.syncDataSync();
  });
}

function kvDurableOne(ms: number): Promise<Measurement> {
  return withStore("always", async (store) => {
    const op = (i: number) => store.put(keyOf(i), durableValue);
    await timedLoop(WARMUP_MS, op);
    const before = store.stats().wal;
    const latenciesMs: number[] = [];
    const m = await timedLoop(ms, op, latenciesMs);
    const after = store.stats().wal;
    const recordsPerSync = (after.records - before.records) /
      (after.syncs - before.syncs);
    return { ...m, latenciesMs, recordsPerSync };
  });
}

function kvDurableMany(ms: number): Promise<Measurement> {
  return withStore("always", async (store) => {
    const op = (i: number) => store.put(keyOf(i), durableValue);
    await concurrentLoops(WARMUP_MS, op);
    const before = store.stats().wal;
    const m = await concurrentLoops(ms, op);
    const after = store.stats().wal;
    const recordsPerSync = (after.records - before.records) /
      (after.syncs - before.syncs);
    return { ...m, recordsPerSync };
  });
}

function kvNone(ms: number): Promise<Measurement> {
  return withStore("none", async (store) => {
    const op = (i: number) => store.put(keyOf(i), memoryValue);
    await fastLoop(WARMUP_MS, op);
    return await fastLoop(ms, op);
  });
}

/**
 * Memtable big enough for the whole key space (about 12 MB here), and for
 * the log a run writes (the memtable is also frozen once its WAL segment is
 * twice its size: a run of 2.5 s at 700k puts/s writes about 230 MB): the
 * write path alone, with no flush or merge during the run.
 */
const IN_MEMORY_MEMTABLE_BYTES = 1024 * 1024 * 1024;

function kvNoneInMemory(ms: number): Promise<Measurement> {
  return withStore("none", async (store) => {
    const op = (i: number) => store.put(keyOf(i), memoryValue);
    await fastLoop(WARMUP_MS, op);
    const m = await fastLoop(ms, op);
    if (store.stats().flushes > 0) throw new Error("The in-memory run flushed");
    return m;
  }, IN_MEMORY_MEMTABLE_BYTES);
}

function denoKvSetOne(ms: number): Promise<Measurement> {
  return withDenoKv(async (kv) => {
    const op = (i: number) => kv.set(["k", keyOf(i)], durableValue);
    await timedLoop(WARMUP_MS, op);
    return await timedLoop(ms, op);
  });
}

function denoKvSetMany(ms: number): Promise<Measurement> {
  return withDenoKv(async (kv) => {
    const op = (i: number) => kv.set(["k", keyOf(i)], durableValue);
    await concurrentLoops(WARMUP_MS, op);
    return await concurrentLoops(ms, op);
  });
}

function mapSet(ms: number): Promise<Measurement> {
  const map = new Map<string, Uint8Array>();
  const op = (i: number) => map.set(keyOf(i), memoryValue);
  return fastLoop(WARMUP_MS, op).then(() => fastLoop(ms, op));
}

// The read workloads share one preloaded store, Deno KV and Map.
const readStoreDir = freshPath("kv-read");
const readStore = await openStore(readStoreDir, { sync: "none" });
const readDenoKvDir = freshPath("denokv-read");
await Deno.mkdir(readDenoKvDir);
const readDenoKv = await Deno.openKv(`${readDenoKvDir}/db.sqlite`);
const readMap = new Map<string, Uint8Array>();
// The same keys held in a memtable: gets served from memory alone.
const memStoreDir = freshPath("kv-read-memtable");
const memStore = await openStore(memStoreDir, {
  sync: "none",
  memtableBytes: IN_MEMORY_MEMTABLE_BYTES,
});

async function preload(): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < KEY_SPACE; i += PRELOAD_BATCH_OPS) {
    const chunk = keys.slice(i, i + PRELOAD_BATCH_OPS);
    await readStore.batch(
      chunk.map((key) => ({ type: "put", key, value: memoryValue })),
    );
    await memStore.batch(
      chunk.map((key) => ({ type: "put", key, value: memoryValue })),
    );
    const atomic = readDenoKv.atomic();
    for (const key of chunk) {
      atomic.set(["k", key], memoryValue);
      readMap.set(key, memoryValue);
    }
    if (!(await atomic.commit()).ok) throw new Error("Cannot preload Deno KV");
  }
  await readStore.sync();
  if ((await readStore.count()) !== KEY_SPACE) {
    throw new Error("The kv preload is missing keys");
  }
  return performance.now() - start;
}

function readKey(i: number): string {
  return readOrder[i % KEY_SPACE]!;
}

function kvGet(ms: number): Promise<Measurement> {
  return reads(ms, "kv get", (i) => readStore.get(readKey(i)));
}

/** Keys in the hot set: a random 10% of the key space, small enough to stay in cache. */
const HOT_KEYS = KEY_SPACE / 10;

/** kv get in random order over a hot set of HOT_KEYS keys. */
function kvGetHot(ms: number): Promise<Measurement> {
  return reads(ms, "kv get", (i) => readStore.get(readOrder[i % HOT_KEYS]!));
}

/** kv get in ascending key order: what random order costs, by contrast. */
function kvGetAscending(ms: number): Promise<Measurement> {
  return reads(ms, "kv get", (i) => readStore.get(keyOf(i)));
}

async function denoKvGet(ms: number): Promise<Measurement> {
  let misses = 0;
  const op = async (i: number) => {
    if ((await readDenoKv.get(["k", readKey(i)])).value === null) misses++;
  };
  await timedLoop(WARMUP_MS, op);
  const m = await timedLoop(ms, op);
  if (misses > 0) throw new Error(`Deno KV get missed ${misses} keys`);
  return m;
}

function mapGet(ms: number): Promise<Measurement> {
  return reads(ms, "Map get", (i) => readMap.get(readKey(i)));
}

/**
 * Map.get plus a copy of the value from the same shared pool kv copies
 * into: the floor of any get that hands back its own bytes, as kv's does.
 */
function mapGetCopy(ms: number): Promise<Measurement> {
  return reads(ms, "Map get", (i) => copyBytes(readMap.get(readKey(i))!));
}

const workloads: Workload[] = [
  {
    id: "rawAsync",
    label: "raw write+syncData, async API, append 120 B",
    run: rawAsync,
  },
  {
    id: "rawMixed",
    label: "raw writeSync+syncData (kv's pattern), append 120 B",
    run: rawMixed,
  },
  {
    id: "rawPrealloc",
    label: "raw writeSync+syncData into preallocated space, 120 B",
    run: rawPrealloc,
  },
  {
    id: "rawSync",
    label: "raw writeSync+syncDataSync, append 120 B",
    run: rawSync,
  },
  {
    id: "kvOne",
    label: "kv put, sync always, 1 writer",
    run: kvDurableOne,
  },
  {
    id: "kvMany",
    label: `kv put, sync always, ${WRITERS} writers`,
    run: kvDurableMany,
  },
  {
    id: "rawGroup",
    label: `raw: ${WRITERS} records per write+syncData, records/s (diagnostic)`,
    run: rawGroup,
  },
  { id: "dkvOne", label: "Deno KV set, 1 writer", run: denoKvSetOne },
  {
    id: "dkvMany",
    label: `Deno KV set, ${WRITERS} writers`,
    run: denoKvSetMany,
  },
  {
    id: "mapSet",
    label: "JS Map.set, awaited (in-memory ceiling)",
    run: mapSet,
  },
  {
    id: "kvNone",
    label: "kv put, sync none, 1 writer awaiting each put",
    run: kvNone,
  },
  {
    id: "kvNoneMem",
    label:
      "kv put, sync none, 1 writer, memtable holding the key space (1 GiB)",
    run: kvNoneInMemory,
  },
  {
    id: "mapGet",
    label: "JS Map.get, awaited, random order (in-memory ceiling)",
    run: mapGet,
  },
  {
    id: "mapGetCopy",
    label:
      "JS Map.get + pooled copy of the value, awaited (floor of a copying get)",
    run: mapGetCopy,
  },
  { id: "kvGet", label: "kv get, 100k keys, random order", run: kvGet },
  {
    id: "kvGetMem",
    label: "kv get, same keys held in the memtable (1 GiB), random order",
    run: (ms) => reads(ms, "kv get", (i) => memStore.get(readKey(i))),
  },
  { id: "dkvGet", label: "Deno KV get, same keys", run: denoKvGet },
  {
    id: "kvGetMany",
    label:
      `kv getMany, ${GET_MANY_KEYS} keys per call, 100k keys, random order`,
    run: (ms) =>
      manyReads(ms, "kv getMany", (i) => readStore.getMany(readKeys(i))),
  },
  {
    id: "kvGetManyMem",
    label: `kv getMany, ${GET_MANY_KEYS} keys per call, keys in the memtable`,
    run: (ms) =>
      manyReads(ms, "kv getMany", (i) => memStore.getMany(readKeys(i))),
  },
  {
    id: "dkvGetMany",
    label: "Deno KV getMany, 10 keys per call (its limit), same keys",
    run: (ms) =>
      manyReads(ms, "Deno KV getMany", async (i) => {
        const ks = readKeys(i);
        const out: unknown[] = [];
        for (let j = 0; j < ks.length; j += 10) {
          const got = await readDenoKv.getMany(
            ks.slice(j, j + 10).map((k) => ["k", k]),
          );
          for (const e of got) out.push(e.value);
        }
        return out;
      }),
  },
  {
    id: "kvGetHot",
    label: "kv get, hot set of 10k of those keys, random order",
    run: kvGetHot,
  },
  {
    id: "kvGetAsc",
    label: "kv get, same keys, ascending order (diagnostic)",
    run: kvGetAscending,
  },
];

interface Row {
  id: string;
  /** Baseline workload id, or undefined for a baseline. */
  vs?: string;
  /** Target as a ratio to `vs`, or as absolute ops/s. */
  target?: { ratio: number } | { opsPerSec: number };
}

const rows: Row[] = [
  { id: "rawMixed" },
  { id: "rawAsync", vs: "rawMixed" },
  { id: "rawSync", vs: "rawMixed" },
  { id: "rawPrealloc", vs: "rawMixed" },
  { id: "kvOne", vs: "rawMixed", target: { ratio: 0.8 } },
  { id: "kvOne", vs: "rawPrealloc" },
  { id: "kvMany", vs: "rawMixed", target: { ratio: 25 } },
  { id: "rawGroup", vs: "rawMixed" },
  { id: "dkvOne", vs: "rawMixed" },
  { id: "dkvMany", vs: "rawMixed" },
  { id: "mapSet" },
  { id: "kvNone", vs: "mapSet", target: { opsPerSec: 300_000 } },
  { id: "kvNoneMem", vs: "mapSet", target: { opsPerSec: 300_000 } },
  { id: "mapGet" },
  { id: "mapGetCopy", vs: "mapGet" },
  { id: "kvGet", vs: "mapGet", target: { opsPerSec: 1_000_000 } },
  { id: "kvGetMem", vs: "mapGet", target: { opsPerSec: 1_000_000 } },
  { id: "dkvGet", vs: "mapGet" },
  { id: "kvGetMany", vs: "mapGet", target: { opsPerSec: 1_000_000 } },
  { id: "kvGetManyMem", vs: "mapGet", target: { opsPerSec: 1_000_000 } },
  { id: "dkvGetMany", vs: "mapGet" },
  { id: "kvGetHot", vs: "mapGet", target: { opsPerSec: 1_000_000 } },
  { id: "kvGetAsc", vs: "mapGet" },
];

/** Short names of the baselines, for the ratio column. */
const BASELINE_NAMES: Record<string, string> = {
  rawMixed: "raw",
  rawPrealloc: "raw preallocated",
  mapSet: "Map.set",
  mapGet: "Map.get",
};

function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

function fmtOps(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

function fmtRatio(x: number): string {
  if (x >= 10) return `${x.toFixed(1)}x`;
  return x >= 0.1 ? `${x.toFixed(2)}x` : `${x.toPrecision(2)}x`;
}

function fmtMs(x: number): string {
  return x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(3)} ms`;
}

function cpuModel(): string {
  try {
    const info = Deno.readTextFileSync("/proc/cpuinfo");
    return /model name\s*:\s*(.*)/.exec(info)?.[1]?.trim() ?? "unknown";
  } catch {
    return "unknown";
  }
}

// --- Run -------------------------------------------------------------------

const only = flags.only === undefined
  ? undefined
  : new Set(flags.only.split(",").map((id) => id.trim()));
for (const id of only ?? []) {
  if (!workloads.some((w) => w.id === id)) {
    throw new RangeError(
      `--only: no workload "${id}"; the ids are ${
        workloads.map((w) => w.id).join(", ")
      }`,
    );
  }
}
const needed = new Set(only);
for (const row of rows) {
  if (only?.has(row.id) && row.vs !== undefined) needed.add(row.vs);
}
const selected = only ? workloads.filter((w) => needed.has(w.id)) : workloads;

const startedAt = new Date();
const loadBefore = Deno.loadavg();
const preloadMs = await preload();
const opsPerSec = new Map<string, number[]>();
const latencies = new Map<string, number[]>();
const groupSizes: number[] = [];
const singleGroupSizes: number[] = [];
try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const w of selected) {
      const m = await w.run(MEASURE_MS);
      const rate = (m.ops * 1000) / m.ms;
      const list = opsPerSec.get(w.id) ?? [];
      list.push(rate);
      opsPerSec.set(w.id, list);
      if (m.latenciesMs) {
        const all = latencies.get(w.id) ?? [];
        for (const l of m.latenciesMs) all.push(l);
        latencies.set(w.id, all);
      }
      if (m.recordsPerSync !== undefined) {
        (w.id === "kvMany" ? groupSizes : singleGroupSizes).push(
          m.recordsPerSync,
        );
      }
      console.error(
        `round ${round}/${ROUNDS}  ${w.label.padEnd(60)} ${
          fmtOps(rate).padStart(11)
        } ops/s`,
      );
    }
  }
} finally {
  await readStore.close();
  await memStore.close();
  readDenoKv.close();
  await Deno.remove(root, { recursive: true });
}
const loadAfter = Deno.loadavg();

const med = new Map<string, number>();
for (const [id, list] of opsPerSec) med.set(id, median(list));

/**
 * Ratios of `a` to `b` round by round. Each round measures the two close in
 * time, so their ratio cancels much of the machine's drift between rounds.
 */
function roundRatios(a: string, b: string): number[] {
  const xs = opsPerSec.get(a)!;
  const ys = opsPerSec.get(b)!;
  return xs.map((x, i) => x / ys[i]!);
}
const labelOf = new Map(workloads.map((w) => [w.id, w.label]));

const out: string[] = [];
out.push(
  `kv benchmark run, ${startedAt.toISOString()}` +
    (flags.quick ? " (--quick)" : ""),
  "",
  `- Deno ${Deno.version.deno}, V8 ${Deno.version.v8}, ${Deno.build.target}`,
  `- CPU: ${cpuModel()}, ${navigator.hardwareConcurrency} cores; ` +
    `Linux ${Deno.osRelease()}`,
  `- Files under ${root.replace(/\/[^/]+$/, "")} ` +
    "(set KV_BENCH_DIR to measure another filesystem)",
  `- ${ROUNDS} round(s) x ${MEASURE_MS / 1000} s per workload ` +
    `(after ${WARMUP_MS} ms warm-up); medians shown; a ratio is the median of per-round ratios`,
  `- Load average before/after: ${loadBefore.map((x) => x.toFixed(2))} / ` +
    `${loadAfter.map((x) => x.toFixed(2))}`,
  `- Preload of ${fmtOps(KEY_SPACE)} keys into kv, Deno KV and a Map: ` +
    `${preloadMs.toFixed(0)} ms`,
  "",
  "| workload | ops/s (median) | range over rounds | ratio (median of rounds, range) | target | met |",
  "| --- | ---: | ---: | --- | --- | --- |",
);
for (const row of rows) {
  if (!opsPerSec.has(row.id)) continue;
  const list = opsPerSec.get(row.id)!;
  const value = med.get(row.id)!;
  const range = list.length > 1
    ? `${fmtOps(Math.min(...list))}–${fmtOps(Math.max(...list))}`
    : "—";
  let ratio = "baseline";
  let target = "—";
  let met = "—";
  if (row.vs !== undefined) {
    const ratios = roundRatios(row.id, row.vs);
    const r = median(ratios);
    ratio = `${fmtRatio(r)} ${BASELINE_NAMES[row.vs]}`;
    if (ratios.length > 1) {
      ratio += ` (${fmtRatio(Math.min(...ratios))}–${
        fmtRatio(Math.max(...ratios))
      })`;
    }
    if (row.target && "ratio" in row.target) {
      target = `≥ ${row.target.ratio}x raw`;
      met = r >= row.target.ratio ? "yes" : "**no**";
    }
  }
  if (row.target && "opsPerSec" in row.target) {
    target = `≥ ${fmtOps(row.target.opsPerSec)} ops/s`;
    met = value >= row.target.opsPerSec ? "yes" : "**no**";
  }
  out.push(
    `| ${labelOf.get(row.id)} | ${
      fmtOps(value)
    } | ${range} | ${ratio} | ${target} | ${met} |`,
  );
}

out.push("", "Durable single-writer latency, all rounds:", "");
out.push("| workload | p50 | p99 | p99.9 | max | samples |");
out.push("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const id of ["rawAsync", "kvOne"]) {
  const sorted = (latencies.get(id) ?? []).slice().sort((a, b) => a - b);
  if (sorted.length === 0) continue;
  out.push(
    `| ${labelOf.get(id)} | ${fmtMs(percentile(sorted, 50))} | ${
      fmtMs(percentile(sorted, 99))
    } | ${fmtMs(percentile(sorted, 99.9))} | ${
      fmtMs(sorted[sorted.length - 1]!)
    } | ${fmtOps(sorted.length)} |`,
  );
}

/** "a ÷ b" as a ratio, or "—" when `--only` left either out. */
const ratioOf = (a: string, b: string) =>
  opsPerSec.has(a) && opsPerSec.has(b)
    ? fmtRatio(median(roundRatios(a, b)))
    : "—";
out.push(
  "",
  `Against the raw async-API rate instead: kv 1 writer ` +
    `${ratioOf("kvOne", "rawAsync")}, ${WRITERS} writers ` +
    `${ratioOf("kvMany", "rawAsync")}; against the raw sync-API rate: ` +
    `${ratioOf("kvOne", "rawSync")} and ${ratioOf("kvMany", "rawSync")}.`,
  `${WRITERS} writers against the disk's ceiling for groups of ${WRITERS} ` +
    `(one write of ${WRITERS} records and one syncData): ` +
    `${ratioOf("kvMany", "rawGroup")}.`,
  `kv ÷ Deno KV: 1 durable writer ${ratioOf("kvOne", "dkvOne")}, ` +
    `${WRITERS} durable writers ${ratioOf("kvMany", "dkvMany")}, ` +
    `get ${ratioOf("kvGet", "dkvGet")}, ` +
    `getMany ${ratioOf("kvGetMany", "dkvGetMany")}.`,
);
if (groupSizes.length > 0) {
  out.push(
    `kv ${WRITERS} writers: ${
      median(groupSizes).toFixed(1)
    } WAL records per fsync (median round); ` +
      `1 writer: ${median(singleGroupSizes).toFixed(2)}.`,
  );
}
console.log(out.join("\n"));
