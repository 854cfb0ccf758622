/**
 * Reads one SSTable: the footer, index, filter and properties at open (all
 * verified), then data blocks on demand through the shared block cache.
 * Format: docs/format/sstable.md.
 *
 * Invariants:
 * - No byte is returned before the checksum of its block verified.
 * - Every handle is checked against the file size before anything is
 *   allocated or read from it.
 */
import {
  bytesToBinary,
  crc32,
  crc32c,
  equalBytes,
  getFixed32,
  getFixed64,
  getVarint32,
  keyWord,
  lowerBound,
  sharedPrefix,
  unmaskCrc,
  type VarintResult,
  wordLowerBound,
} from "../../util/mod.ts";
import { type Env, joinPath, type ReadableFile } from "../env.ts";
import { CorruptionError } from "../errors.ts";
import {
  BLOCK_COMPRESSION_NONE,
  BLOCK_TRAILER_BYTES,
  TABLE_FOOTER_BYTES,
  TABLE_FORMAT_VERSION,
  TABLE_FORMAT_VERSION_CRC32C,
  TABLE_MAGIC,
} from "../format.ts";
import {
  type DataBlock,
  type DataField,
  decodeDataBlock,
  decodeIndexBlock,
  entryOf,
  findInDataBlock,
  type IndexBlock,
} from "./block.ts";
import type { BlockCache, CachedBlock } from "./block_cache.ts";
import { bloomHash1, bloomHash2, bloomMayContain } from "./bloom.ts";
import { type TableMeta, tableName } from "./table_writer.ts";
import { TABLE_OPENS_AT_ONCE } from "../limits.ts";

/** The properties block of a table. */
export interface TableProps {
  entries: number;
  tombstones: number;
  minSeq: number;
  maxSeq: number;
  dataBytes: number;
  smallest: string;
  largest: string;
}

/**
 * Whether a table's properties are the ones the manifest recorded for it
 * (entries, tombstones, sequence range, key range): a table swapped for
 * another of the same size (a copy, a restore gone wrong) is not trusted.
 * Open refuses a table that fails this; `kv check` reports it.
 */
export function propsMatchRecord(p: TableProps, meta: TableMeta): boolean {
  return p.entries === meta.entries && p.tombstones === meta.tombstones &&
    p.minSeq === meta.minSeq && p.maxSeq === meta.maxSeq &&
    p.smallest === meta.smallest && p.largest === meta.largest;
}

/** Bloom filter counters shared by a store's tables. */
export interface FilterStats {
  /** Lookups the filter answered "absent" (no block read). */
  negatives: number;
  /** Lookups the filter let through for a key the table did not have. */
  falsePositives: number;
}

/** One entry found by a point lookup. */
export interface TableEntry {
  seq: number;
  /** A view into the block's contents; undefined for a tombstone. */
  value: Uint8Array | undefined;
  expiry: number;
}

const scratch: VarintResult = { value: 0, offset: 0 };

/**
 * The fields of the entry {@linkcode TableReader.find} last found (one
 * slot serves every lookup: each is done before another starts).
 */
export const tableHit: DataField = {
  seq: 0,
  expiry: 0,
  valueAt: 0,
  valueLength: -1,
};

/**
 * Bytes a sequential scan reads at a time. A merge holds one such buffer per
 * input run (level 0 can have 24): 1 MiB pushed the 10M-key load to within 3
 * MB of its 300 MB bound; 256 KiB is no slower.
 */
const SCAN_READ_BYTES = 256 * 1024;

/**
 * Uncached blocks a forward scan reads one by one through the cache after
 * the block it started in, before it reads ahead (RocksDB's auto-readahead
 * waits for two as well): a seek of 100 entries touches two or three
 * blocks per table and reads nothing it does not use.
 */
const READ_AHEAD_AFTER_BLOCKS = 2;
/** First read-ahead, in bytes; each one after doubles, up to the most. */
const READ_AHEAD_MIN_BYTES = 16 * 1024;
/** Most bytes one read-ahead reads. */
const READ_AHEAD_MAX_BYTES = 64 * 1024;

