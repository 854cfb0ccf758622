/**
 * db_bench workloads (the runner `kv bench` uses) against kv, Deno KV,
 * SQLite (node:sqlite, WAL mode) and LevelDB (classic-level), one store
 * after another in the same process, printed with kv's ratio to each.
 *
 *   deno run -A --unstable-kv bench/compare.ts [--num N] [--reads N]
 *     [--sync always|none] [--batch N] [--stores kv,denokv,sqlite,leveldb]
 *     [--warmup F]
 *
 * Before its timed run, each store runs the same workloads on a fraction
 * `--warmup` (default 0.1; 0 = none) of the keys and reads, in a scratch
 * directory, results discarded: the JIT-compiled code of kv and of the
 * JavaScript halves of the other stores' bindings is then warm when timing
 * starts, as SQLite's and LevelDB's native code always is.
 *
 * Durability is matched: with --sync always every write call (a batch of
 * --batch puts) is durable before it returns in every store (Deno KV
 * always is); with --sync none no store fsyncs per write (Deno KV cannot
 * turn fsync off, and is marked so).
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
  },
});
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
      scan: async (start, limit) => {
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
      },
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
      close: () => db.close(),
    };
  };
}

const base = await Deno.makeTempDir({ prefix: "kv-compare-" });
const openers: Record<string, (dir: string) => EngineOpener> = {
  kv: (dir) => kvOpener(dir, { sync: sync ? "always" : "none" }),
  denokv: denoKvOpener,
  sqlite: sqliteOpener,
  leveldb: levelOpener,
};
const names: Record<string, string> = {
  kv: "kv",
  denokv: "Deno KV",
  sqlite: "SQLite",
  leveldb: "LevelDB",
};
console.log(
  `db_bench workloads, ${config.num} keys, 100-byte values, batch ${config.batch}, ` +
    `${config.reads} reads, sync ${
      sync ? "always" : "none"
    }, warm-up ${warmup}, ${new Date().toISOString()}`,
);
if (!sync) {
  console.log(
    "(Deno KV cannot disable fsync: its writes stay durable in this run)",
  );
}
console.log("");
for (const line of BENCH_HEADER) console.log(line);
const results = new Map<string, BenchResult[]>();
try {
  for (const store of values.stores!.split(",")) {
    const opener = openers[store];
    if (!opener) throw new RangeError(`Unknown store "${store}"`);
    if (warmup > 0) {
      await runBench(opener(`${base}/${store}-warmup`), {
        ...config,
        num: Math.max(1, Math.ceil(config.num * warmup)),
        reads: Math.max(10, Math.ceil(config.reads * warmup)),
      });
      await Deno.remove(`${base}/${store}-warmup`, { recursive: true });
    }
    results.set(
      store,
      await runBench(
        opener(`${base}/${store}`),
        config,
        (r) => console.log(benchRow(names[store]!, r)),
      ),
    );
  }
} finally {
  await Deno.remove(base, { recursive: true }).catch(() => {});
}
const kv = results.get("kv");
if (kv) {
  console.log(
    "\n| benchmark | " + [...results.keys()].filter((s) =>
      s !== "kv"
    ).map((s) => `kv ÷ ${names[s]}`).join(" | ") + " |",
  );
  console.log("| --- |" + " ---: |".repeat(results.size - 1));
  for (const r of kv) {
    const ratios = [...results.entries()].filter(([s]) =>
      s !== "kv"
    ).map(
      ([, rs]) => {
        const other = rs.find((o) => o.name === r.name);
        return other ? `${(r.opsPerSec / other.opsPerSec).toFixed(2)}x` : "—";
      },
    );
    console.log(`| ${r.name} | ${ratios.join(" | ")} |`);
  }
}
