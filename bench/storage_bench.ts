/**
 * Storage benchmarks for `deno task bench`. Each group has a baseline
 * measured in the same run, so deno bench prints ratios next to it:
 *
 * - "durable single writer": one awaited write at a time, acked only once
 *   fsynced; baseline is a raw 120-byte append + `syncData` on a plain file.
 * - "durable 64 writers": one iteration is 64 concurrent durable writes
 *   (Promise.all); baseline is ONE raw append + `syncData`, so "N x slower"
 *   means 64 writes cost N fsyncs: throughput is 64 / N times the raw rate.
 * - "put sync none": kv with sync "none" (acked once queued) is the
 *   baseline; Deno KV, which has no non-durable mode, and a plain JS Map
 *   (the in-memory ceiling) run alongside.
 * - "get, 100k keys in tables": 100k preloaded keys (the default memtable
 *   has flushed them to level-0 tables) read in a seeded random order; kv
 *   is the baseline, Deno KV and a JS Map run alongside.
 *
 * All setup (opening, preloading, key strings) happens at module load,
 * outside the measured functions. Temp files are removed at unload.
 * Absolute ops/s with targets come from `bench/run.ts`; see
 * docs/benchmarks.md.
 */
import { openStore, type Store } from "../storage/mod.ts";
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

const root = await makeBenchDir();
const files: Deno.FsFile[] = [];
const denoKvs: Deno.Kv[] = [];
const stores: Store[] = [];

globalThis.addEventListener("unload", () => {
  // Unload handlers cannot await, so kv stores are not closed: their data
  // is disposable and the process is exiting.
  for (const file of files) file.close();
  for (const kv of denoKvs) kv.close();
  Deno.removeSync(root, { recursive: true });
});

const keys = makeKeys();
const readOrder = shuffledKeys(keys);
const durableValue = makeValue(DURABLE_VALUE_BYTES);
const memoryValue = makeValue(MEMORY_VALUE_BYTES);
const rawRecord = makeValue(RAW_RECORD_BYTES);

const rawFile = await openAppend(`${root}/raw-async.log`);
files.push(rawFile);
const rawSyncFile = openAppendSync(`${root}/raw-sync.log`);
files.push(rawSyncFile);

async function openKv(name: string, sync: "always" | "none"): Promise<Store> {
  const store = await openStore(`${root}/${name}`, { sync });
  stores.push(store);
  return store;
}

async function openDenoKv(name: string): Promise<Deno.Kv> {
  const kv = await Deno.openKv(`${root}/${name}.sqlite`);
  denoKvs.push(kv);
  return kv;
}

const durableStore = await openKv("kv-durable", "always");
const durableDenoKv = await openDenoKv("denokv-durable");
const noneStore = await openKv("kv-none", "none");
const noneDenoKv = await openDenoKv("denokv-none");
const readStore = await openKv("kv-read", "none");
const readDenoKv = await openDenoKv("denokv-read");
const readMap = new Map<string, Uint8Array>();

// Preload the read workload: 100k keys, 100-byte values.
const PRELOAD_BATCH_OPS = 500;
for (let i = 0; i < KEY_SPACE; i += PRELOAD_BATCH_OPS) {
  const chunk = keys.slice(i, i + PRELOAD_BATCH_OPS);
  await readStore.batch(
    chunk.map((key) => ({ type: "put", key, value: memoryValue })),
  );
  const atomic = readDenoKv.atomic();
  for (const key of chunk) {
    atomic.set(["k", key], memoryValue);
    readMap.set(key, memoryValue);
  }
  const result = await atomic.commit();
  if (!result.ok) throw new Error("Cannot preload Deno KV");
}
await readStore.sync();
if ((await readStore.count()) !== KEY_SPACE) {
  throw new Error("The kv preload is missing keys");
}

/** A cursor over `list` that wraps around. */
function cycle(list: readonly string[]): () => string {
  let i = 0;
  return () => {
    const key = list[i]!;
    if (++i === list.length) i = 0;
    return key;
  };
}