/**
 * One forward scan's read-ahead state in one table. Blocks read ahead are
 * verified as the scan enters them, and cached (in buffers of their own)
 * only while the cache has room: a long scan does not evict what point
 * reads use, and costs one read (and one buffer) per run of blocks instead
 * of one per block. Each refill is a fresh buffer, never overwritten, so
 * views taken from an earlier one stay valid.
 */
export class ReadAhead {
  /** Uncached blocks this scan has read so far. */
  misses = 0;
  buf: Uint8Array = NO_BYTES;
  /** File offset of buf[0]. */
  at = 0;
  /** Bytes the next refill reads. */
  size = READ_AHEAD_MIN_BYTES;
}

/** A data block's contents for a forward scan (see TableReader.nextBlock). */
export interface ScanBlock {
  contents: Uint8Array;
  /** The cached block holding them, pinned; undefined when not cached. */
  pinned: CachedBlock | undefined;
}

const NO_BYTES = new Uint8Array(0);

/** Most bytes TableReader.pinFirst reads at once (two blocks). */
const PAIR_READ_BYTES_MAX = 64 * 1024;

/** Reused buffer into which TableReader.pinFirst reads two blocks. */
let pairBuffer = new Uint8Array(0);

/** What a table's error says when its footer names a version this kv cannot read. */
export const UNKNOWN_TABLE_VERSION = "unknown format version";

/**
 * Opens tables `fileNumbers` of `dir` side by side, at most
 * TABLE_OPENS_AT_ONCE at a time, in the same order. Each open is one
 * asynchronous call (the file's), so a batch waits for one turn of the
 * event loop where one table after another waited for one each. All or
 * nothing: on a failure no further batch starts, the tables opened are
 * closed, and the first failure in `fileNumbers`' order is thrown.
 */
export async function openTables(
  env: Env,
  dir: string,
  fileNumbers: readonly number[],
  cache: BlockCache,
  filterStats: FilterStats,
): Promise<TableReader[]> {
  const readers: TableReader[] = [];
  let failed: PromiseRejectedResult | undefined;
  for (let i = 0; i < fileNumbers.length && !failed; i += TABLE_OPENS_AT_ONCE) {
    const batch = fileNumbers.slice(i, i + TABLE_OPENS_AT_ONCE);
    const outcomes = await Promise.allSettled(
      batch.map((n) => TableReader.open(env, dir, n, cache, filterStats)),
    );
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") readers.push(outcome.value);
      else failed ??= outcome;
    }
  }
  if (failed) {
    for (const r of readers) r.close();
    throw failed.reason;
  }
  return readers;
}

