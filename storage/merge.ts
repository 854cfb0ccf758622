/**
 * Ordered iteration over the store's sources — memtables and tables — and
 * the merge that gives each key's newest entry. Pure over its inputs.
 *
 * Invariants:
 * - Every source yields strictly increasing keys (decreasing in reverse),
 *   each within the range [start, end).
 * - Sources are passed newest first; for a key present in several, the
 *   merge yields the entry of the first (newest) one.
 */
import { lowerBound } from "../util/mod.ts";
import type { Memtable, RangeOptions, Version } from "./memtable.ts";
import {
  type DataBlock,
  ReadAhead,
  type TableReader,
  type TableWriter,
} from "./sstable/mod.ts";
import {
  type BlockCursor,
  ByteCursor,
  type DecodedCursor,
} from "./sstable/block.ts";

/** One entry of a source; value undefined is a tombstone. */
export interface SourceEntry {
  key: string;
  seq: number;
  /**
   * The value: a memtable's bytes or a view into a table block (read-only
   * both); undefined for a tombstone.
   */
  value: Uint8Array | undefined;
  expiry: number;
}

/**
 * A position in entries of strictly increasing keys: the current entry is in
 * the fields, and `next()` moves to the next one (to the first, on its first
 * call), returning false at the end. A merge reads its inputs through cursors
 * and allocates nothing per entry but the key and the value view.
 */
export interface EntryCursor {
  key: string;
  seq: number;
  /** As in {@linkcode SourceEntry}: undefined for a tombstone. */
  value: Uint8Array | undefined;
  expiry: number;
  next(): boolean;
  /**
   * Done early: lets go of what the cursor holds (pinned cache blocks).
   * A cursor that ran to its end has let go already.
   */
  close(): void;
}

/** The fields every cursor keeps, and how it makes an entry current. */
export abstract class Cursor implements EntryCursor {
  key = "";
  seq = 0;
  value: Uint8Array | undefined = undefined;
  expiry = 0;

  abstract next(): boolean;

  close(): void {}

  /** Makes the entry current; true, for `return this.take(...)`. */
  protected take(
    key: string,
    seq: number,
    value: Uint8Array | undefined,
    expiry: number,
  ): true {
    this.key = key;
    this.seq = seq;
    this.value = value;
    this.expiry = expiry;
    return true;
  }
}

/** Entries of a memtable visible at `seq`, in range order. */
export class MemtableCursor extends Cursor {
  readonly #entries: Iterator<[string, Version]>;

  constructor(mem: Memtable, seq: number, range: RangeOptions) {
    super();
    this.#entries = mem.entries(seq, range);
  }

  next(): boolean {
    const r = this.#entries.next();
    if (r.done) return false;
    const [key, v] = r.value;
    return this.take(key, v.seq, v.value, v.expiry);
  }
}

/**
 * Every entry of `tables` (sorted and not overlapping, or just one table),
 * in key order, read sequentially without the block cache and as bytes
 * (a {@linkcode ByteCursor}): merge input.
 */
export class RunReader extends ByteCursor {
  #table = 0;
  #blocks: Iterator<{ contents: Uint8Array; offset: number }> | undefined;
  #path = "";

  constructor(private readonly tables: readonly TableReader[]) {
    super();
  }

