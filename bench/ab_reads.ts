/**
 * A/B of random reads between two checkouts of kv, in one process.
 *
 *   deno run -A --v8-flags=--max-semi-space-size=4,--heap-growing-percent=60 \
 *     bench/ab_reads.ts --base ../kv-base [--op get|seek|seekall] [--keys 1000000]
 *     [--reads 200000] [--scan 100] [--rounds 7] [--cache-size 64M]
 *     [--fill seq|random] [--seed 12345] [--shared] [--slices 1]
 *
 * `--base` is another checkout (say `git worktree add ../kv-base HEAD~1`):
 * side A runs its code, side B this one. Each side writes its own store of
 * `keys` keys (16-digit keys in order, 100-byte values, in batches of 1000,
 * then settled) with its own code, in a temporary directory, and reopens it
 * with the given block cache. With `--fill random` the writes are `keys`
 * random keys of the same range instead, as `kv bench`'s fillrandom writes
 * them (about 63% of the keys, some written twice or more): the tree then
 * has more levels, and the reopened memtable holds the last segment's
 * writes, so that a scan merges more sources; reads then go to random keys
 * present or not, and only a seq fill checks what they find. Rounds of the same random reads then
 * alternate between the sides (A then B, B then A, ...): `reads` gets of
 * present keys (`--op get`), or `reads / 10` scans of `scan` entries from
 * a random key on, as `kv bench`'s seekrandom does (`--op seek`; read with
 * `all()`, as its seekrandom-batch does, with `--op seekall`). The
 * report gives each round's ops/s and the B/A ratio of every round after
 * the first (the first fills the caches), with their median.
 *
 * With `--shared` one store is written, with the base's code, and copied
 * for this checkout: both sides read the same tree (for changes to the read
 * path that keep the format), where two stores written separately by a
 * random fill differ in shape (which side's store had more level-0 tables
 * or memtable entries favoured it by up to 1.7x in scans of 1). With
 * `--slices N` each round's reads are cut into N slices, and the sides take
 * turns slice by slice (A then B, then B then A): drift within a round
 * cancels too, and the report adds the quartiles of the slices' B/A ratios.
 *
 * Why one process: on these shared machines the speed of a whole process
 * drifts by a third from one run to the next (both sides of a pair of
 * separate runs were seen at 120k and at 175k gets/s), which buries a gain
 * of a few percent; rounds interleaved in one process share the drift.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as mod from "../storage/mod.ts";
import { parseSize } from "../cli/main.ts";

type Open = typeof mod.openStore;
type Store = Awaited<ReturnType<Open>>;

const { values: flags } = parseArgs({
  options: {
    base: { type: "string" },
    op: { type: "string", default: "get" },
    scan: { type: "string", default: "100" },
    keys: { type: "string", default: "1000000" },
    reads: { type: "string", default: "200000" },
    rounds: { type: "string", default: "7" },
    "cache-size": { type: "string", default: "64M" },
    seed: { type: "string", default: "12345" },
    fill: { type: "string", default: "seq" },
    shared: { type: "boolean", default: false },
    slices: { type: "string", default: "1" },
  },
});
if (flags.base === undefined) {
  throw new Error("--base DIR (another checkout of kv) is required");
}
const keys = Number(flags.keys);
const reads = Number(flags.reads);
const rounds = Number(flags.rounds);
const scan = Number(flags.scan);
const slices = Number(flags.slices);
if (flags.op !== "get" && flags.op !== "seek" && flags.op !== "seekall") {
  throw new Error(`--op must be get, seek or seekall, not ${flags.op}`);
}
const op = flags.op;
if (flags.fill !== "seq" && flags.fill !== "random") {
  throw new Error(`--fill must be seq or random, not ${flags.fill}`);
}
const randomFill = flags.fill === "random";
const cacheBytes = parseSize(flags["cache-size"]!);
if (cacheBytes === undefined) {
  throw new Error(`--cache-size: not a size: ${flags["cache-size"]}`);
}
if (![keys, reads, rounds].every((n) => Number.isInteger(n) && n > 1)) {
  throw new Error("--keys, --reads and --rounds must be integers above 1");
}
if (!Number.isInteger(scan) || scan < 1) {
  throw new Error("--scan must be an integer above 0");
}
if (!Number.isInteger(slices) || slices < 1) {
  throw new Error("--slices must be an integer above 0");
}

const theirs = await import(
  pathToFileURL(resolve(flags.base, "storage/mod.ts")).href
) as typeof mod;
// This checkout's code is imported the same way as the base's: imported
// statically, identical code on both sides gave B/A 1.08x. Given this
// checkout as the base, both sides share one module: a control run.
const ours = await import(
  new URL("../storage/mod.ts", import.meta.url).href
) as typeof mod;

const key = (i: number) => String(i).padStart(16, "0");

/** Writes the store with `open`'s code, settled, and closes it. */
async function build(open: Open, dir: string): Promise<void> {
  const store = await open(dir, { sync: "none" });
  const value = new Uint8Array(100);
  // Both sides write the same random keys.
  let x = (Number(flags.seed) ^ 0x5bd1e995) >>> 0;
  for (let i = 0; i < keys; i += 1000) {
    const ops = [];
    for (let j = i; j < Math.min(keys, i + 1000); j++) {
      value[0] = j & 0xff;
      value[1] = (j >>> 8) & 0xff;
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const k = randomFill ? key((x >>> 8) % keys) : key(j);
      ops.push({ type: "put" as const, key: k, value: value.slice() });
    }
    await store.batch(ops);
  }
  await store.settle();
  await store.close();
}

