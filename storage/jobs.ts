/**
 * Background table writing — flushes and merges — described as plain data
 * (a job), so that the same code runs on the store's thread (any Env, such
 * as the simulated one of the power-cut tests) or in worker threads on the
 * real filesystem, where it leaves the store's thread free to serve reads
 * and writes on the machine's other cores.
 *
 * A job writes new tables and returns their metadata; it never touches the
 * manifest. The store installs the tables with a manifest edit afterwards,
 * so a job that dies half way leaves only files that the next open removes.
 *
 * Invariants:
 * - A job names its output files from a range of file numbers reserved by
 *   the store before it starts, and fails rather than go past it.
 * - A flush job's entries are those of a frozen memtable, one (the newest)
 *   per key, in any order (the job sorts them), encoded by
 *   {@linkcode encodeEntries}.
 * - A merge job's input tables are kept alive by the store until it ends.
 */
import {
  binaryToBytes,
  bytesToBinary,
  compareKeys,
  copyInto,
  getFixed64,
  getVarint32,
  type KeyRanges,
  putFixed64,
  putVarint32,
  sortedOrder,
  SortScratch,
  Spares,
  type VarintResult,
} from "../util/mod.ts";
import { writeTables } from "./compaction.ts";
import type { Memtable } from "./memtable.ts";
import type { Env } from "./env.ts";
import { CorruptionError } from "./errors.ts";
import { IMMUTABLE_MEMTABLES_MAX, TABLE_BYTES_TARGET } from "./limits.ts";
import {
  Cursor,
  RunMerge,
  RunReader,
  type SourceEntry,
  type TableSource,
} from "./merge.ts";
import {
  BlockCache,
  type TableMeta,
  type TableOptions,
  TableReader,
  type TableWriter,
} from "./sstable/mod.ts";

/** Writes a frozen memtable's entries out as level-0 tables. */
export interface FlushJob {
  kind: "flush";
  dir: string;
  /** The entries, from {@linkcode encodeEntries}. */
  entries: Uint8Array;
  /** First of the file numbers reserved for the output. */
  firstFile: number;
  /** How many file numbers are reserved. */
  files: number;
  options: TableOptions;
}

/** Merges sorted runs of tables into new tables. */
export interface MergeJob {
  kind: "merge";
  dir: string;
  /**
   * Sorted runs, newest first: each a list of table file numbers in key
   * order, not overlapping each other. For a key in several runs, the
   * newest run's entry wins.
   */
  runs: number[][];
  /** Leave deletes out (the output is the bottom of the tree). */
  dropTombstones: boolean;
  firstFile: number;
  files: number;
  options: TableOptions;
}

export type Job = FlushJob | MergeJob;

/** Runs jobs: on the store's thread, or in a worker. */
export interface JobRunner {
  run(job: Job): Promise<TableMeta[]>;
  /**
   * A job is coming soon: a runner that starts something for its jobs (a
   * thread) may start it now, so that the job does not wait for it.
   */
  prepare?(): void;
  /** Stops the runner; jobs still running fail. */
  close(): void;
}

/**
 * File numbers to reserve for a job whose input is about `inputBytes`:
 * outputs are cut at `tableBytes` and hold no more than the input, so this
 * is a generous bound.
 */
export function filesFor(
  inputBytes: number,
  tableBytes: number = TABLE_BYTES_TARGET,
): number {
  return 2 * Math.ceil(inputBytes / tableBytes) + 2;
}

const FLAG_VALUE = 1;

/**
 * Buffers that flushes' entries were encoded into, handed back once the
 * flush is done (see recycleEntryBuffer), for the next flushes: encoding a
 * memtable took 4-27 ms into a fresh buffer and 1.3-3.7 ms into a used one,
 * on the store's thread while writes wait. At most one per frozen memtable
 * a store can hold: it starts all their flushes at once.
 */
export const spareEntryBuffers: Spares<ArrayBuffer> = new Spares(
  IMMUTABLE_MEMTABLES_MAX,
);

/** Recyclable entry buffers are allocated in multiples of this. */
const ENTRY_BUFFER_GRANULE = 1024 * 1024;

/**
 * Keeps a finished flush's entries buffer for the next flush; an empty one
 * (moved to a worker) is not kept.
 */
export function recycleEntryBuffer(buffer: ArrayBuffer): void {
  if (buffer.byteLength > 0) spareEntryBuffers.give(buffer);
}

