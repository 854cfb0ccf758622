/**
 * SSTables: every entry reads back through point lookups and block walks
 * under several block sizes and with the filter on and off; missing keys
 * are absent; the filter's false-positive rate is near its design; a flipped
 * bit anywhere gives a CorruptionError naming the file, never wrong data.
 */
import assert from "node:assert/strict";
import {
  BlockCache,
  type TableMeta,
  tableName,
  TableReader,
  TableWriter,
} from "../../../storage/sstable/mod.ts";
import {
  BlockBuilder,
  ByteCursor,
  type ByteEntry,
  searchDataBlock,
} from "../../../storage/sstable/block.ts";
import {
  bloomHash1,
  bloomHash2,
  bloomMayContain,
  buildBloom,
  buildSpreadBloom,
  putBloomHashesOfBytes,
} from "../../../storage/sstable/bloom.ts";
import {
  BLOCK_TRAILER_BYTES,
  BLOOM_BLOCKED_MARKER,
  BLOOM_LINE_BYTES,
} from "../../../storage/format.ts";
import { CorruptionError } from "../../../storage/mod.ts";
import { MergeCursor, TableScan } from "../../../storage/merge.ts";
import { denoEnv } from "../../../storage/env_deno.ts";
import type { Env } from "../../../storage/env.ts";
import {
  bytesToBinary,
  crc32c,
  getFixed32,
  getFixed64,
  lowerBound,
  maskCrc,
  Prng,
  putFixed32,
} from "../../../util/mod.ts";
import {
  TABLE_FOOTER_BYTES,
  TABLE_FORMAT_VERSION_CRC32C,
} from "../../../storage/format.ts";
import { names, tempDir, testSeed } from "../../helpers.ts";

interface Row {
  key: string;
  seq: number;
  value: string | undefined;
  expiry: number;
}

function rows(rng: Prng, n: number): Row[] {
  const keys = new Set<string>();
  while (keys.size < n) {
    keys.add(String.fromCharCode(...rng.bytes(1 + rng.int(24))));
  }
  return [...keys].sort().map((key, i) => ({
    key,
    seq: 1 + i * 3,
    value: rng.chance(0.1)
      ? undefined
      : String.fromCharCode(...rng.bytes(rng.int(200))),
    expiry: rng.chance(0.1) ? 1_800_000_000_000 + i : 0,
  }));
}

async function write(
  dir: string,
  n: number,
  data: Row[],
  blockBytes: number,
  bloomBitsPerKey: number,
): Promise<TableMeta> {
  const w = await TableWriter.create(denoEnv, dir, n, {
    blockBytes,
    bloomBitsPerKey,
  });
  for (const r of data) w.add(r.key, r.seq, r.value, r.expiry);
  return await w.finish();
}

const stats = () => ({ negatives: 0, falsePositives: 0 });

/** Opens table `n` in `dir` with a block cache of its own (1 MiB). */
function openTable(
  dir: string,
  n: number,
  env: Env = denoEnv,
): Promise<TableReader> {
  return TableReader.open(env, dir, n, new BlockCache(1 << 20), stats());
}

/** A byte cursor entered into block contents. */
function cursorOn(contents: Uint8Array, file = "f", offset = 0): ByteCursor {
  const c = new ByteCursor();
  c.enter(contents, file, offset);
  return c;
}

/**
 * Checks block cursors against the rows: walking every block gives every
 * row, and a seek lands on the first row at or after its target, for every
 * key, just past every key, and random targets.
 */
function checkCursors(
  cursor: (block: number) => ByteCursor,
  t: TableReader,
  data: Row[],
  rng: Prng,
): void {
  const walked: Row[] = [];
  for (let b = 0; b < t.blocks; b++) {
    const c = cursor(b);
    while (c.next()) walked.push(rowOf(c));
  }
  assert.deepEqual(walked, data);
  const keys = data.map((r) => r.key);
  const targets = [
    ...keys,
    ...keys.map((k) => k + "\0"),
    "",
    ...Array.from(
      { length: 300 },
      () => String.fromCharCode(...rng.bytes(1 + rng.int(24))),
    ),
  ];
  for (const target of targets) {
    let want = 0;
    while (want < keys.length && keys[want]! < target) want++;
    let got: Row | undefined;
    for (let b = t.blockFor(target); b < t.blocks && !got; b++) {
      const c = cursor(b);
      if (c.seek(target)) got = rowOf(c);
    }
    assert.deepEqual(got, data[want], `seek ${JSON.stringify(target)}`);
  }
}