/** An open table. */
export class TableReader {
  private constructor(
    readonly fileNumber: number,
    readonly path: string,
    private readonly file: ReadableFile,
    readonly index: IndexBlock,
    private readonly filter: Uint8Array,
    readonly props: TableProps,
    private readonly cache: BlockCache,
    private readonly filterStats: FilterStats,
    /** Its format version's block checksum. */
    private readonly checksum: BlockChecksum,
  ) {
    // Every key of the table shares the common prefix of its smallest and
    // largest keys; four bytes past it tell most index keys apart.
    const lcp = sharedPrefix(props.smallest, props.largest);
    this.#lcp = lcp;
    const keys = index.keys;
    this.#disc = new Uint32Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      this.#disc[i] = keyWord(keys[i]!, lcp);
    }
  }

  /** Length of the prefix every key of the table shares. */
  readonly #lcp: number;
  /**
   * Per index key, the four bytes after that prefix as a number, in the
   * keys' order: a binary search of this compact array finds a block with a
   * few cache misses, where one over the key strings touches one string per
   * step. Keys with equal numbers are told apart by their strings.
   */
  readonly #disc: Uint32Array;

  /** Opens and verifies table `fileNumber` in `dir`. */
  static async open(
    env: Env,
    dir: string,
    fileNumber: number,
    cache: BlockCache,
    filterStats: FilterStats,
  ): Promise<TableReader> {
    const path = joinPath(dir, tableName(fileNumber));
    const file = await env.openReadable(path);
    try {
      const bad = (offset: number, why: string) =>
        new CorruptionError(
          `Corrupt table "${path}" at offset ${offset}: ${why}`,
          path,
          offset,
        );
      const size = file.size;
      if (size < TABLE_FOOTER_BYTES) throw bad(0, "too short for a footer");
      const footer = new Uint8Array(TABLE_FOOTER_BYTES);
      const footerAt = size - TABLE_FOOTER_BYTES;
      // Read synchronously, as data blocks are: an open is then one turn of
      // the event loop (the file's), not one per read (see Store's commit).
      if (file.readSync(footerAt, footer) !== TABLE_FOOTER_BYTES) {
        throw bad(footerAt, "short read of the footer");
      }
      if (!equalBytes(footer.subarray(40), TABLE_MAGIC)) {
        throw bad(footerAt, "bad magic");
      }
      const version = getFixed32(footer, 36);
      const checksum = version === TABLE_FORMAT_VERSION
        ? crc32
        : version === TABLE_FORMAT_VERSION_CRC32C
        ? crc32c
        : undefined;
      if (checksum === undefined) {
        throw bad(
          footerAt,
          `${UNKNOWN_TABLE_VERSION} ${version}: this kv reads versions ${TABLE_FORMAT_VERSION_CRC32C} and ${TABLE_FORMAT_VERSION} (a newer kv wrote it, or its footer is damaged)`,
        );
      }
      const blocks: Uint8Array[] = [];
      // The filter, properties and index blocks lie end to end before the
      // footer, which has no checksum of its own: a handle that names
      // another block (a filter handle naming the properties, say) fails
      // here, not as wrong answers (a get finding no key a scan finds).
      let expectedAt = -1;
      for (let i = 2; i >= 0; i--) {
        const offset = getFixed64(footer, i * 12);
        const length = getFixed32(footer, i * 12 + 8);
        const end = offset + length + BLOCK_TRAILER_BYTES;
        if (end !== (i === 2 ? footerAt : expectedAt)) {
          throw bad(footerAt, "footer handles do not tile the file");
        }
        expectedAt = offset;
      }
      for (let i = 0; i < 3; i++) {
        const offset = getFixed64(footer, i * 12);
        const length = getFixed32(footer, i * 12 + 8);
        checkHandle(path, offset, length, footerAt);
        const raw = new Uint8Array(length + BLOCK_TRAILER_BYTES);
        if (file.readSync(offset, raw) !== raw.length) {
          throw bad(offset, "short read");
        }
        blocks.push(verifyBlock(path, raw, offset, checksum));
      }
      const [filter, propsBlock, indexBlock] = blocks as [
        Uint8Array,
        Uint8Array,
        Uint8Array,
      ];
      const props = decodeProps(path, propsBlock, getFixed64(footer, 12));
      const index = decodeIndexBlock(indexBlock, path, getFixed64(footer, 24));
      // Data blocks, end to end from offset 0 to the filter block.
      let dataAt = 0;
      for (let i = 0; i < index.keys.length; i++) {
        checkHandle(path, index.offsets[i]!, index.sizes[i]!, footerAt);
        if (index.offsets[i] !== dataAt) {
          throw bad(
            index.offsets[i]!,
            `data block ${i} is not where the one before it ends`,
          );
        }
        dataAt += index.sizes[i]! + BLOCK_TRAILER_BYTES;
      }
      if (dataAt !== getFixed64(footer, 0)) {
        throw bad(
          dataAt,
          "the data blocks do not end where the filter block starts",
        );
      }
      return new TableReader(
        fileNumber,
        path,
        file,
        index,
        filter.slice(),
        props,
        cache,
        filterStats,
        checksum,
      );
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** File size in bytes. */
  get size(): number {
    return this.file.size;
  }

  /** Number of data blocks. */
  get blocks(): number {
    return this.index.keys.length;
  }

  /** Cached blocks of this table, by block number. */
  #slots: Array<CachedBlock | undefined> = [];

  /** Data block `i`'s verified contents, from the cache or read. */
  #cached(i: number): CachedBlock {
    const cached = this.cache.get(this.#slots, i);
    if (cached) return cached;
    const offset = this.index.offsets[i]!;
    const n = this.index.sizes[i]! + BLOCK_TRAILER_BYTES;
    const frame = this.cache.frame(n);
    const raw = frame.subarray(0, n);
    this.#readInto(offset, raw, "a data block");
    return this.#insert(
      i,
      verifyBlock(this.path, raw, offset, this.checksum),
      n,
      frame,
    );
  }

  /**
   * Caches verified contents `raw` (read into `bytes` bytes of `frame`)
   * as block `i`.
   */
  #insert(
    i: number,
    raw: Uint8Array,
    bytes: number,
    frame: Uint8Array,
  ): CachedBlock {
    const block: CachedBlock = {
      raw,
      decoded: undefined,
      bytes: bytes + 64,
      at: -1,
      pins: 0,
      evicted: false,
      frame,
      slots: this.#slots,
      index: i,
    };
    this.cache.set(this.#slots, i, block);
    return block;
  }

  /**
   * Data block `i` from the cache (read into it on a miss), pinned so that
   * its buffer is not recycled while a scan reads it in place: pass it to
   * {@linkcode unpin} when done with it.
   */
  pin(i: number): CachedBlock {
    const c = this.#cached(i);
    this.cache.pin(c);
    return c;
  }

  /**
   * Data block `i`, pinned as by {@linkcode pin}, for a scan that starts in
   * it. A miss reads the next block in the same read when that one is not
   * cached either, and caches it too: a seek of a few dozen entries usually
   * goes on into the next block, and one read of two blocks costs little
   * more than a read of one (a system call here costs 2-4 µs). Should the
   * next block fail its checksum, it is left uncached; the scan that
   * reaches it reads it again and reports it.
   */
  pinFirst(i: number): CachedBlock {
    const next = i + 1;
    if (
      this.#slots[i] !== undefined || next >= this.blocks ||
      this.#slots[next] !== undefined
    ) {
      return this.pin(i);
    }
    const offset = this.index.offsets[i]!;
    const n = this.index.sizes[i]! + BLOCK_TRAILER_BYTES;
    const m = this.index.sizes[next]! + BLOCK_TRAILER_BYTES;
    // Only blocks of ordinary size, and only when the cache can hold both.
    if (
      this.index.offsets[next] !== offset + n || n + m > PAIR_READ_BYTES_MAX ||
      n + m + 128 > this.cache.capacityBytes
    ) {
      return this.pin(i);
    }
    this.cache.misses++;
    if (pairBuffer.length < n + m) {
      pairBuffer = new Uint8Array(Math.min(2 * (n + m), PAIR_READ_BYTES_MAX));
    }
    const both = pairBuffer.subarray(0, n + m);
    this.#readInto(offset, both, "data blocks");
    const frame = this.cache.frame(n);
    const raw = frame.subarray(0, n);
    raw.set(both.subarray(0, n));
    const c = this.#insert(
      i,
      verifyBlock(this.path, raw, offset, this.checksum),
      n,
      frame,
    );
    this.cache.pin(c);
    let contents: Uint8Array | undefined;
    try {
      contents = verifyBlock(
        this.path,
        both.subarray(n),
        offset + n,
        this.checksum,
      );
    } catch {
      // Left uncached: reported when a scan reads it (see above).
    }
    if (contents !== undefined) {
      const nextFrame = this.cache.frame(m);
      nextFrame.set(both.subarray(n));
      this.#insert(next, nextFrame.subarray(0, contents.length), m, nextFrame);
    }
    return c;
  }

  /** Unpins a block from {@linkcode pin} or {@linkcode nextBlock}. */
  unpin(c: CachedBlock): void {
    this.cache.unpin(c);
  }

  /**
   * Data block `i`'s verified contents for a forward scan that has just
   * left block i - 1, with the cached block holding them, pinned (as by
   * {@linkcode pin}), or undefined when they are in `ahead`'s buffer: the
   * cached block if there is one; else, once the scan has missed
   * READ_AHEAD_AFTER_BLOCKS blocks, the block from `ahead`'s buffer,
   * refilled from block `i` on when it does not hold it.
   */
  nextBlock(i: number, ahead: ReadAhead): ScanBlock {
    if (
      this.#slots[i] !== undefined ||
      ahead.misses++ < READ_AHEAD_AFTER_BLOCKS
    ) {
      const c = this.pin(i);
      return { contents: c.raw, pinned: c };
    }
    const offset = this.index.offsets[i]!;
    const n = this.index.sizes[i]! + BLOCK_TRAILER_BYTES;
    if (offset < ahead.at || offset + n > ahead.at + ahead.buf.length) {
      ahead.buf = this.#readRun(offset, n, ahead.size);
      ahead.at = offset;
      ahead.size = Math.min(2 * ahead.size, READ_AHEAD_MAX_BYTES);
    }
    this.cache.misses++;
    const raw = ahead.buf.subarray(offset - ahead.at, offset - ahead.at + n);
    const contents = verifyBlock(this.path, raw, offset, this.checksum);
    if (this.cache.hasRoom(n + 64)) {
      // While the cache has room, the block is cached too, in its own
      // buffer (a view into the read-ahead buffer would keep all of it
      // alive): a scan over data that fits warms the cache for what
      // follows, and evicts nothing.
      const own = this.cache.frame(n);
      own.set(raw);
      const c = this.#insert(i, own.subarray(0, contents.length), n, own);
      this.cache.pin(c);
      return { contents: c.raw, pinned: c };
    }
    return { contents, pinned: undefined };
  }

  /** Data block `i`, decoded (for reverse iteration). */
  block(i: number): DataBlock {
    const c = this.#cached(i);
    return c.decoded ?? this.#decode(c, i);
  }

  /** Decodes cached block `i` once, charging the cache for it. */
  #decode(c: CachedBlock, i: number): DataBlock {
    const decoded = decodeDataBlock(c.raw, this.path, this.index.offsets[i]!);
    c.decoded = decoded;
    this.cache.grow(c, decoded.bytes);
    return decoded;
  }

  /** Every data block in order, decoded, as {@linkcode scanContents} reads them. */
  *scanBlocks(): Generator<DataBlock> {
    for (const c of this.scanContents()) {
      yield decodeDataBlock(c.contents, this.path, c.offset);
    }
  }

  /**
   * Every data block's verified contents in order, read sequentially in
   * large chunks and not cached: for merges, which read a table once,
   * start to end.
   */
  *scanContents(): Generator<{ contents: Uint8Array; offset: number }> {
    let buf: Uint8Array = new Uint8Array(0);
    let bufStart = 0;
    for (let i = 0; i < this.blocks; i++) {
      const offset = this.index.offsets[i]!;
      const n = this.index.sizes[i]! + BLOCK_TRAILER_BYTES;
      if (offset < bufStart || offset + n > bufStart + buf.length) {
        buf = this.#readRun(offset, n, SCAN_READ_BYTES);
        bufStart = offset;
      }
      const raw = buf.subarray(offset - bufStart, offset - bufStart + n);
      yield {
        contents: verifyBlock(this.path, raw, offset, this.checksum),
        offset,
      };
    }
  }

  /**
   * A fresh buffer of the `size` bytes at `offset` (at least the `n` of the
   * block there, at most up to the end of the file): a run of blocks for a
   * sequential read.
   */
  #readRun(offset: number, n: number, size: number): Uint8Array {
    const buf = new Uint8Array(
      Math.min(Math.max(n, size), this.file.size - offset),
    );
    this.#readInto(offset, buf, "data blocks");
    return buf;
  }

  /** Fills `buf` from `offset`; a short read is a CorruptionError. */
  #readInto(offset: number, buf: Uint8Array, what: string): void {
    if (this.file.readSync(offset, buf) !== buf.length) {
      throw new CorruptionError(
        `Corrupt table "${this.path}" at offset ${offset}: short read of ${what}`,
        this.path,
        offset,
      );
    }
  }

  /** Index of the first data block whose last key is >= key. */
  blockFor(key: string): number {
    if (key < this.props.smallest || key > this.props.largest) {
      return lowerBound(this.index.keys, key);
    }
    return this.#blockWithin(key);
  }

  /** blockFor for a key within [smallest, largest], which shares #lcp. */
  #blockWithin(key: string): number {
    return wordLowerBound(this.index.keys, this.#disc, this.#lcp, key);
  }

  /**
   * The entry for `key` (a tombstone included), or undefined. `h1`/`h2` are
   * the key's filter hashes, when the caller probes several tables.
   */
  get(
    key: string,
    h1: number = bloomHash1(key),
    h2: number = bloomHash2(key),
  ): TableEntry | undefined {
    const contents = this.find(key, h1, h2);
    return contents === undefined ? undefined : entryOf(contents, tableHit);
  }

  /**
   * {@linkcode get} that allocates nothing: the contents of the block
   * holding `key`'s entry (a tombstone included), the entry's fields then
   * in {@linkcode tableHit}, or undefined. The contents are valid until
   * the next read of any table.
   */
  find(
    key: string,
    h1: number = bloomHash1(key),
    h2: number = bloomHash2(key),
  ): Uint8Array | undefined {
    if (key < this.props.smallest || key > this.props.largest) return undefined;
    if (!bloomMayContain(this.filter, key, h1, h2)) {
      this.filterStats.negatives++;
      return undefined;
    }
    const b = this.#blockWithin(key);
    if (b < this.blocks) {
      const contents = this.#cached(b).raw;
      if (
        findInDataBlock(
          contents,
          key,
          this.path,
          this.index.offsets[b]!,
          tableHit,
        )
      ) {
        return contents;
      }
    }
    if (this.filter.length > 1) this.filterStats.falsePositives++;
    return undefined;
  }

  /** Closes the file and drops its cached blocks. */
  close(): void {
    this.cache.dropAll(this.#slots);
    this.file.close();
  }
}

