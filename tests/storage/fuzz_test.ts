/**
 * Parser fuzzing: thousands of mutated WAL segments, tables and manifests
 * (bit flips, bytes set to 0xff, splices, truncations, 32-bit fields set to
 * their maximum). Readers must return records or a CorruptionError, never
 * hang, never allocate from an unchecked length, never throw anything else.
 * Inputs that once failed are kept in tests/testdata/fuzz/ and replayed.
 */
import assert from "node:assert/strict";
import { CorruptionError } from "../../storage/mod.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import {
  decodePayload,
  encodedRecordBytes,
  encodeRecord,
  SegmentReader,
  type WalOp,
} from "../../storage/wal.ts";
import {
  BlockCache,
  tableName,
  TableReader,
  TableWriter,
} from "../../storage/sstable/mod.ts";
import { encodeEdit, frameEdit, readManifest } from "../../storage/manifest.ts";
import { BatchOpKind } from "../../storage/format.ts";
import { Prng } from "../../util/mod.ts";
import { testSeed } from "../helpers.ts";

const TESTDATA = new URL("../testdata/fuzz/", import.meta.url).pathname;
const ITERATIONS = Number(Deno.env.get("KV_FUZZ_ITERATIONS") ?? 1500);

function mutate(rng: Prng, input: Uint8Array): Uint8Array {
  let b = input.slice();
  for (let m = 1 + rng.int(3); m > 0; m--) {
    if (b.length === 0) break;
    switch (rng.int(5)) {
      case 0:
        b[rng.int(b.length)]! ^= 1 << rng.int(8);
        break;
      case 1:
        b[rng.int(b.length)] = 0xff;
        break;
      case 2: {
        const from = rng.int(b.length);
        const to = rng.int(b.length);
        const n = Math.min(1 + rng.int(64), b.length - Math.max(from, to));
        b.copyWithin(to, from, from + n);
        break;
      }
      case 3:
        b = b.slice(0, rng.int(b.length));
        break;
      default: {
        const at = rng.int(Math.max(1, b.length - 3));
        for (let i = 0; i < 4 && at + i < b.length; i++) b[at + i] = 0xff;
      }
    }
  }
  return b;
}

async function writeFile(
  env: MemEnv,
  path: string,
  bytes: Uint8Array,
): Promise<void> {
  await env.remove(path).catch(() => {});
  const f = await env.openWritable(path);
  f.append(bytes);
  await f.syncData();
}

/** Reads a WAL segment to its end; throws only on a reader bug. */
async function readWal(env: MemEnv, bytes: Uint8Array): Promise<void> {
  await writeFile(env, "/f/seg.log", bytes);
  const file = await env.openReadable("/f/seg.log");
  const reader = new SegmentReader(file);
  for (let i = 0; i <= bytes.length; i++) {
    const r = await reader.next();
    if (r.kind === "end") return;
    if (r.kind === "damaged") {
      await reader.validRecordAfter(r.offset + 1);
      return;
    }
    decodePayload(r.type, r.payload); // a record or a reason string
  }
  assert.fail("the WAL reader did not finish");
}

/** Opens and reads a table fully; only CorruptionError may escape. */
async function readTable(
  env: MemEnv,
  bytes: Uint8Array,
  keys: string[],
): Promise<void> {
  await writeFile(env, `/f/${tableName(9)}`, bytes);
  try {
    const t = await TableReader.open(env, "/f", 9, new BlockCache(1 << 20), {
      negatives: 0,
      falsePositives: 0,
    });
    for (let b = 0; b < t.blocks; b++) t.block(b);
    for (const k of keys) t.get(k);
    for (const _ of t.scanBlocks()) { /* every block verified */ }
  } catch (error) {
    if (!(error instanceof CorruptionError)) throw error;
  }
}

async function readMani(env: MemEnv, bytes: Uint8Array): Promise<void> {
  await writeFile(env, "/f/MANIFEST-000001", bytes);
  try {
    await readManifest(env, "/f", "MANIFEST-000001");
  } catch (error) {
    if (!(error instanceof CorruptionError)) throw error;
  }
}

async function corpus(): Promise<
  { wal: Uint8Array; table: Uint8Array; manifest: Uint8Array; keys: string[] }