/** The current entry of a byte cursor as a row. */
function rowOf(c: ByteEntry): Row {
  return {
    key: bytesToBinary(c.key, 0, c.keyLength),
    seq: c.seq,
    value: valueOf(c) && bytesToBinary(valueOf(c)!),
    expiry: c.expiry,
  };
}

/** A view of the current value of a byte cursor; undefined: tombstone. */
function valueOf(c: ByteEntry): Uint8Array | undefined {
  return c.valueLength < 0
    ? undefined
    : c.block.subarray(c.valueAt, c.valueAt + c.valueLength);
}

/** A looked-up entry with its value as a binary string, for comparing. */
function asRow(
  e: { seq: number; value: Uint8Array | undefined; expiry: number } | undefined,
) {
  return e &&
    { seq: e.seq, value: e.value && bytesToBinary(e.value), expiry: e.expiry };
}

/** Every row of `data` reads back from `t`, by lookup and by a walk of its blocks. */
function checkEveryRow(t: TableReader, data: Row[]): void {
  for (const r of data) {
    assert.deepEqual(asRow(t.get(r.key)), {
      seq: r.seq,
      value: r.value,
      expiry: r.expiry,
    }, JSON.stringify(r.key));
  }
  const walked: string[] = [];
  for (let b = 0; b < t.blocks; b++) walked.push(...t.block(b).keys);
  assert.deepEqual(walked, data.map((r) => r.key));
}

for (
  const [blockBytes, bloom] of [[512, 10], [4096, 10], [4096, 0], [
    64,
    3,
  ]] as const
) {
  Deno.test(`a table round trips every entry (block ${blockBytes} B, bloom ${bloom} bits/key)`, async () => {
    const rng = new Prng(testSeed(`table ${blockBytes}/${bloom}`));
    await using tmp = await tempDir();
    const data = rows(rng, 3000);
    const meta = await write(tmp.path, 7, data, blockBytes, bloom);
    assert.deepEqual(
      await names(tmp.path),
      [tableName(7)],
      "no temporary file is left",
    );
    assert.equal(meta.entries, data.length);
    assert.equal(
      meta.tombstones,
      data.filter((r) => r.value === undefined).length,
    );
    assert.equal(meta.smallest, data[0]!.key);
    assert.equal(meta.largest, data.at(-1)!.key);
    assert.equal(
      meta.size,
      (await Deno.stat(`${tmp.path}/${tableName(7)}`)).size,
    );
    const t = await openTable(tmp.path, 7);
    assert.equal(t.props.entries, data.length);
    assert.equal(t.props.minSeq, 1);
    assert.equal(t.props.maxSeq, data.at(-1)!.seq);
    checkEveryRow(t, data);
    // Cursors parsing the contents read in sequence, and the cached
    // blocks (decoded by now too: every block was looked up many times).
    const contents = [...t.scanContents()];
    checkCursors(
      (b) => cursorOn(contents[b]!.contents, t.path, contents[b]!.offset),
      t,
      data,
      rng,
    );
    checkCursors(
      (b) => {
        const c = t.pin(b);
        t.unpin(c);
        return cursorOn(c.raw, t.path, t.index.offsets[b]!);
      },
      t,
      data,
      rng,
    );
    for (let i = 0; i < 500; i++) {
      const k = String.fromCharCode(...rng.bytes(25 + rng.int(5)));
      assert.equal(t.get(k), undefined);
    }
    t.close();
  });
}

Deno.test("the block search agrees with a search of the index keys", async () => {
  // Keys sharing a long prefix, many agreeing on the four bytes after it
  // (so that the compact search ties), some shorter than those four bytes.
  const seed = testSeed("table block search");
  const rng = new Prng(seed);
  const prefix = "user:00042:";
  const keys = new Set<string>();
  while (keys.size < 4000) {
    const tail = rng.chance(0.5)
      ? "ab" + String.fromCharCode(...rng.bytes(rng.int(3)))
      : String.fromCharCode(...rng.bytes(rng.int(12)));
    keys.add(prefix + tail);
  }
  const data: Row[] = [...keys].sort().map((key, i) => ({
    key,
    seq: i + 1,
    value: "v",
    expiry: 0,
  }));
  await using tmp = await tempDir();
  await write(tmp.path, 3, data, 64, 10);
  const t = await openTable(tmp.path, 3);
  assert.ok(t.blocks > 100, `${t.blocks} blocks`);
  const probes = [
    ...data.map((r) => r.key),
    ...Array.from(
      { length: 3000 },
      () => prefix + String.fromCharCode(...rng.bytes(rng.int(8))),
    ),
    "",
    "user:",
    prefix,
    "zzz",
  ];
  for (const k of probes) {
    assert.equal(
      t.blockFor(k),
      lowerBound(t.index.keys, k),
      `seed ${seed}, key ${JSON.stringify(k)}`,
    );
  }
  for (const r of data) assert.equal(t.get(r.key)?.seq, r.seq);
  t.close();
});

