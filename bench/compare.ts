/**
 * db_bench workloads (the runner `kv bench` uses) against kv, Deno KV,
 * SQLite (node:sqlite, WAL mode) and LevelDB (classic-level) in the same
 * process, over several rounds, printed with kv's ratio to each.
 *
 *   deno run -A --unstable-kv bench/compare.ts [--num N] [--reads N]
 *     [--sync always|none] [--batch N] [--stores kv,denokv,sqlite,leveldb]
 *     [--warmup F] [--rounds N] [--cache-size SIZE]
 *
 * Each round runs every store's whole sequence of workloads in a fresh
 * directory, the stores in a rotated order (round r starts with store r),
 * so that a slow phase of the machine does not always fall on the same
 * store. The report gives each store's median ops/s over the rounds and,
 * for each other store, the median of kv's per-round ratios with their
 * range: a ratio taken within one round compares stores measured minutes
 * apart, not hours.
 *
 * Before the first round, each store runs the same workloads on a fraction
 * `--warmup` (default 0.1; 0 = none) of the keys and reads, in a scratch
 * directory, results discarded: the JIT-compiled code of kv and of the
 * JavaScript halves of the other stores' bindings is then warm when timing
 * starts, as SQLite's and LevelDB's native code always is.
 *
 * Caches are matched: kv's block cache, SQLite's page cache and LevelDB's
 * block cache are each `--cache-size` (default 64M, kv's default). Deno KV
 * has no such setting (it keeps SQLite's default).
 *
 * Durability is matched: with --sync always every write call (a batch of
 * --batch puts) is durable before it returns in every store (Deno KV
 * always is); with --sync none no store fsyncs per write (Deno KV cannot
 * turn fsync off, and is marked durable). Under --sync none kv also holds up
 * to 1 MiB of acknowledged records in memory before handing them to the OS
 * in one write, where SQLite (synchronous=OFF) and LevelDB (sync: false)
 * hand each commit to the OS: a process crash loses kv's buffered records,
 * not theirs (an OS crash can lose any of them).
 *
 * A get through SQLite is a synchronous call, but through LevelDB and Deno
 * KV it is an asynchronous native call (classic-level's N-API binding, Deno
 * KV's op) with a fixed cost of its own, so their read rates say as much
 * about the binding as about the engine; kv answers in-process.
 */
import { parseArgs } from "node:util";
import { DatabaseSync } from "node:sqlite";
import { ClassicLevel } from "classic-level";
import {
  BENCH_HEADER,
  type BenchConfig,
  type BenchEngine,
  BENCHMARKS,
  type BenchResult,
  benchRow,
  type EngineOpener,
  runBench,
} from "../cli/bench.ts";
import { kvOpener } from "../cli/bench_kv.ts";
import { parseSize } from "../cli/main.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    num: { type: "string", default: "200000" },
    reads: { type: "string", default: "100000" },
    sync: { type: "string", default: "none" },
    batch: { type: "string", default: "1000" },
    stores: { type: "string", default: "kv,denokv,sqlite,leveldb" },
    benchmarks: { type: "string", default: BENCHMARKS.join(",") },
    warmup: { type: "string", default: "0.1" },
    rounds: { type: "string", default: "3" },
    "cache-size": { type: "string", default: "64M" },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) {
  throw new RangeError(
    `--rounds must be a whole number >= 1, not "${values.rounds}"`,
  );
}
const cacheBytes = parseSize(values["cache-size"]!);
if (cacheBytes === undefined) {
  throw new RangeError(
    `--cache-size needs a size, like 67108864, 512K or 64M, not "${
      values["cache-size"]
    }"`,
  );
}
const warmup = Number(values.warmup);
if (!(warmup >= 0 && warmup <= 1)) {
  throw new RangeError(
    `--warmup must be a fraction from 0 to 1, not "${values.warmup}"`,
  );
}
const sync = values.sync === "always";
const config: BenchConfig = {
  num: Number(values.num),
  reads: Number(values.reads),
  valueSize: 100,
  batch: Number(values.batch),
  seed: 301,
  benchmarks: values.benchmarks!.split(","),
};