function writeGroup(
  store: Store,
  next: () => string,
  value: Uint8Array,
): Promise<void[]> {
  const puts: Promise<void>[] = new Array(WRITERS);
  for (let w = 0; w < WRITERS; w++) puts[w] = store.put(next(), value);
  return Promise.all(puts);
}

function setGroup(
  kv: Deno.Kv,
  next: () => string,
  value: Uint8Array,
): Promise<Deno.KvCommitResult[]> {
  const sets: Promise<Deno.KvCommitResult>[] = new Array(WRITERS);
  for (let w = 0; w < WRITERS; w++) sets[w] = kv.set(["k", next()], value);
  return Promise.all(sets);
}

// Group: durable single writer.
{
  const group = "durable single writer";
  const nextKv = cycle(keys);
  const nextDenoKv = cycle(keys);
  Deno.bench({
    name: "raw write+syncData (120 B, append)",
    group,
    baseline: true,
    async fn() {
      await writeAll(rawFile, rawRecord);
      await rawFile.syncData();
    },
  });
  Deno.bench({
    name: "raw writeSync+syncDataSync (120 B, append)",
    group,
    fn() {
      writeAllSync(rawSyncFile, rawRecord);
      rawSyncFile.syncDataSync();
    },
  });
  Deno.bench({
    name: "kv put, sync always (120 B record)",
    group,
    async fn() {
      await durableStore.put(nextKv(), durableValue);
    },
  });
  Deno.bench({
    name: "Deno KV set",
    group,
    async fn() {
      await durableDenoKv.set(["k", nextDenoKv()], durableValue);
    },
  });
}

// Group: durable 64 writers. One iteration = 64 writes, except the baseline.
{
  const group = "durable 64 writers";
  const nextKv = cycle(keys);
  const nextDenoKv = cycle(keys);
  Deno.bench({
    name: "raw write+syncData x1 (the unit)",
    group,
    baseline: true,
    async fn() {
      await writeAll(rawFile, rawRecord);
      await rawFile.syncData();
    },
  });
  Deno.bench({
    name: "kv 64 concurrent puts, sync always",
    group,
    async fn() {
      await writeGroup(durableStore, nextKv, durableValue);
    },
  });
  Deno.bench({
    name: "Deno KV 64 concurrent sets",
    group,
    async fn() {
      await setGroup(durableDenoKv, nextDenoKv, durableValue);
    },
  });
}

// Group: put sync none, 100-byte values over 100k keys.
{
  const group = "put sync none";
  const nextKv = cycle(keys);
  const nextDenoKv = cycle(keys);
  const nextMap = cycle(keys);
  const map = new Map<string, Uint8Array>();
  Deno.bench({
    name: "kv put, sync none (100 B value)",
    group,
    baseline: true,
    async fn() {
      await noneStore.put(nextKv(), memoryValue);
    },
  });
  Deno.bench({
    name: "Deno KV set (always durable)",
    group,
    async fn() {
      await noneDenoKv.set(["k", nextDenoKv()], memoryValue);
    },
  });
  Deno.bench({
    name: "JS Map.set (in-memory ceiling)",
    group,
    fn() {
      map.set(nextMap(), memoryValue);
    },
  });
}

// Group: gets of 100k preloaded keys in random order (flushed to tables).
{
  const group = "get, 100k keys in tables";
  const nextKv = cycle(readOrder);
  const nextDenoKv = cycle(readOrder);
  const nextMap = cycle(readOrder);
  Deno.bench({
    name: "kv get (100k keys, random order)",
    group,
    baseline: true,
    async fn() {
      if ((await readStore.get(nextKv())) === undefined) {
        throw new Error("kv get missed a preloaded key");
      }
    },
  });
  Deno.bench({
    name: "Deno KV get",
    group,
    async fn() {
      if ((await readDenoKv.get(["k", nextDenoKv()])).value === null) {
        throw new Error("Deno KV get missed a preloaded key");
      }
    },
  });
  Deno.bench({
    name: "JS Map.get (in-memory ceiling)",
    group,
    fn() {
      if (readMap.get(nextMap()) === undefined) {
        throw new Error("Map get missed a preloaded key");
      }
    },
  });
}