/** Both filter hashes of binary string `key`, as a table writer makes them. */
function putBloomHashes(
  key: string,
  h1s: Uint32Array,
  h2s: Uint32Array,
  i: number,
): void {
  // At an odd offset of a bigger buffer, as a merge hands keys over.
  const bytes = new Uint8Array(key.length + 3);
  for (let j = 0; j < key.length; j++) bytes[3 + j] = key.charCodeAt(j);
  putBloomHashesOfBytes(bytes, 3, key.length, h1s, h2s, i);
}

Deno.test("one pass over a key's bytes gives both bloom hashes of its binary string", () => {
  const rng = new Prng(31);
  const h1s = new Uint32Array(1);
  const h2s = new Uint32Array(1);
  for (let i = 0; i < 2000; i++) {
    const key = String.fromCharCode(...rng.bytes(rng.int(40)));
    putBloomHashes(key, h1s, h2s, 0);
    assert.equal(h1s[0], bloomHash1(key), `key ${i}`);
    assert.equal(h2s[0], bloomHash2(key) >>> 0, `key ${i}`);
  }
});

/** Filter hashes of `keys`, as a table writer keeps them. */
function filterHashes(keys: string[]): [Uint32Array, Uint32Array] {
  const h1s = new Uint32Array(keys.length);
  const h2s = new Uint32Array(keys.length);
  keys.forEach((key, i) => putBloomHashes(key, h1s, h2s, i));
  return [h1s, h2s];
}

/** The share of `absent` keys a filter lets through. */
function falsePositiveRate(filter: Uint8Array, absent: string[]): number {
  let passed = 0;
  for (const key of absent) if (bloomMayContain(filter, key)) passed++;
  return passed / absent.length;
}

Deno.test("both filter layouts keep every key and pass about 1% of absent ones", () => {
  const seed = testSeed("bloom layouts");
  const rng = new Prng(seed);
  for (const n of [1, 7, 100, 5000, 40000]) {
    const keys = Array.from(
      { length: n },
      (_, i) => `k${rng.int(1e9)}-${i}`,
    );
    const absent = Array.from(
      { length: 20000 },
      (_, i) => `a${i}-${rng.int(1e9)}`,
    );
    const [h1s, h2s] = filterHashes(keys);
    for (
      const [name, build] of [["blocked", buildBloom], [
        "spread",
        buildSpreadBloom,
      ]] as const
    ) {
      const filter = build(h1s, h2s, n, 10);
      for (const key of keys) {
        assert.ok(
          bloomMayContain(filter, key),
          `seed ${seed}: ${name} lost ${key}`,
        );
      }
      const rate = falsePositiveRate(filter, absent);
      // Small filters vary more from key set to key set (a few keys get
      // the minimum size: one 64-byte line, or 8 bytes spread).
      const bound = n >= 5000 ? 0.015 : n >= 100 ? 0.03 : 0.05;
      assert.ok(rate < bound, `seed ${seed}: ${name}, ${n} keys: ${rate}`);
      if (n >= 5000) {
        assert.ok(rate > 0.004, `seed ${seed}: ${name} rate ${rate}`);
      }
    }
  }
});

Deno.test("a blocked filter is whole lines, the probe count and the marker", () => {
  const keys = Array.from({ length: 1000 }, (_, i) => `key${i}`);
  const [h1s, h2s] = filterHashes(keys);
  const filter = buildBloom(h1s, h2s, keys.length, 10);
  // ceil(1000 * 10 / 512) = 20 lines.
  assert.equal(filter.length, 20 * BLOOM_LINE_BYTES + 2);
  assert.equal(filter[filter.length - 2], 7);
  assert.equal(filter[filter.length - 1], BLOOM_BLOCKED_MARKER);
  // A reader of the first layout only sees a probe count above 30.
  assert.ok(BLOOM_BLOCKED_MARKER > 30);
  // Each key sets bits in one line only.
  for (let i = 0; i < 50; i++) {
    const one = buildBloom(
      h1s.subarray(i, i + 1),
      h2s.subarray(i, i + 1),
      1,
      10,
    );
    const set: number[] = [];
    one.subarray(0, one.length - 2).forEach((b, at) => {
      if (b !== 0) set.push(Math.floor(at / BLOOM_LINE_BYTES));
    });
    assert.equal(new Set(set).size, 1, `key ${i}: lines ${set}`);
  }
  // Disabled, and layouts a reader does not know, answer "may".
  assert.deepEqual(buildBloom(h1s, h2s, keys.length, 0), Uint8Array.of(0));
  const odd = filter.slice(1);
  const unknownK = filter.slice();
  unknownK[unknownK.length - 2] = 31;
  for (const f of [Uint8Array.of(0), odd, unknownK]) {
    for (let i = 0; i < 100; i++) assert.ok(bloomMayContain(f, `absent${i}`));
  }
});