  /** Moves to the run's next entry; false at its end. */
  override next(): boolean {
    while (!super.next()) {
      if (this.#blocks === undefined) {
        const t = this.tables[this.#table++];
        if (t === undefined) return false;
        this.#blocks = t.scanContents();
        this.#path = t.path;
      }
      const r = this.#blocks.next();
      if (r.done) this.#blocks = undefined;
      else this.enter(r.value.contents, this.#path, r.value.offset);
    }
    return true;
  }
}

/**
 * What writeTables writes from: entries in strictly increasing key order,
 * each added to a table writer as it is reached.
 */
export interface TableSource {
  /** Moves to the next entry; false at the end. */
  next(): boolean;
  /** Whether the current entry is a tombstone. */
  readonly tombstone: boolean;
  /** Adds the current entry to `writer`. */
  addTo(writer: TableWriter): void;
}

/** Whether run a's key sorts before run b's (bytewise). */
function keyBefore(a: ByteCursor, b: ByteCursor): number {
  const ka = a.key;
  const kb = b.key;
  const na = a.keyLength;
  const nb = b.keyLength;
  const n = na < nb ? na : nb;
  for (let i = 0; i < n; i++) {
    const d = ka[i]! - kb[i]!;
    if (d !== 0) return d;
  }
  return na - nb;
}

/**
 * Merges runs (newest first) into one stream in key order with one entry
 * per key, the newest, comparing keys as bytes: a merge job's table
 * source. Tombstones are kept; writeTables drops them at the bottom.
 */
export class RunMerge implements TableSource {
  #heap: number[] | undefined;
  /** As in {@linkcode MergeCursor}: the sources move at the next call. */
  #pending = false;
  /** The current key, kept while its sources move past it. */
  #key = new Uint8Array(64);

  constructor(private readonly runs: readonly RunReader[]) {}

  get tombstone(): boolean {
    return this.#top().valueLength < 0;
  }

  addTo(writer: TableWriter): void {
    const r = this.#top();
    writer.addBytes(
      r.key,
      0,
      r.keyLength,
      r.seq,
      r.expiry,
      r.block,
      r.valueAt,
      r.valueLength,
    );
  }

  #top(): RunReader {
    return this.runs[this.#heap![0]!]!;
  }

  next(): boolean {
    let heap = this.#heap;
    if (heap === undefined) {
      heap = this.#heap = [];
      for (let i = 0; i < this.runs.length; i++) {
        if (this.runs[i]!.next()) heap.push(i);
      }
      for (let i = (heap.length >>> 1) - 1; i >= 0; i--) this.#siftDown(i);
    } else if (this.#pending) {
      this.#pending = false;
      const top = this.#top();
      const n = top.keyLength;
      if (n > this.#key.length) this.#key = new Uint8Array(n * 2);
      const key = this.#key;
      const from = top.key;
      for (let i = 0; i < n; i++) key[i] = from[i]!;
      this.#advanceTop();
      // Older entries of the same key come next; they are passed over.
      while (heap.length > 0 && this.#topIs(key, n)) this.#advanceTop();
    }
    if (heap.length === 0) return false;
    this.#pending = true;
    return true;
  }

  /** Whether the top run's key is `key[0, n)`. */
  #topIs(key: Uint8Array, n: number): boolean {
    const r = this.#top();
    if (r.keyLength !== n) return false;
    const k = r.key;
    for (let i = n - 1; i >= 0; i--) if (k[i] !== key[i]) return false;
    return true;
  }

  #before(a: number, b: number): boolean {
    const d = keyBefore(this.runs[a]!, this.runs[b]!);
    return d === 0 ? a < b : d < 0;
  }

  #siftDown(i: number): void {
    const heap = this.#heap!;
    const n = heap.length;
    const id = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.#before(heap[child + 1]!, heap[child]!)) {
        child++;
      }
      if (!this.#before(heap[child]!, id)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = id;
  }

  #advanceTop(): void {
    const heap = this.#heap!;
    if (!this.runs[heap[0]!]!.next()) {
      const last = heap.pop()!;
      if (heap.length === 0) return;
      heap[0] = last;
    }
    this.#siftDown(0);
  }
}

/** Entries of one table within the range, in range order. */
export class TableCursor extends Cursor {
  /** The current block; -1 before the first call to next(). */
  #b = -1;
  /** Forward: the current block's cursor. */
  #cursor: BlockCursor | DecodedCursor | undefined;
  /** Reverse: the current block, decoded, and the current entry in it. */
  #block: DataBlock | undefined;
  #i = 0;
  #done = false;
  /** Forward: read-ahead state, made when the scan leaves its first block. */
  #ahead: ReadAhead | undefined;

  constructor(
    private readonly table: TableReader,
    private readonly range: RangeOptions,
  ) {
    super();
  }