/** Copies the files of store directory `from` into a new `to`. */
async function copyStore(from: string, to: string): Promise<void> {
  await Deno.mkdir(to);
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** Milliseconds of one pass over `order` (every key present). */
async function pass(store: Store, order: string[]): Promise<number> {
  const t = performance.now();
  if (op === "get") {
    for (const k of order) {
      const found = (await store.get(k)) !== undefined;
      if (!found && !randomFill) throw new Error(`${k} missing`);
    }
  } else {
    for (const start of order) {
      let n = 0;
      if (op === "seekall") {
        n = (await store.scan({ start, limit: scan }).all()).length;
      } else {
        for await (const _ of store.scan({ start, limit: scan })) n++;
      }
      // Keys are dense from 0: a scan is short only near the end.
      if (!randomFill && n < Math.min(scan, keys - Number(start))) {
        throw new Error(`a scan from ${start} read ${n} entries`);
      }
    }
  }
  return performance.now() - t;
}

const tmp = await Deno.makeTempDir({ prefix: "kv-ab-" });
try {
  if (flags.shared) {
    console.error(`building ${keys} keys with the base's code in ${tmp}`);
    await build(theirs.openStore, `${tmp}/a`);
    await copyStore(`${tmp}/a`, `${tmp}/b`);
  } else {
    console.error(`building ${keys} keys with each side's code in ${tmp}`);
    await build(theirs.openStore, `${tmp}/a`);
    await build(ours.openStore, `${tmp}/b`);
  }
  const a = await theirs.openStore(`${tmp}/a`, {
    sync: "none",
    blockCacheBytes: cacheBytes,
  });
  const b = await ours.openStore(`${tmp}/b`, {
    sync: "none",
    blockCacheBytes: cacheBytes,
  });
  let x = Number(flags.seed) >>> 0;
  const order = Array.from({
    length: op === "get" ? reads : Math.max(1, Math.floor(reads / 10)),
  }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return key((x >>> 8) % keys);
  });
  const ra: number[] = [];
  const rb: number[] = [];
  /** B/A of each slice after the first round. */
  const sliceRatios: number[] = [];
  const step = Math.ceil(order.length / slices);
  for (let r = 0; r < rounds; r++) {
    let msA = 0;
    let msB = 0;
    for (let j = 0, at = 0; at < order.length; j++, at += step) {
      const slice = order.slice(at, at + step);
      let sa: number;
      let sb: number;
      if ((r + j) % 2 === 0) {
        sa = await pass(a, slice);
        sb = await pass(b, slice);
      } else {
        sb = await pass(b, slice);
        sa = await pass(a, slice);
      }
      msA += sa;
      msB += sb;
      if (r > 0) sliceRatios.push(sa / sb);
    }
    ra.push(order.length / (msA / 1000));
    rb.push(order.length / (msB / 1000));
  }
  await a.close();
  await b.close();
  const k = (v: number) => `${(v / 1000).toFixed(0)}k`;
  const ratios = rb.map((v, i) => v / ra[i]!).slice(1).sort((p, q) => p - q);
  const unit = op === "get" ? "gets/s" : `scans of ${scan}/s`;
  console.log(`A (${flags.base}): ${ra.map(k).join(" ")} ${unit}`);
  console.log(`B (this checkout): ${rb.map(k).join(" ")} ${unit}`);
  console.log(
    `B/A after the first round: ${
      ratios.map((v) => v.toFixed(3)).join(" ")
    }; median ${ratios[ratios.length >> 1]!.toFixed(3)}`,
  );
  if (slices > 1) {
    sliceRatios.sort((p, q) => p - q);
    const q = (f: number) =>
      sliceRatios[Math.floor(f * (sliceRatios.length - 1))]!.toFixed(3);
    console.log(
      `B/A of ${sliceRatios.length} slices after the first round: ` +
        `quartiles ${q(0.25)} ${q(0.5)} ${q(0.75)}`,
    );
  }
} finally {
  await Deno.remove(tmp, { recursive: true });
}