Deno.test("the bloom filter answers most absent keys without reading a block", async () => {
  await using tmp = await tempDir();
  const data = Array.from(
    { length: 20000 },
    (_, i) => ({
      key: `key${String(i).padStart(8, "0")}`,
      seq: i + 1,
      value: "v",
      expiry: 0,
    }),
  ).sort((a, b) => a.key < b.key ? -1 : 1);
  await write(tmp.path, 1, data, 4096, 10);
  const s = stats();
  const cache = new BlockCache(1 << 20);
  const t = await TableReader.open(denoEnv, tmp.path, 1, cache, s);
  const probes = 19999; // every probe inside the key range
  for (let i = 0; i < probes; i++) {
    assert.equal(t.get(`key${String(i).padStart(8, "0")}x`), undefined);
  }
  const rate = s.falsePositives / probes;
  assert.ok(rate < 0.03, `false-positive rate ${rate}`);
  assert.equal(s.negatives + s.falsePositives, probes);
  assert.ok(cache.stats().misses <= s.falsePositives);
  t.close();
});

Deno.test("a footer whose handles name the wrong blocks (no checksum covers it) is a CorruptionError at open", async () => {
  await using tmp = await tempDir();
  const rng = new Prng(5);
  await write(tmp.path, 3, rows(rng, 200), 512, 10);
  const path = `${tmp.path}/${tableName(3)}`;
  const good = await Deno.readFile(path);
  const footerAt = good.length - TABLE_FOOTER_BYTES;
  // Each splice copies one 12-byte handle over another: the filter handle
  // naming the properties block made gets answer "absent" for keys a scan
  // found.
  for (const [from, to] of [[1, 0], [2, 1], [0, 1], [0, 2]]) {
    const bad = good.slice();
    bad.copyWithin(
      footerAt + to! * 12,
      footerAt + from! * 12,
      footerAt + from! * 12 + 12,
    );
    await Deno.writeFile(path, bad);
    await assert.rejects(
      openTable(tmp.path, 3),
      (error: unknown) => {
        assert.ok(error instanceof CorruptionError, String(error));
        assert.match(error.message, /footer handles do not tile the file/);
        return true;
      },
      `handle ${from} over ${to}`,
    );
  }
  await Deno.writeFile(path, good);
  (await openTable(tmp.path, 3)).close();
});

Deno.test("a flipped bit anywhere in a table is a CorruptionError naming the file", async () => {
  const seed = testSeed("table bit flips");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const data = rows(rng, 400);
  await write(tmp.path, 3, data, 512, 10);
  const path = `${tmp.path}/${tableName(3)}`;
  const good = await Deno.readFile(path);
  for (let trial = 0; trial < 60; trial++) {
    const bad = good.slice();
    const at = rng.int(bad.length);
    bad[at]! ^= 1 << rng.int(8);
    await Deno.writeFile(path, bad);
    try {
      const t = await openTable(tmp.path, 3);
      // Open can pass when the flip is in a data block: reading it must fail,
      // or (a flip in the filter) give only right answers.
      try {
        for (let b = 0; b < t.blocks; b++) t.block(b);
        for (const r of data) {
          const got = asRow(t.get(r.key));
          if (got !== undefined) {
            assert.deepEqual(got, {
              seq: r.seq,
              value: r.value,
              expiry: r.expiry,
            });
          }
        }
      } finally {
        t.close();
      }
    } catch (error) {
      if (!(error instanceof CorruptionError)) throw error;
      assert.equal(error.file, path, `seed ${seed} trial ${trial}`);
      assert.match(error.message, new RegExp(tableName(3)));
    }
  }
  await Deno.writeFile(path, good.subarray(0, 40));
  await assert.rejects(
    openTable(tmp.path, 3),
    CorruptionError,
  );
});

/**
 * Rewrites table `n` as format 1 wrote it: every block's checksum CRC-32C
 * (unless `keepChecksums`), and version 1 in the footer.
 */