function checkHandle(
  path: string,
  offset: number,
  length: number,
  limit: number,
): void {
  if (offset < 0 || offset + length + BLOCK_TRAILER_BYTES > limit) {
    throw new CorruptionError(
      `Corrupt table "${path}": block handle (${offset}, ${length}) is outside the file`,
      path,
      Math.max(0, offset),
    );
  }
}

/**
 * A block checksum over `data[start, end)`: CRC-32 in format 2 tables,
 * CRC-32C in format 1 tables.
 */
type BlockChecksum = (
  data: Uint8Array,
  start: number,
  end: number,
) => number;

/**
 * Checks a block's trailer (the checksum covers the contents and the
 * compression byte after them); returns its contents.
 */
function verifyBlock(
  path: string,
  raw: Uint8Array,
  offset: number,
  checksum: BlockChecksum,
): Uint8Array {
  const n = raw.length - BLOCK_TRAILER_BYTES;
  const expected = unmaskCrc(getFixed32(raw, n + 1));
  if (checksum(raw, 0, n + 1) !== expected) {
    throw new CorruptionError(
      `Corrupt table "${path}" at offset ${offset}: block checksum mismatch`,
      path,
      offset,
    );
  }
  if (raw[n] !== BLOCK_COMPRESSION_NONE) {
    throw new CorruptionError(
      `Corrupt table "${path}" at offset ${offset}: unknown compression ${
        raw[n]
      }`,
      path,
      offset,
    );
  }
  return raw.subarray(0, n);
}

function decodeProps(path: string, b: Uint8Array, offset: number): TableProps {
  const bad = () =>
    new CorruptionError(
      `Corrupt table "${path}" at offset ${offset}: bad properties block`,
      path,
      offset,
    );
  if (b.length < 40) throw bad();
  const fields = [0, 8, 16, 24, 32].map((at) => getFixed64(b, at));
  if (fields.some((f) => f < 0)) throw bad();
  let at = 40;
  const keys: string[] = [];
  for (let i = 0; i < 2; i++) {
    if (!getVarint32(b, at, b.length, scratch)) throw bad();
    const n = scratch.value;
    at = scratch.offset;
    if (n > b.length - at) throw bad();
    keys.push(bytesToBinary(b, at, at + n));
    at += n;
  }
  const [entries, tombstones, minSeq, maxSeq, dataBytes] = fields as [
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    entries,
    tombstones,
    minSeq,
    maxSeq,
    dataBytes,
    smallest: keys[0]!,
    largest: keys[1]!,
  };
}