  next(): boolean {
    if (this.#done) return false;
    const more = this.range.reverse === true
      ? this.#backward()
      : this.#forward();
    if (!more) this.close();
    return more;
  }

  #forward(): boolean {
    const { start, end } = this.range;
    const table = this.table;
    let c = this.#cursor;
    let more: boolean;
    if (this.#b < 0) {
      // Entries are parsed from the cached blocks in place; the block the
      // cursor is in stays pinned until it moves on, since the current
      // entry's value is a view into it.
      this.#b = start === undefined ? 0 : table.blockFor(start);
      if (this.#b >= table.blocks) return false;
      c = this.#cursor = table.cursor(this.#b);
      more = start === undefined ? c.first() : c.seek(start);
    } else {
      more = c!.next();
    }
    while (!more) {
      table.release(c!);
      this.#cursor = undefined;
      if (++this.#b >= table.blocks) return false;
      c = this.#cursor = table.nextCursor(
        this.#b,
        this.#ahead ??= new ReadAhead(),
      );
      more = c.first();
    }
    if (end !== undefined && c!.key >= end) return false;
    return this.take(c!.key, c!.seq, c!.value, c!.expiry);
  }

  override close(): void {
    this.#done = true;
    if (this.#cursor) this.table.release(this.#cursor);
    this.#cursor = undefined;
  }

  #backward(): boolean {
    const { start, end } = this.range;
    const table = this.table;
    let block = this.#block;
    if (this.#b < 0) {
      this.#b = end === undefined
        ? table.blocks - 1
        : Math.min(table.blockFor(end), table.blocks - 1);
      if (this.#b < 0) return false;
      block = this.#block = table.block(this.#b);
      this.#i = end === undefined
        ? block.keys.length - 1
        : lowerBound(block.keys, end) - 1;
    } else {
      this.#i--;
    }
    while (this.#i < 0) {
      if (--this.#b < 0) return false;
      block = this.#block = table.block(this.#b);
      this.#i = block.keys.length - 1;
    }
    const i = this.#i;
    const key = block!.keys[i]!;
    if (start !== undefined && key < start) return false;
    return this.take(
      key,
      block!.seqs[i]!,
      block!.values[i],
      block!.expiries[i]!,
    );
  }
}

/**
 * Entries of a level whose tables are sorted by key and do not overlap
 * (level 1 and above), in range order.
 */
export class LevelCursor extends Cursor {
  readonly #tables: TableReader[];
  #t = 0;
  #cursor: TableCursor | undefined;

  constructor(
    tables: readonly TableReader[],
    private readonly range: RangeOptions,
  ) {
    super();
    const { start, end, reverse = false } = range;
    this.#tables = tables.filter((t) =>
      (start === undefined || t.props.largest >= start) &&
      (end === undefined || t.props.smallest < end)
    );
    if (reverse) this.#tables.reverse();
  }

  next(): boolean {
    for (;;) {
      let c = this.#cursor;
      if (c === undefined) {
        const t = this.#tables[this.#t++];
        if (t === undefined) return false;
        c = this.#cursor = new TableCursor(t, this.range);
      }
      if (c.next()) return this.take(c.key, c.seq, c.value, c.expiry);
      this.#cursor = undefined;
    }
  }

  override close(): void {
    this.#cursor?.close();
    this.#cursor = undefined;
    this.#t = this.#tables.length;
  }
}

/**
 * Merges cursors (newest first) into one ordered stream with one entry per
 * key, the newest. Tombstones are kept; callers skip them.
 *
 * The cursors are kept in a binary heap ordered by current key, then by
 * cursor (newer first): a merge of level 0's many tables costs a few
 * comparisons per entry, not two per source.
 */
export class MergeCursor extends Cursor {
  #heap: number[] | undefined;
  /**
   * The current entry's sources still have to move past its key. They
   * move at the next call, not before it returns: the entry's value is a
   * view into its source's current block, which the source keeps only
   * while it stays there.
   */
  #pending = false;

  constructor(
    private readonly cursors: readonly EntryCursor[],
    private readonly reverse: boolean,
  ) {
    super();
  }

  next(): boolean {
    let heap = this.#heap;
    if (heap === undefined) {
      heap = this.#heap = [];
      for (let i = 0; i < this.cursors.length; i++) {
        if (this.cursors[i]!.next()) heap.push(i);
      }
      for (let i = (heap.length >>> 1) - 1; i >= 0; i--) this.#siftDown(i);
    } else if (this.#pending) {
      this.#pending = false;
      const key = this.key;
      this.#advanceTop();
      // Older entries of the same key come next (each cursor's keys
      // strictly increase); they are passed over.
      while (heap.length > 0 && this.cursors[heap[0]!]!.key === key) {
        this.#advanceTop();
      }
    }
    if (heap.length === 0) return false;
    const top = this.cursors[heap[0]!]!;
    this.#pending = true;
    return this.take(top.key, top.seq, top.value, top.expiry);
  }

  override close(): void {
    for (const c of this.cursors) c.close();
    this.#heap = [];
    this.#pending = false;
  }

  /** Whether cursor a's entry goes before cursor b's. */
  #before(a: number, b: number): boolean {
    const ka = this.cursors[a]!.key;
    const kb = this.cursors[b]!.key;
    if (ka === kb) return a < b;
    return this.reverse ? ka > kb : ka < kb;
  }

  #siftDown(i: number): void {
    const heap = this.#heap!;
    const n = heap.length;
    const id = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.#before(heap[child + 1]!, heap[child]!)) {
        child++;
      }
      if (!this.#before(heap[child]!, id)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = id;
  }

  /** Moves the cursor at the top of the heap to its next entry. */
  #advanceTop(): void {
    const heap = this.#heap!;
    if (!this.cursors[heap[0]!]!.next()) {
      const last = heap.pop()!;
      if (heap.length === 0) return;
      heap[0] = last;
    }
    this.#siftDown(0);
  }
}