async function toFormat1(
  dir: string,
  n: number,
  keepChecksums = false,
): Promise<void> {
  const t = await TableReader.open(
    denoEnv,
    dir,
    n,
    new BlockCache(1 << 20),
    stats(),
  );
  const handles: Array<[number, number]> = t.index.offsets.map((
    offset,
    i,
  ) => [offset, t.index.sizes[i]!]);
  t.close();
  const path = `${dir}/${tableName(n)}`;
  const bytes = await Deno.readFile(path);
  const footer = bytes.length - TABLE_FOOTER_BYTES;
  for (let i = 0; i < 3; i++) {
    handles.push([
      getFixed64(bytes, footer + i * 12),
      getFixed32(bytes, footer + i * 12 + 8),
    ]);
  }
  if (!keepChecksums) {
    for (const [offset, size] of handles) {
      putFixed32(
        bytes,
        offset + size + 1,
        maskCrc(crc32c(bytes, offset, offset + size + 1)),
      );
    }
  }
  putFixed32(bytes, footer + 36, TABLE_FORMAT_VERSION_CRC32C);
  await Deno.writeFile(path, bytes);
}

Deno.test("format 1 tables (CRC-32C block checksums) still read; the version picks the checksum", async () => {
  const rng = new Prng(testSeed("format 1 tables"));
  await using tmp = await tempDir();
  const data = rows(rng, 1500);
  await write(tmp.path, 4, data, 512, 10);
  await toFormat1(tmp.path, 4);
  const open = () => openTable(tmp.path, 4);
  const t = await open();
  checkEveryRow(t, data);
  t.close();
  // A format 2 table relabeled as format 1 fails its checksums.
  await write(tmp.path, 5, data, 512, 10);
  await toFormat1(tmp.path, 5, true);
  await assert.rejects(
    openTable(tmp.path, 5),
    (error: unknown) => {
      assert.ok(error instanceof CorruptionError);
      assert.match(error.message, /block checksum mismatch/);
      return true;
    },
  );
  // An unknown version is refused by name.
  const path = `${tmp.path}/${tableName(4)}`;
  const bytes = await Deno.readFile(path);
  putFixed32(bytes, bytes.length - TABLE_FOOTER_BYTES + 36, 3);
  await Deno.writeFile(path, bytes);
  await assert.rejects(open(), /unknown format version 3/);
});

Deno.test("a point lookup in a block finds exactly its keys, among keys that are prefixes of one another", () => {
  const seed = testSeed("block point lookups");
  const rng = new Prng(seed);
  // Keys over two letters, up to 7 long: most are prefixes or extensions of
  // others, and neighbours share prefixes of every length.
  const all: string[] = [];
  const grow = (k: string) => {
    if (k.length > 0) all.push(k);
    if (k.length < 7) { for (const c of "ab") grow(k + c); }
  };
  grow("");
  all.sort();
  for (let round = 0; round < 20; round++) {
    const keys = all.filter(() => rng.int(3) === 0);
    const b = new BlockBuilder();
    for (const [i, k] of keys.entries()) {
      b.addData(k, i + 1, i % 5 === 0 ? undefined : `v${i}`, 0);
    }
    const contents = b.finish();
    const want = new Map(keys.map((k, i) => [k, i]));
    for (const k of [...all, "", "c", "aaaaaaaa", "b\0"]) {
      const got = searchDataBlock(contents, k, "f", 0);
      const i = want.get(k);
      assert.equal(got?.seq, i === undefined ? undefined : i + 1, k);
      if (i !== undefined) {
        assert.equal(
          got!.value && bytesToBinary(got!.value),
          i % 5 === 0 ? undefined : `v${i}`,
        );
      }
    }
  }
});

