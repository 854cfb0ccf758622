/**
 * Loads more data than memory holds, then reopens it: peak RSS during the
 * load (bounded by memtables and caches, not by data size) and the time
 * from openStore() to the first successful get.
 *
 *   deno run -A --v8-flags=--max-semi-space-size=4,--heap-growing-percent=60 \
 *     bench/load.ts [--keys 10000000] [--value-size 100] [--dir DIR] [--keep]
 *
 * (the V8 flags of the `repl`, `kv` and `compile` tasks).
 *
 * Keys are 16 digits, each written once, in a scrambled order (an affine
 * permutation of 0..keys-1, so that the order costs no memory), in batches
 * of 1000 with `--sync none` (one fsync at close). 10 million 100-byte
 * values make about 1.2 GB of tables.
 */
import { parseArgs } from "node:util";
import { openStore } from "../storage/mod.ts";
import { Prng } from "../util/mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    keys: { type: "string", default: "10000000" },
    "value-size": { type: "string", default: "100" },
    dir: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const keys = Number(values.keys);
const valueSize = Number(values["value-size"]);
const dir = values.dir ?? await Deno.makeTempDir({ prefix: "kv-load-" });
const BATCH = 1000;

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
}, 200);

function mib(n: number): string {
  return `${(n / 1024 / 1024).toFixed(0)} MiB`;
}

async function diskBytes(path: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(path)) {
    if (e.isFile) n += (await Deno.stat(`${path}/${e.name}`)).size;
  }
  return n;
}

const rng = new Prng(301);
const value = rng.bytes(valueSize);
const key = (i: number) => String(i).padStart(16, "0");
/** Multiplier of the permutation: coprime with any count of keys made of 2s and 5s, and small enough for exact arithmetic. */
const SCRAMBLE = 387_420_489;
if (keys % 3 === 0) throw new RangeError("--keys must not be a multiple of 3");
const nth = (i: number) => (SCRAMBLE * i + 12_345) % keys;
const store = await openStore(dir, { sync: "none" });
const started = performance.now();
let lastReport = started;
for (let i = 0; i < keys; i += BATCH) {
  const ops = [];
  for (let j = i; j < Math.min(keys, i + BATCH); j++) {
    ops.push({ type: "put" as const, key: key(nth(j)), value });
  }
  await store.batch(ops);
  const now = performance.now();
  if (now - lastReport > 10_000) {
    lastReport = now;
    const s = store.stats();
    console.log(
      `${i + BATCH} keys, ${((now - started) / 1000).toFixed(0)} s, RSS peak ${
        mib(peakRss)
      } (now ${mib(Deno.memoryUsage().rss)}, heap ${
        mib(Deno.memoryUsage().heapTotal)
      } used ${mib(Deno.memoryUsage().heapUsed)}, external ${
        mib(Deno.memoryUsage().external)
      }), ` +
        `tables per level ${
          s.levels.map((l) => l.tables).join("/")
        }, ${s.merges} merges, ${s.moves} moves, ${s.writeStalls} stalls`,
    );
  }
}
const loadedMs = performance.now() - started;
await store.settle();
const settledMs = performance.now() - started;
await store.close();
const loadPeak = peakRss;
const bytes = await diskBytes(dir);
console.log(
  `load: ${keys} keys of ${valueSize} B in ${(loadedMs / 1000).toFixed(1)} s ` +
    `(${Math.round(keys / (loadedMs / 1000))} puts/s; merges settled at ${
      (settledMs / 1000).toFixed(1)
    } s), ` +
    `${mib(bytes)} on disk, peak RSS ${mib(loadPeak)}`,
);

peakRss = 0;
const t0 = performance.now();
const reopened = await openStore(dir, { sync: "none" });
const v = await reopened.get(key(rng.int(keys)));
const t1 = performance.now();
const r = reopened.recovery;
console.log(
  `reopen: first get after ${(t1 - t0).toFixed(0)} ms (${
    v === undefined ? "miss" : "hit"
  }); ` +
    `${r.tables} tables, ${r.records} WAL records replayed; RSS ${
      mib(Deno.memoryUsage().rss)
    }`,
);
await reopened.close();
clearInterval(sampler);
if (!values.keep && values.dir === undefined) {
  await Deno.remove(dir, { recursive: true });
}
