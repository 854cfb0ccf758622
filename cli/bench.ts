/**
 * `kv bench`: LevelDB db_bench's workloads against kv (and, through the
 * same runner, against other stores in bench/compare.ts). Each workload
 * reports ops/s and per-operation latency percentiles.
 *
 * Workloads (as in db_bench): fillseq and fillrandom write `num` keys into
 * a fresh store (in batches of `batch`); overwrite rewrites random keys of
 * the existing store; readrandom reads random keys of the key space (all
 * present after fillseq; fillrandom and overwrite leave some unwritten, and
 * such reads are counted, the same for every store); readmissing reads
 * absent keys; readseq scans the whole store;
 * seekrandom seeks to a random key and reads the next 100 entries, one at a
 * time (kv's `for await`); seekrandom-batch does the same with each store's
 * call that reads them all at once (kv's `scan().all()`, LevelDB's
 * `iterator().all()`, SQLite's `all()`; Deno KV has none and lists them as
 * for seekrandom).
 *
 * Every put writes a different value: a window of `valueSize` bytes moving
 * through a megabyte of seeded random bytes (db_bench's values come from a
 * pool the same way). Random bytes do not compress, so a store that
 * compresses its blocks (LevelDB) writes about as much as one that does not.
 */
import { Prng } from "../util/mod.ts";

/** What a store must offer to be benchmarked. Keys are ASCII strings. */
export interface BenchEngine {
  readonly name: string;
  put(key: string, value: Uint8Array): Promise<void>;
  /** Writes all entries atomically (one durable commit when syncing). */
  batch(entries: Array<[string, Uint8Array]>): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /** Reads up to `limit` entries from the first key >= start; the count. */
  scan(start: string, limit: number): Promise<number>;
  /** The same, with the store's call that reads many entries at once. */
  scanBatch(start: string, limit: number): Promise<number>;
  /**
   * Waits for background work (kv's flushes and merges) to finish; absent
   * for stores with none to wait for.
   */
  settle?(): Promise<void>;
  close(): Promise<void>;
}

/** Opens an engine; `fresh` means an empty store. */
export type EngineOpener = (fresh: boolean) => Promise<BenchEngine>;

/** Parameters of a run. */
export interface BenchConfig {
  /** Keys written by a fill. */
  num: number;
  /** Reads (gets or seeks) per read workload. */
  reads: number;
  valueSize: number;
  /** Puts per write call; 1 means single awaited puts. */
  batch: number;
  seed: number;
  benchmarks: string[];
}

/** One workload's result. */
export interface BenchResult {
  name: string;
  ops: number;
  ms: number;
  opsPerSec: number;
  /** Latency of one call (a batch for batched fills), in microseconds. */
  p50Us: number;
  p99Us: number;
  /** Reads that found nothing where something was expected, or vice versa. */
  wrong: number;
}

/** The workloads, in db_bench's default order. */
export const BENCHMARKS = [
  "fillseq",
  "fillrandom",
  "overwrite",
  "readrandom",
  "readmissing",
  "readseq",
  "seekrandom",
  "seekrandom-batch",
] as const;

/**
 * Every benchmark name: the default ones, and `settle`, which waits for
 * kv's background flushes and merges (so that the reads after it measure a
 * settled tree rather than a fill's backlog; a no-op for the other stores).
 */
export const BENCHMARK_NAMES = [...BENCHMARKS, "settle"] as const;

/** Entries a seekrandom op reads after its seek. */
export const SEEK_NEXT = 100;

/** Key `i` as db_bench formats it: 16 digits. */
export function benchKey(i: number): string {
  return String(i).padStart(16, "0");
}

/** Bytes of random data the values are taken from. */
export const VALUE_POOL_BYTES = 1024 * 1024;

/** The values puts write: a window moving through seeded random bytes. */
export class ValueSource {
  #pool: Uint8Array;
  #at = 0;
  #span: number;

  constructor(rng: Prng, readonly size: number) {
    this.#pool = rng.bytes(VALUE_POOL_BYTES + size);
    this.#span = VALUE_POOL_BYTES;
  }

  /** The next value: `size` bytes at the window's next position. */
  next(): Uint8Array {
    const at = this.#at;
    // A step past the value: consecutive values share no bytes.
    this.#at = (at + this.size + 7) % this.#span;
    return this.#pool.subarray(at, at + this.size);
  }
}

/** The nearest-rank percentile `p` (0 < p <= 1) of sorted samples. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(sorted.length * p);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

class Timer {
  #lat: Float64Array;
  #n = 0;
  #start = performance.now();

  constructor(calls: number) {
    this.#lat = new Float64Array(calls);
  }

  record(startedMs: number): void {
    if (this.#n < this.#lat.length) {
      this.#lat[this.#n++] = (performance.now() - startedMs) * 1000;
    }
  }

  result(name: string, ops: number, wrong: number): BenchResult {
    const ms = performance.now() - this.#start;
    const lat = this.#lat.subarray(0, this.#n).sort();
    return {
      name,
      ops,
      ms,
      opsPerSec: ops / (ms / 1000),
      p50Us: percentile(lat, 0.5),
      p99Us: percentile(lat, 0.99),
      wrong,
    };
  }
}

async function fill(
  engine: BenchEngine,
  name: string,
  config: BenchConfig,
  order: (i: number) => number,
  values: ValueSource,
): Promise<BenchResult> {
  const { num, batch } = config;
  const timer = new Timer(Math.ceil(num / batch));
  for (let i = 0; i < num; i += batch) {
    const t = performance.now();
    if (batch === 1) {
      await engine.put(benchKey(order(i)), values.next());
    } else {
      const entries: Array<[string, Uint8Array]> = [];
      for (let j = i; j < Math.min(num, i + batch); j++) {
        entries.push([benchKey(order(j)), values.next()]);
      }
      await engine.batch(entries);
    }
    timer.record(t);
  }
  return timer.result(name, num, 0);
}

/**
 * Runs the configured workloads in order against engines from `open`,
 * reporting each result through `report` as it completes.
 */