Deno.test("a point lookup reads entry headers of one-byte and longer varints", () => {
  // Prefixes, suffixes and values on both sides of 128 bytes, where a
  // length's varint grows to two bytes: the one-byte headers are read
  // directly and the others through the general decoder.
  const long = "p".repeat(200);
  const keys: string[] = [];
  for (const stem of ["a", "b", "p".repeat(126), "p".repeat(127), long]) {
    for (const tail of ["", "b", "bb", "c".repeat(127), "d".repeat(300)]) {
      keys.push(stem + tail);
    }
  }
  const sorted = [...new Set(keys)].sort();
  const valueOf = (i: number) =>
    i % 7 === 6 ? undefined : "v".repeat([0, 1, 118, 119, 120, 500][i % 6]!);
  const b = new BlockBuilder();
  for (const [i, k] of sorted.entries()) b.addData(k, i + 1, valueOf(i), 0);
  const contents = b.finish();
  for (const [i, k] of sorted.entries()) {
    const got = searchDataBlock(contents, k, "f", 0);
    assert.equal(got?.seq, i + 1, `key of ${k.length} bytes`);
    const value = got!.value;
    assert.equal(value && bytesToBinary(value), valueOf(i));
    // A key just past it, or cut short, is absent.
    assert.equal(searchDataBlock(contents, k + "\0", "f", 0), undefined);
    if (k.length > 1 && !sorted.includes(k.slice(0, -1))) {
      assert.equal(
        searchDataBlock(contents, k.slice(0, -1), "f", 0),
        undefined,
      );
    }
  }
  // A header cut off by the end of the entries is corruption, named.
  const cut = contents.slice();
  // The restart count is the last four bytes; point every restart at the
  // block's last entry byte, then ask for a key past every entry.
  const n = new DataView(cut.buffer).getUint32(cut.length - 4, true);
  assert.ok(n >= 2, `${n} restarts`);
  const limit = cut.length - 4 - 4 * n;
  for (let r = 1; r < n; r++) {
    new DataView(cut.buffer).setUint32(limit + 4 * r, limit - 1, true);
  }
  assert.throws(
    () => searchDataBlock(cut, "zz", "f.sst", 4096),
    /Corrupt block in table "f.sst" at offset 4096: bad entry header$/,
  );
  // Entries of a few bytes, one restart at 0: a header with one or two of
  // its three bytes before the end is cut off; one whose three bytes all
  // fit names the key and value that do not; a value length of two bytes
  // cut after its first is cut off too.
  const cases: Array<[number[], string]> = [
    [[0x00], "bad entry header"],
    [[0x00, 0x01], "bad entry header"],
    [[0x00, 0x01, 0x05], "entry runs past the block"],
    [[0x00, 0x01, 0x85], "bad entry header"],
    [[0x00, 0x01, 0x85, 0x01], "entry runs past the block"],
  ];
  for (const [entries, why] of cases) {
    const block = Uint8Array.of(...entries, 0, 0, 0, 0, 1, 0, 0, 0);
    assert.throws(
      () => searchDataBlock(block, "a", "g.sst", 8),
      new RegExp(`Corrupt block in table "g.sst" at offset 8: ${why}$`),
      entries.join(","),
    );
  }
});

Deno.test("a block cursor refuses entries out of order and a bad first restart", () => {
  // One-entry blocks, their entries spliced together in the wrong order.
  const entryOf = (key: string) => {
    const b = new BlockBuilder();
    b.addData(key, 1, "v", 0);
    const contents = b.finish();
    return contents.slice(0, contents.length - 8); // less restarts, count
  };
  const block = (restart: number, ...entries: Uint8Array[]) => {
    const n = entries.reduce((sum, e) => sum + e.length, 0);
    const out = new Uint8Array(n + 8);
    let at = 0;
    for (const e of entries) {
      out.set(e, at);
      at += e.length;
    }
    new DataView(out.buffer).setUint32(at, restart, true);
    new DataView(out.buffer).setUint32(at + 4, 1, true);
    return out;
  };
  const good = block(0, entryOf("a"), entryOf("b"));
  assert.ok(cursorOn(good).seek("b"));
  const swapped = block(0, entryOf("b"), entryOf("a"));
  assert.throws(
    () => cursorOn(swapped).seek("c"),
    CorruptionError,
  );
  assert.throws(() => {
    const c = cursorOn(swapped);
    while (c.next()) { /* walk */ }
  }, CorruptionError);
  const late = block(entryOf("a").length, entryOf("a"), entryOf("b"));
  assert.throws(() => cursorOn(late).seek("a"), CorruptionError);
});

/** denoEnv, counting the synchronous reads of the files it opens. */
function countingEnv(): { env: Env; reads: () => number } {
  let reads = 0;
  const env: Env = {
    ...denoEnv,
    async openReadable(path) {
      const file = await denoEnv.openReadable(path);
      return {
        path: file.path,
        size: file.size,
        read: (offset, buf) => file.read(offset, buf),
        readSync: (offset, buf) => {
          reads++;
          return file.readSync(offset, buf);
        },
        close: () => file.close(),
      };
    },
  };
  return { env, reads: () => reads };
}