/** A flush's entries as they are encoded (see encodeEntries for the layout). */
class EntryBuffer {
  #buf: Uint8Array;
  #at = 0;

  /**
   * With `spare`, a recycled buffer is used when one is big enough; a new
   * one is then a whole number of MiB, so that memtables of about the same
   * size (each overshoots its limit by a different last write) take each
   * other's.
   */
  constructor(sizeHint: number, spare = false) {
    const size = spare
      ? Math.ceil(Math.max(1, sizeHint) / ENTRY_BUFFER_GRANULE) *
        ENTRY_BUFFER_GRANULE
      : Math.max(1024, sizeHint);
    const recycled = spare ? spareEntryBuffers.take() : undefined;
    this.#buf = recycled !== undefined && recycled.byteLength >= size
      ? new Uint8Array(recycled)
      : new Uint8Array(size);
  }

  /**
   * Appends an entry: its key is `keys[keyAt, keyAt + keyLength)`, its value
   * `values[valueAt, valueAt + valueLength)`; `valueLength` -1 is a
   * tombstone.
   */
  add(
    keys: Uint8Array,
    keyAt: number,
    keyLength: number,
    seq: number,
    expiry: number,
    values: Uint8Array,
    valueAt: number,
    valueLength: number,
  ): void {
    const need = 5 + keyLength + 17 + 5 + Math.max(0, valueLength);
    let buf = this.#buf;
    let at = this.#at;
    if (at + need > buf.length) {
      const grown = new Uint8Array(Math.max(buf.length * 2, at + need));
      grown.set(buf.subarray(0, at));
      this.#buf = buf = grown;
    }
    at = putVarint32(buf, at, keyLength);
    at = copyInto(buf, at, keys, keyAt, keyAt + keyLength);
    putFixed64(buf, at, seq);
    putFixed64(buf, at + 8, expiry);
    at += 16;
    if (valueLength < 0) {
      buf[at++] = 0;
    } else {
      buf[at++] = FLAG_VALUE;
      at = putVarint32(buf, at, valueLength);
      at = copyInto(buf, at, values, valueAt, valueAt + valueLength);
    }
    this.#at = at;
  }

  /** The entries so far. */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#at);
  }
}

const NO_BYTES = new Uint8Array(0);

/**
 * Encodes entries (distinct keys in any order) as one buffer that can be
 * moved to a worker without a copy: per entry, varint key length, key,
 * fixed64 seq, fixed64 expiry, a flag byte (1 = value, 0 = tombstone), then
 * varint value length and value.
 */
export function encodeEntries(
  entries: Iterator<SourceEntry>,
  sizeHint: number,
): Uint8Array {
  const out = new EntryBuffer(sizeHint);
  for (let r = entries.next(); !r.done; r = entries.next()) {
    const { key, seq, value, expiry } = r.value;
    const k = binaryToBytes(key);
    out.add(
      k,
      0,
      k.length,
      seq,
      expiry,
      value ?? NO_BYTES,
      0,
      value === undefined ? -1 : value.length,
    );
  }
  return out.bytes();
}

/**
 * A frozen memtable's newest entry per key (tombstones included, in no
 * particular order), encoded as by {@linkcode encodeEntries}, straight from
 * its arena: no string or view per entry. The bytes go into a recycled
 * buffer when there is one (see recycleEntryBuffer); its contents past the
 * entries are garbage.
 */
export function encodeMemtable(mem: Memtable): Uint8Array {
  const out = new EntryBuffer(mem.bytes, true);
  mem.visitNewest(
    (arena, keyAt, keyLength, seq, expiry, valueAt, valueLength) =>
      out.add(
        arena,
        keyAt,
        keyLength,
        seq,
        expiry,
        arena,
        valueAt,
        valueLength,
      ),
  );
  return out.bytes();
}

/** One entry read back from a buffer of {@linkcode encodeEntries}. */
interface ReadEntry {
  key: string;
  seq: number;
  value: Uint8Array | undefined;
  expiry: number;
  /** Where the key and value are in the buffer; valueLength -1: tombstone. */
  keyAt: number;
  keyLength: number;
  valueAt: number;
  valueLength: number;
}

/** Result slot of the varint reads in readEntry. */
const varint: VarintResult = { value: 0, offset: 0 };