function denoKvOpener(dir: string): EngineOpener {
  return async (fresh) => {
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    const kv = await Deno.openKv(`${dir}/kv.sqlite`);
    const scan = async (start: string, limit: number) => {
      let n = 0;
      const selector = start === ""
        ? { prefix: ["k"] }
        : { prefix: ["k"], start: ["k", start] };
      for await (
        const _ of kv.list(selector, {
          limit,
          batchSize: Math.min(limit, 500),
        })
      ) n++;
      return n;
    };
    return {
      name: "Deno KV",
      put: async (key, value) => {
        await kv.set(["k", key], value);
      },
      batch: async (entries) => {
        const op = kv.atomic();
        for (const [key, value] of entries) op.set(["k", key], value);
        if (!(await op.commit()).ok) throw new Error("Deno KV commit failed");
      },
      get: async (key) => {
        const r = await kv.get<Uint8Array>(["k", key]);
        return r.value ?? undefined;
      },
      scan,
      // Deno KV has no call that reads many entries at once: its list
      // fetches them in batches (batchSize) behind the iterator.
      scanBatch: scan,
      close: () => Promise.resolve(kv.close()),
    };
  };
}

function sqliteOpener(dir: string): EngineOpener {
  return async (fresh) => {
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    const db = new DatabaseSync(`${dir}/db.sqlite`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${sync ? "FULL" : "OFF"}`);
    // A negative cache_size is in KiB.
    db.exec(`PRAGMA cache_size = -${Math.floor(cacheBytes! / 1024)}`);
    db.exec(
      "CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID",
    );
    const put = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    const get = db.prepare("SELECT v FROM kv WHERE k = ?");
    const scan = db.prepare(
      "SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?",
    );
    const engine: BenchEngine = {
      name: "SQLite",
      put: (key, value) => {
        put.run(key, value);
        return Promise.resolve();
      },
      batch: (entries) => {
        db.exec("BEGIN");
        for (const [key, value] of entries) put.run(key, value);
        db.exec("COMMIT");
        return Promise.resolve();
      },
      get: (key) => {
        const row = get.get(key) as { v: Uint8Array } | undefined;
        return Promise.resolve(row?.v);
      },
      scan: (start, limit) => {
        let n = 0;
        for (
          const _ of scan.iterate(
            start,
            Math.min(limit, Number.MAX_SAFE_INTEGER),
          )
        ) n++;
        return Promise.resolve(n);
      },
      scanBatch: (start, limit) =>
        Promise.resolve(
          scan.all(start, Math.min(limit, Number.MAX_SAFE_INTEGER)).length,
        ),
      close: () => {
        db.close();
        return Promise.resolve();
      },
    };
    return engine;
  };
}

function levelOpener(dir: string): EngineOpener {
  return async (fresh) => {
    if (fresh) await Deno.remove(dir, { recursive: true }).catch(() => {});
    const db = new ClassicLevel<string, Uint8Array>(dir, {
      keyEncoding: "utf8",
      valueEncoding: "view",
      cacheSize: cacheBytes,
    });
    await db.open();
    return {
      name: "LevelDB",
      put: (key, value) => db.put(key, value, { sync }),
      batch: (entries) =>
        db.batch(
          entries.map(([key, value]) => ({ type: "put" as const, key, value })),
          { sync },
        ),
      get: async (key) => {
        try {
          return await db.get(key);
        } catch (error) {
          if ((error as { code?: string }).code === "LEVEL_NOT_FOUND") {
            return undefined;
          }
          throw error;
        }
      },
      scan: async (start, limit) => {
        let n = 0;
        for await (
          const _ of db.iterator({ gte: start, limit: Math.min(limit, 1e15) })
        ) n++;
        return n;
      },
      scanBatch: async (start, limit) =>
        (await db.iterator({ gte: start, limit: Math.min(limit, 1e15) }).all())
          .length,
      close: () => db.close(),
    };
  };
}

const base = await Deno.makeTempDir({ prefix: "kv-compare-" });
const openers: Record<string, (dir: string) => EngineOpener> = {
  kv: (dir) =>
    kvOpener(dir, {
      sync: sync ? "always" : "none",
      blockCacheBytes: cacheBytes,
    }),
  denokv: denoKvOpener,
  sqlite: sqliteOpener,
  leveldb: levelOpener,
};
const names: Record<string, string> = {
  kv: "kv",
  denokv: sync ? "Deno KV" : "Deno KV (durable)",
  sqlite: "SQLite",
  leveldb: "LevelDB",
};
const stores = values.stores!.split(",");
for (const store of stores) {
  if (!openers[store]) throw new RangeError(`Unknown store "${store}"`);
}
console.log(
  `db_bench workloads, ${config.num} keys, 100-byte values, batch ${config.batch}, ` +
    `${config.reads} reads, sync ${sync ? "always" : "none"}, ` +
    `cache ${values["cache-size"]} (kv, SQLite, LevelDB), warm-up ${warmup}, ` +
    `${rounds} round(s), ${new Date().toISOString()}`,
);
if (!sync) {
  console.log(
    "(Deno KV cannot disable fsync: its writes stay durable in this run)",
  );
}
console.log("");
/** Per store, each round's results, in workload order. */
const results = new Map<string, BenchResult[][]>(stores.map((s) => [s, []]));
try {
  if (warmup > 0) {
    for (const store of stores) {
      await runBench(openers[store]!(`${base}/${store}-warmup`), {
        ...config,
        num: Math.max(1, Math.ceil(config.num * warmup)),
        reads: Math.max(10, Math.ceil(config.reads * warmup)),
      });
      await Deno.remove(`${base}/${store}-warmup`, { recursive: true });
    }
  }
  for (let round = 0; round < rounds; round++) {
    console.log(`Round ${round + 1} of ${rounds}:\n`);
    for (const line of BENCH_HEADER) console.log(line);
    for (let i = 0; i < stores.length; i++) {
      const store = stores[(round + i) % stores.length]!;
      const dir = `${base}/${store}-${round}`;
      results.get(store)!.push(
        await runBench(
          openers[store]!(dir),
          config,
          (r) => console.log(benchRow(names[store]!, r)),
        ),
      );
      await Deno.remove(dir, { recursive: true });
    }
    console.log("");
  }
} finally {
  await Deno.remove(base, { recursive: true }).catch(() => {});
}

function median(xs: readonly number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const fmtOps = (n: number) => Math.round(n).toLocaleString("en-US");
const fmtRatio = (x: number) => `${x.toFixed(2)}x`;
// Results pair by position: the same workload list ran for every store.
const timed = config.benchmarks
  .map((name, at) => ({ name, at }))
  .filter(({ name }) => name !== "settle");
console.log(
  `Median ops/s over ${rounds} round(s):\n\n| benchmark | ` +
    stores.map((s) => names[s]).join(" | ") + " |",
);
console.log("| --- |" + " ---: |".repeat(stores.length));
for (const { name, at } of timed) {
  const cells = stores.map((s) =>
    fmtOps(median(results.get(s)!.map((round) => round[at]!.opsPerSec)))
  );
  console.log(`| ${name} | ${cells.join(" | ")} |`);
}
const kv = results.get("kv");
const others = stores.filter((s) => s !== "kv");
if (kv && others.length > 0) {
  console.log(
    "\nkv's ratio to each store, the median of per-round ratios (range):\n\n" +
      "| benchmark | " + others.map((s) => `kv ÷ ${names[s]}`).join(" | ") +
      " |",
  );
  console.log("| --- |" + " ---: |".repeat(others.length));
  for (const { name, at } of timed) {
    const cells = others.map((s) => {
      const ratios = kv.map((round, r) =>
        round[at]!.opsPerSec / results.get(s)![r]![at]!.opsPerSec
      );
      const lo = Math.min(...ratios);
      const hi = Math.max(...ratios);
      return rounds === 1
        ? fmtRatio(ratios[0]!)
        : `${fmtRatio(median(ratios))} (${fmtRatio(lo)}–${fmtRatio(hi)})`;
    });
    console.log(`| ${name} | ${cells.join(" | ")} |`);
  }
}