Deno.test("a long forward scan reads ahead, caches only while the cache has room, keeps earlier views valid and names the file of a bad block", async () => {
  const seed = testSeed("table read-ahead");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const data = rows(rng, 3000);
  await write(tmp.path, 5, data, 512, 10);
  await write(tmp.path, 7, rows(rng, 3000), 512, 10);
  const scan = (t: TableReader) => {
    const c = new TableScan([t], {}, undefined);
    const walked: Row[] = [];
    const views: Array<Uint8Array | undefined> = [];
    while (c.next()) {
      views.push(valueOf(c));
      walked.push(rowOf(c));
    }
    return { walked, views };
  };
  for (const cacheBytes of [1 << 20, 16 * 1024]) {
    const { env, reads } = countingEnv();
    const cache = new BlockCache(cacheBytes);
    const other = await TableReader.open(env, tmp.path, 7, cache, stats());
    const t = await TableReader.open(env, tmp.path, 5, cache, stats());
    try {
      assert.ok(t.blocks > 100, `${t.blocks} blocks`);
      // Point reads of the other table fill part of the cache first.
      for (let b = 0; b < 4; b++) other.pin(b);
      const before = reads();
      const { walked, views } = scan(t);
      assert.deepEqual(walked, data);
      // Every view taken during the scan still holds its value. Nothing is
      // evicted during this scan (the other table's blocks stay pinned),
      // so this checks that no read-ahead refill overwrote a buffer the
      // scan had handed out views of.
      assert.deepEqual(
        views.map((v) => v && bytesToBinary(v)),
        data.map((r) => r.value),
      );
      const scanReads = reads() - before;
      assert.ok(
        scanReads < t.blocks / 8,
        `${scanReads} reads for ${t.blocks} blocks (cache ${cacheBytes} B)`,
      );
      const cached = cache.stats().blocks;
      if (cacheBytes === 1 << 20) {
        // The table fits: the scan cached every block it read.
        assert.equal(cached, t.blocks + 4);
      } else {
        // It does not: once full, the scan evicted nothing, so the other
        // table's blocks are still cached.
        const misses = cache.misses;
        for (let b = 0; b < 4; b++) other.pin(b);
        assert.equal(cache.misses, misses, "the other table's blocks stayed");
        assert.ok(cached < t.blocks / 2, `${cached} blocks cached`);
      }
    } finally {
      t.close();
      other.close();
    }
  }
  // A flipped bit in a block the scan reads ahead is a CorruptionError
  // naming the table, never a wrong entry.
  const path = `${tmp.path}/${tableName(5)}`;
  const good = await Deno.readFile(path);
  const bad = good.slice();
  bad[Math.floor(good.length / 3)]! ^= 0x10;
  await Deno.writeFile(path, bad);
  const t2 = await openTable(tmp.path, 5);
  try {
    const c = new TableScan([t2], {}, undefined);
    assert.throws(
      () => {
        while (c.next()) {
          // A block reached before the bad one reads right.
        }
      },
      (error: unknown) =>
        error instanceof CorruptionError && error.file === path,
    );
  } finally {
    t2.close();
  }
});

Deno.test("values a merged scan hands out stay right while point reads churn a tiny cache between its steps", async () => {
  const seed = testSeed("table scan churn");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const data = rows(rng, 2000);
  await write(tmp.path, 6, data, 512, 10);
  // Room for two blocks: every lookup between two steps evicts, and an
  // evicted block's buffer is recycled for the next read.
  const cache = new BlockCache(2 * (1024 + 64));
  const t = await TableReader.open(denoEnv, tmp.path, 6, cache, stats());
  try {
    for (let trial = 0; trial < 200; trial++) {
      const from = rng.int(data.length);
      const m = new MergeCursor([
        new TableScan([t], { start: data[from]!.key }, undefined),
      ]);
      for (
        let i = from;
        i < Math.min(data.length, from + 40) && m.next();
        i++
      ) {
        // The scan is paused here; reads elsewhere churn the cache.
        for (let k = 0; k < 3; k++) t.get(data[rng.int(data.length)]!.key);
        const want = data[i]!;
        const got = rowOf(m.top);
        assert.equal(got.key, want.key, `seed ${seed} trial ${trial}`);
        assert.equal(
          got.value,
          want.value,
          `seed ${seed} trial ${trial} entry ${i}`,
        );
      }
      m.close();
    }
  } finally {
    t.close();
  }
});

Deno.test("a table written from bytes is the same file as one written from strings", async () => {
  await using tmp = await tempDir();
  const seed = testSeed("addBytes vs add");
  const data = rows(new Prng(seed), 3000);
  await write(tmp.path, 1, data, 512, 10);
  const w = await TableWriter.create(denoEnv, tmp.path, 2, {
    blockBytes: 512,
    bloomBitsPerKey: 10,
  });
  // Keys and values at odd offsets of shared buffers, as a merge gives them.
  const buf = new Uint8Array(1024);
  for (const r of data) {
    for (let i = 0; i < r.key.length; i++) buf[3 + i] = r.key.charCodeAt(i);
    const v = r.value ?? "";
    for (let i = 0; i < v.length; i++) buf[500 + i] = v.charCodeAt(i);
    w.addBytes(
      buf,
      3,
      r.key.length,
      r.seq,
      r.expiry,
      buf,
      500,
      r.value === undefined ? -1 : v.length,
    );
  }
  await w.finish();
  assert.deepEqual(
    await Deno.readFile(`${tmp.path}/${tableName(2)}`),
    await Deno.readFile(`${tmp.path}/${tableName(1)}`),
    `seed ${seed}`,
  );
});