function malformed(at: number): CorruptionError {
  return new CorruptionError(
    `Malformed flush entries at offset ${at}`,
    "(flush job)",
    at,
  );
}

/**
 * Where the entry at `at` of an {@linkcode encodeEntries} buffer has its key
 * (`out.keyAt`, `out.keyLength`) and its value (`out.valueAt`,
 * `out.valueLength`, -1 for a tombstone), every length checked against the
 * buffer; returns the offset of the next entry. Its other fields are read
 * by {@linkcode readEntry}.
 */
function skipEntry(buf: Uint8Array, at: number, out: ReadEntry): number {
  const v = varint;
  if (!getVarint32(buf, at, buf.length, v)) throw malformed(at);
  const keyEnd = v.offset + v.value;
  if (keyEnd + 17 > buf.length) throw malformed(at);
  out.keyAt = v.offset;
  out.keyLength = v.value;
  out.valueLength = -1;
  if (buf[keyEnd + 16] !== FLAG_VALUE) return keyEnd + 17;
  if (!getVarint32(buf, keyEnd + 17, buf.length, v)) throw malformed(at);
  if (v.offset + v.value > buf.length) throw malformed(at);
  out.valueAt = v.offset;
  out.valueLength = v.value;
  return v.offset + v.value;
}

/**
 * Reads the entry at `at` of an {@linkcode encodeEntries} buffer into `out`
 * (its value as a view of the buffer, unless `withValue` is false; its key
 * as `key` when the caller made it already); returns the offset of the
 * next entry.
 */
function readEntry(
  buf: Uint8Array,
  at: number,
  out: ReadEntry,
  withValue: boolean,
  key?: string,
): number {
  const next = skipEntry(buf, at, out);
  const keyEnd = out.keyAt + out.keyLength;
  out.key = key ?? bytesToBinary(buf, out.keyAt, keyEnd);
  out.seq = getFixed64(buf, keyEnd);
  out.expiry = getFixed64(buf, keyEnd + 8);
  // A view, not a string: the table writer copies the bytes as they are.
  out.value = withValue && out.valueLength >= 0
    ? buf.subarray(out.valueAt, out.valueAt + out.valueLength)
    : undefined;
  return next;
}

/**
 * A flush cursor's per-entry arrays: where each entry starts, where its key
 * is, and the sort's scratch. Kept for the next flush (large typed arrays
 * are fresh memory, a page fault per 4 KiB, each time they are made).
 */
class FlushScratch {
  starts = new Uint32Array(0);
  keys: KeyRanges = {
    buf: new Uint8Array(0),
    at: new Uint32Array(0),
    length: new Uint32Array(0),
  };
  order = new Uint32Array(0);
  sort = new SortScratch();

  /** Room for `n` entries. */
  reserve(n: number): void {
    if (this.starts.length >= n) return;
    const size = Math.max(n, this.starts.length * 2);
    const grow = (a: Uint32Array) => {
      const b = new Uint32Array(size);
      b.set(a);
      return b;
    };
    this.starts = grow(this.starts);
    this.keys.at = grow(this.keys.at);
    this.keys.length = grow(this.keys.length);
    this.order = new Uint32Array(size);
    this.sort.reserve(size);
  }
}

/** Scratch of finished flush cursors; one per thread running flushes. */
const spareFlushScratch: Spares<FlushScratch> = new Spares(1);

/**
 * A flush's entries in key order, from an {@linkcode encodeEntries} buffer
 * (a memtable's, in no particular order). Only where each entry and its key
 * are is read up front, and the keys sorted (as bytes, where they lie:
 * {@linkcode sortedOrder}) unless they are in order already, as after a
 * load in key order; each entry's other fields are read as the cursor
 * reaches it. Keys must be distinct: a repeated key is a malformed job,
 * refused rather than written out twice.
 *
 * As a table source (a flush job's), it hands the writer the key and value
 * bytes where they are in the buffer; made with `views` false, it then
 * makes no string or view per entry (`key` and `value` stay unset: see
 * `tombstone`). As an entry cursor (`views` true), each key becomes a
 * string and each value a view.
 */
