/**
 * The `kv bench` command: db_bench workloads against kv in a temporary
 * directory, printed as a markdown table.
 */
import { openStore, type StoreOptions } from "../storage/mod.ts";
import {
  BENCH_HEADER,
  type BenchConfig,
  type BenchResult,
  benchRow,
  type EngineOpener,
  MEDIAN_HEADER,
  medianRow,
  runBench,
} from "./bench.ts";

/** An opener for kv stores in `dir` (emptied for a fresh store). */
export function kvOpener(dir: string, options: StoreOptions): EngineOpener {
  return async (fresh) => {
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
    const store = await openStore(dir, options);
    return {
      name: "kv",
      put: (key, value) => store.put(key, value),
      batch: (entries) =>
        store.batch(
          entries.map(([key, value]) => ({ type: "put", key, value })),
        ),
      get: (key) => store.get(key),
      scan: async (start, limit) => {
        let n = 0;
        for await (const _ of store.scan({ start, limit })) n++;
        return n;
      },
      scanBatch: async (start, limit) =>
        (await store.scan({ start, limit }).all()).length,
      settle: () => store.settle(),
      close: () => store.close(),
    };
  };
}

/**
 * Runs `kv bench`; returns the exit code. With `rounds` above 1 the
 * workloads run that many times over, each round from a fresh store (the
 * same keys and values: the seed is the same), and a last table gives each
 * workload's medians over the rounds and its range of ops/s: one run on a
 * shared machine can be a third off the next.
 */
export async function runKvBench(
  config: BenchConfig,
  options: StoreOptions,
  parent: string | undefined,
  out: (line: string) => void,
  rounds = 1,
): Promise<number> {
  let base: string;
  try {
    base = await Deno.makeTempDir(
      parent === undefined
        ? { prefix: "kv-bench-" }
        : { dir: parent, prefix: "kv-bench-" },
    );
  } catch (error) {
    throw new Error(
      `cannot make a directory for the benchmark in ${
        parent === undefined ? "the system temp dir" : `--bench-dir "${parent}"`
      }: ${(error as Error).message}`,
    );
  }
  try {
    out(
      `kv bench: ${config.num} keys, ${config.valueSize}-byte values, batch ${config.batch}, ` +
        `${config.reads} reads, sync ${options.sync ?? "always"}, in ${base}`,
    );
    const all: BenchResult[][] = [];
    for (let round = 1; round <= rounds; round++) {
      if (rounds > 1) out(`Round ${round} of ${rounds}:`);
      for (const line of BENCH_HEADER) out(line);
      all.push(
        await runBench(
          kvOpener(`${base}/kv`, options),
          config,
          (r) => out(benchRow("kv", r)),
        ),
      );
    }
    if (rounds > 1) {
      out(`Medians of ${rounds} rounds:`);
      for (const line of MEDIAN_HEADER) out(line);
      for (let i = 0; i < config.benchmarks.length; i++) {
        out(medianRow("kv", all.map((results) => results[i]!)));
      }
    }
    // The same reads in every round (the same seed): one round's count.
    const wrong = all[0]!.reduce((n, r) => n + r.wrong, 0);
    if (wrong > 0) {
      out(
        `(${wrong} reads found a different presence than expected: fillrandom leaves some keys unwritten)`,
      );
    }
    return 0;
  } finally {
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
}