export async function runBench(
  open: EngineOpener,
  config: BenchConfig,
  report: (r: BenchResult) => void = () => {},
): Promise<BenchResult[]> {
  const rng = new Prng(config.seed);
  const values = new ValueSource(rng, config.valueSize);
  const results: BenchResult[] = [];
  let engine: BenchEngine | undefined;
  let loaded = false;
  const ensure = async (fresh: boolean) => {
    if (fresh || !engine) {
      await engine?.close();
      engine = await open(fresh);
    }
    return engine;
  };
  for (const name of config.benchmarks) {
    let r: BenchResult;
    switch (name) {
      case "fillseq":
        r = await fill(await ensure(true), name, config, (i) => i, values);
        loaded = true;
        break;
      case "fillrandom":
        r = await fill(
          await ensure(true),
          name,
          config,
          () => rng.int(config.num),
          values,
        );
        loaded = true;
        break;
      case "overwrite":
        if (!loaded) throw new RangeError("overwrite needs a fill before it");
        r = await fill(
          await ensure(false),
          name,
          config,
          () => rng.int(config.num),
          values,
        );
        break;
      case "readrandom":
      case "readmissing": {
        if (!loaded) throw new RangeError(`${name} needs a fill before it`);
        const e = await ensure(false);
        const missing = name === "readmissing";
        const timer = new Timer(config.reads);
        let wrong = 0;
        for (let i = 0; i < config.reads; i++) {
          const key = benchKey(rng.int(config.num)) + (missing ? "." : "");
          const t = performance.now();
          const v = await e.get(key);
          timer.record(t);
          // fillrandom may leave some keys unwritten: count, don't fail.
          if ((v === undefined) !== missing) wrong++;
        }
        r = timer.result(name, config.reads, wrong);
        break;
      }
      case "readseq": {
        if (!loaded) throw new RangeError("readseq needs a fill before it");
        const e = await ensure(false);
        const timer = new Timer(1);
        const t = performance.now();
        const n = await e.scan("", Number.MAX_SAFE_INTEGER);
        timer.record(t);
        r = timer.result(name, n, 0);
        break;
      }
      case "settle": {
        if (!loaded) throw new RangeError("settle needs a fill before it");
        const e = await ensure(false);
        const timer = new Timer(1);
        const t = performance.now();
        await e.settle?.();
        timer.record(t);
        r = timer.result(name, 1, 0);
        break;
      }
      case "seekrandom":
      case "seekrandom-batch": {
        if (!loaded) throw new RangeError(`${name} needs a fill before it`);
        const e = await ensure(false);
        const seeks = Math.max(1, Math.floor(config.reads / 10));
        const timer = new Timer(seeks);
        const batch = name === "seekrandom-batch";
        for (let i = 0; i < seeks; i++) {
          const t = performance.now();
          const start = benchKey(rng.int(config.num));
          await (batch
            ? e.scanBatch(start, SEEK_NEXT)
            : e.scan(start, SEEK_NEXT));
          timer.record(t);
        }
        r = timer.result(name, seeks, 0);
        break;
      }
      default:
        throw new RangeError(
          `Unknown benchmark "${name}"; use ${BENCHMARK_NAMES.join(", ")}`,
        );
    }
    results.push(r);
    report(r);
  }
  await engine?.close();
  return results;
}

/** A result as a markdown table row. */
export function benchRow(engine: string, r: BenchResult): string {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  // A wait is no throughput: its duration is the p50.
  const rate = r.name === "settle" ? "—" : fmt(r.opsPerSec);
  return `| ${r.name} | ${engine} | ${rate} | ${r.p50Us.toFixed(1)} | ${
    r.p99Us.toFixed(1)
  } | ${fmt(r.ops)} |`;
}

/** Header of the table benchRow() rows go under. */
export const BENCH_HEADER = [
  "| benchmark | store | ops/s | p50 µs | p99 µs | ops |",
  "| --- | --- | ---: | ---: | ---: | ---: |",
];

/** Most rounds `kv bench --rounds` runs. */
export const BENCH_ROUNDS_MAX = 100;

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * One workload's results over rounds as one row: the medians of its ops/s,
 * p50 and p99, then the range of its ops/s. REQUIRES: rounds.length >= 1,
 * all of the same workload.
 */
export function medianRow(engine: string, rounds: BenchResult[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const rates = rounds.map((r) => r.opsPerSec);
  const settle = rounds[0]!.name === "settle";
  const rate = settle ? "—" : fmt(median(rates));
  const range = settle
    ? "—"
    : `${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}`;
  return `| ${rounds[0]!.name} | ${engine} | ${rate} | ${
    median(rounds.map((r) => r.p50Us)).toFixed(1)
  } | ${median(rounds.map((r) => r.p99Us)).toFixed(1)} | ${
    fmt(rounds[0]!.ops)
  } | ${range} |`;
}

/** Header of the table medianRow() rows go under. */
export const MEDIAN_HEADER = [
  "| benchmark | store | ops/s (median) | p50 µs | p99 µs | ops | ops/s range |",
  "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
];