export class FlushCursor extends Cursor implements TableSource {
  readonly #buf: Uint8Array;
  #scratch: FlushScratch | undefined;
  readonly #n: number;
  /** Whether the entries need the sorted order (else they are in it). */
  readonly #sorted: boolean;
  #k = 0;
  readonly #entry: ReadEntry = {
    key: "",
    seq: 0,
    value: undefined,
    expiry: 0,
    keyAt: 0,
    keyLength: 0,
    valueAt: 0,
    valueLength: -1,
  };

  constructor(buf: Uint8Array, private readonly views = true) {
    super();
    this.#buf = buf;
    const scratch = this.#scratch = spareFlushScratch.take() ??
      new FlushScratch();
    const keys = scratch.keys;
    keys.buf = buf;
    const e = this.#entry;
    let inOrder = true;
    let n = 0;
    for (let at = 0; at < buf.length; n++) {
      if (n === scratch.starts.length) scratch.reserve(Math.max(1024, 2 * n));
      scratch.starts[n] = at;
      at = skipEntry(buf, at, e);
      keys.at[n] = e.keyAt;
      keys.length[n] = e.keyLength;
      if (inOrder && n > 0 && compareKeys(keys, n - 1, n) >= 0) {
        inOrder = false;
      }
    }
    this.#n = n;
    this.#sorted = !inOrder;
    if (!inOrder) sortedOrder(keys, n, scratch.order, scratch.sort);
  }

  next(): boolean {
    const scratch = this.#scratch;
    if (scratch === undefined) return false;
    const k = this.#k;
    if (k >= this.#n) {
      // Done: the arrays go to the next flush.
      this.#scratch = undefined;
      scratch.keys.buf = NO_BYTES;
      spareFlushScratch.give(scratch);
      return false;
    }
    const order = scratch.order;
    const i = this.#sorted ? order[k]! : k;
    if (k > 0) {
      const prev = this.#sorted ? order[k - 1]! : k - 1;
      if (compareKeys(scratch.keys, prev, i) === 0) {
        const { at, length } = scratch.keys;
        const key = bytesToBinary(this.#buf, at[i]!, at[i]! + length[i]!);
        throw new CorruptionError(
          `Malformed flush entries: key ${JSON.stringify(key)} appears twice`,
          "(flush job)",
          0,
        );
      }
    }
    this.#k++;
    const e = this.#entry;
    const views = this.views;
    readEntry(this.#buf, scratch.starts[i]!, e, views, views ? undefined : "");
    return this.take(e.key, e.seq, e.value, e.expiry);
  }

  get tombstone(): boolean {
    return this.#entry.valueLength < 0;
  }

  addTo(writer: TableWriter): void {
    const e = this.#entry;
    const buf = this.#buf;
    writer.addBytes(
      buf,
      e.keyAt,
      e.keyLength,
      e.seq,
      e.expiry,
      buf,
      e.valueAt,
      e.valueLength,
    );
  }
}

/** Runs `job` with `env`; `yieldNow` lets a shared event loop breathe. */
export async function runJob(
  env: Env,
  job: Job,
  yieldNow: () => Promise<void> = () => Promise.resolve(),
): Promise<TableMeta[]> {
  let next = job.firstFile;
  const end = job.firstFile + job.files;
  const nextFile = () => {
    if (next >= end) {
      throw new RangeError(
        `A ${job.kind} job needed more than the ${job.files} file numbers reserved for it`,
      );
    }
    return next++;
  };
  if (job.kind === "flush") {
    return await writeTables(
      env,
      job.dir,
      new FlushCursor(job.entries, false),
      nextFile,
      job.options,
      false,
      yieldNow,
    );
  }
  // Merge input is read once, start to end, bypassing any cache.
  const cache = new BlockCache(0);
  const filterStats = { negatives: 0, falsePositives: 0 };
  const readers: TableReader[] = [];
  try {
    const sources: RunReader[] = [];
    for (const run of job.runs) {
      const tables: TableReader[] = [];
      for (const n of run) {
        const t = await TableReader.open(env, job.dir, n, cache, filterStats);
        readers.push(t);
        tables.push(t);
      }
      sources.push(new RunReader(tables));
    }
    return await writeTables(
      env,
      job.dir,
      new RunMerge(sources),
      nextFile,
      job.options,
      job.dropTombstones,
      yieldNow,
    );
  } finally {
    for (const t of readers) t.close();
  }
}

/** Runs jobs on the calling thread, with the store's Env. */
export class InlineRunner implements JobRunner {
  constructor(private readonly env: Env) {}

  run(job: Job): Promise<TableMeta[]> {
    return runJob(this.env, job, () => this.env.yieldNow());
  }

  close(): void {}
}
