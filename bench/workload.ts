/**
 * The workloads shared by `storage_bench.ts` (deno bench) and `run.ts` (the
 * standalone ops/s table), so that both measure the same keys, values and
 * record sizes. See docs/benchmarks.md.
 */
import { Prng } from "../util/mod.ts";

/** Distinct keys the write workloads cycle over and the read one preloads. */
export const KEY_SPACE = 100_000;

/** Concurrent writers in the "64 writers" workloads. */
export const WRITERS = 64;

/** Bytes of each key: "key-" and 12 digits. */
export const KEY_BYTES = 16;

/**
 * Value bytes of the durable workloads: with a 16-byte key a kv put encodes
 * to a 120-byte WAL record (9 frame + 16 prefix + 8 expiry + 1 + 16 key +
 * 1 + 69 value), the same size as the raw record of the baseline.
 */
export const DURABLE_VALUE_BYTES = 69;

/** Bytes of the raw record the write+fsync baselines append. */
export const RAW_RECORD_BYTES = 120;

/** Value bytes of the in-memory (sync none, get) workloads. */
export const MEMORY_VALUE_BYTES = 100;

/** Seed of every random choice here, so runs measure the same data. */
export const BENCH_SEED = 0x6b76_0001;

/** The key with index `i`, 16 ASCII bytes. */
export function keyAt(i: number): string {
  return "key-" + String(i).padStart(KEY_BYTES - 4, "0");
}

/** Keys 0 .. KEY_SPACE-1 in order. */
export function makeKeys(): string[] {
  return Array.from({ length: KEY_SPACE }, (_, i) => keyAt(i));
}

/** The same keys in a seeded random order (Fisher-Yates). */
export function shuffledKeys(keys: readonly string[]): string[] {
  const out = keys.slice();
  const prng = new Prng(BENCH_SEED);
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** Seeded random bytes to store as a value. */
export function makeValue(bytes: number): Uint8Array {
  return new Prng(BENCH_SEED + bytes).bytes(bytes);
}

/**
 * A fresh temporary directory for one benchmark run, under $KV_BENCH_DIR
 * when set (to measure another filesystem), else the system temp dir.
 */
export function makeBenchDir(): Promise<string> {
  const parent = Deno.env.get("KV_BENCH_DIR");
  return Deno.makeTempDir(
    parent ? { dir: parent, prefix: "kv-bench-" } : { prefix: "kv-bench-" },
  );
}

/** Appends `bytes` whole with the async API; throws on a short write. */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const n = await file.write(bytes.subarray(done));
    if (n <= 0) throw new Error("Cannot append the raw record: wrote 0 bytes");
    done += n;
  }
}

/** Appends `bytes` whole with the sync API; throws on a short write. */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) {
    const n = file.writeSync(bytes.subarray(done));
    if (n <= 0) throw new Error("Cannot append the raw record: wrote 0 bytes");
    done += n;
  }
}

/** Opens `path` for appending, as the WAL does (no preallocation). */
export function openAppend(path: string): Promise<Deno.FsFile> {
  return Deno.open(path, { create: true, append: true });
}

/** Opens `path` for appending with the sync API. */
export function openAppendSync(path: string): Deno.FsFile {
  return Deno.openSync(path, { create: true, append: true });
}