Deno.test("a table writer refuses a key out of order, across blocks too", async () => {
  await using tmp = await tempDir();
  const w = await TableWriter.create(denoEnv, tmp.path, 1, {
    blockBytes: 64,
    bloomBitsPerKey: 10,
  });
  for (let i = 10; i < 40; i++) w.add(`key${i}`, i, "x".repeat(20), 0);
  // Small blocks: "key39" ended a block or sits in one of few entries.
  assert.throws(() => w.add("key39", 99, "x", 0), /strictly increase/);
  assert.throws(() => w.add("key20", 99, "x", 0), /strictly increase/);
  w.add("key40", 40, "x", 0);
  const m = await w.finish();
  assert.equal(m.smallest, "key10");
  assert.equal(m.largest, "key40");
  assert.equal(m.entries, 31);
});

Deno.test("a scan starting in an uncached block reads the next one in the same read; a bad next block fails only a scan that reaches it", async () => {
  const seed = testSeed("table pair read");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const data = rows(rng, 3000);
  await write(tmp.path, 5, data, 512, 10);
  const path = `${tmp.path}/${tableName(5)}`;
  // Rows per block, from a walk of the blocks read in sequence.
  const blockRows: Row[][] = [];
  const probe = await openTable(tmp.path, 5);
  for (const { contents, offset } of probe.scanContents()) {
    const c = cursorOn(contents, path, offset);
    const walked: Row[] = [];
    while (c.next()) walked.push(rowOf(c));
    blockRows.push(walked);
  }
  const offsets = probe.index.offsets.slice();
  probe.close();
  assert.ok(blockRows.length > 20, `${blockRows.length} blocks`);
  const b = 5 + rng.int(blockRows.length - 10);
  const from = rng.int(blockRows[b]!.length);
  const start = blockRows[b]![from]!.key;
  const want = [...blockRows[b]!.slice(from), ...blockRows[b + 1]!];

  const { env, reads } = countingEnv();
  const t = await openTable(tmp.path, 5, env);
  try {
    const before = reads();
    const c = new TableScan([t], { start }, undefined);
    const got: Row[] = [];
    while (got.length < want.length && c.next()) got.push(rowOf(c));
    c.close();
    assert.deepEqual(got, want, `seed ${seed} block ${b}`);
    assert.equal(reads() - before, 1, "one read for both blocks");
  } finally {
    t.close();
  }

  // The next block damaged: the scan reads its own block right, and
  // fails naming the file only when it reaches the bad one.
  const bad = (await Deno.readFile(path)).slice();
  bad[offsets[b + 1]! + 2]! ^= 0x04;
  await Deno.writeFile(path, bad);
  const t2 = await openTable(tmp.path, 5);
  try {
    const c = new TableScan([t2], { start }, undefined);
    for (const row of blockRows[b]!.slice(from)) {
      assert.ok(c.next(), `seed ${seed}`);
      assert.deepEqual(rowOf(c), row);
    }
    assert.throws(
      () => c.next(),
      (error: unknown) =>
        error instanceof CorruptionError && error.file === path,
    );
    c.close();
  } finally {
    t2.close();
  }
});

Deno.test("a data block with its trailer fits the block size, unless one entry alone does not", async () => {
  const seed = testSeed("blocks fit");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  for (const blockBytes of [512, 4096]) {
    // Mostly small entries, some as big as a block or bigger.
    const data = rows(rng, 3000).map((r, i) =>
      i % 97 === 0 && r.value !== undefined
        ? { ...r, value: "v".repeat(blockBytes + (i % 3) * 100) }
        : r
    );
    await write(tmp.path, blockBytes, data, blockBytes, 10);
    const t = await openTable(tmp.path, blockBytes);
    let big = 0;
    try {
      for (let b = 0; b < t.blocks; b++) {
        const size = t.index.sizes[b]! + BLOCK_TRAILER_BYTES;
        if (size <= blockBytes) continue;
        // Over the size only as a block of one entry.
        let entries = 0;
        const c = cursorOn(t.pin(b).raw, t.path, t.index.offsets[b]!);
        while (c.next()) entries++;
        assert.equal(entries, 1, `seed ${seed}: block ${b} of ${size} bytes`);
        big++;
      }
      assert.ok(big > 0, `seed ${seed}: some entries were bigger than a block`);
      assert.ok(t.blocks > 10, `seed ${seed}: ${t.blocks} blocks`);
    } finally {
      t.close();
    }
  }
});