> {
  const rng = new Prng(99);
  const env = new MemEnv();
  await env.mkdirAll("/f");
  // WAL: puts, deletes and batches.
  const records: Uint8Array[] = [];
  let seq = 1;
  for (let i = 0; i < 12; i++) {
    const ops: WalOp[] = Array.from(
      { length: i % 4 === 3 ? 3 : 1 },
      (_, j) =>
        rng.chance(0.2)
          ? {
            kind: BatchOpKind.DELETE,
            key: `k${i}-${j}`,
            value: undefined,
            expiry: 0,
          }
          : {
            kind: BatchOpKind.PUT,
            key: `k${i}-${j}`,
            value: rng.bytes(rng.int(40)),
            expiry: 0,
          },
    );
    const buf = new Uint8Array(encodedRecordBytes(ops));
    encodeRecord(buf, 0, seq, 1000 + i, ops);
    seq += ops.length;
    records.push(buf);
  }
  const wal = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of records) {
    wal.set(r, at);
    at += r.length;
  }
  // A table of a few small blocks.
  const keys = Array.from(
    { length: 60 },
    (_, i) => `key${String(i).padStart(3, "0")}`,
  );
  const w = await TableWriter.create(env, "/f", 9, {
    blockBytes: 128,
    bloomBitsPerKey: 10,
  });
  keys.forEach((k, i) =>
    w.add(
      k,
      i + 1,
      i % 7 ? `value ${i}` : undefined,
      i % 5 ? 0 : 1_900_000_000_000,
    )
  );
  await w.finish();
  const tf = await env.openReadable(`/f/${tableName(9)}`);
  const table = new Uint8Array(tf.size);
  await tf.read(0, table);
  // A manifest: snapshot plus a few edits.
  const frames = [
    frameEdit(
      encodeEdit({
        nextFile: 10,
        lastSeq: 5,
        logNumber: 3,
        added: [],
        removed: [],
      }),
    ),
  ];
  frames.push(frameEdit(encodeEdit({
    added: [{
      level: 0,
      meta: {
        fileNumber: 9,
        size: table.length,
        entries: 60,
        tombstones: 9,
        minSeq: 1,
        maxSeq: 60,
        smallest: "key000",
        largest: "key059",
      },
    }],
    removed: [],
    lastSeq: 60,
  })));
  frames.push(
    frameEdit(
      encodeEdit({
        added: [],
        removed: [{ level: 0, fileNumber: 9 }],
        nextFile: 11,
      }),
    ),
  );
  const manifest = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  at = 0;
  for (const f of frames) {
    manifest.set(f, at);
    at += f.length;
  }
  return { wal, table, manifest, keys };
}

async function kept(): Promise<Array<{ name: string; bytes: Uint8Array }>> {
  const out: Array<{ name: string; bytes: Uint8Array }> = [];
  try {
    for await (const e of Deno.readDir(TESTDATA)) {
      if (e.isFile && e.name.endsWith(".bin")) {
        out.push({
          name: e.name,
          bytes: await Deno.readFile(TESTDATA + e.name),
        });
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort((a, b) => a.name < b.name ? -1 : 1);
}

Deno.test("mutated WAL segments, tables and manifests give records or a CorruptionError, nothing else", async () => {
  const seed = testSeed("parser fuzz");
  const rng = new Prng(seed);
  const { wal, table, manifest, keys } = await corpus();
  const env = new MemEnv();
  await env.mkdirAll("/f");
  // The originals read cleanly.
  await readWal(env, wal);
  await readTable(env, table, keys);
  await readMani(env, manifest);
  const readers = {
    wal: (b: Uint8Array) => readWal(env, b),
    table: (b: Uint8Array) => readTable(env, b, keys),
    manifest: (b: Uint8Array) => readMani(env, b),
  };
  // Inputs that once failed, replayed first.
  for (const { name, bytes } of await kept()) {
    const kind = name.split("-")[0] as keyof typeof readers;
    assert.ok(kind in readers, `unknown kept input ${name}`);
    await readers[kind](bytes);
  }
  let runs = 0;
  for (let i = 0; i < ITERATIONS; i++) {
    for (
      const [kind, original] of [["wal", wal], ["table", table], [
        "manifest",
        manifest,
      ]] as const
    ) {
      const input = mutate(rng, original);
      try {
        await readers[kind](input);
      } catch (error) {
        await Deno.mkdir(TESTDATA, { recursive: true });
        const name = `${kind}-${seed}-${i}.bin`;
        await Deno.writeFile(TESTDATA + name, input);
        throw new Error(
          `seed ${seed} iteration ${i}: ${kind} reader threw ${
            (error as Error).name
          }: ${
            (error as Error).message
          } (input kept as tests/testdata/fuzz/${name})`,
        );
      }
      runs++;
    }
  }
  console.log(`${runs} mutated inputs read without a reader bug`);
});
