/**
 * Ordered iteration over the store's sources — memtables and tables — and
 * the merge that gives each key's newest entry. Pure over its inputs.
 *
 * Every cursor here works on bytes: its current key is in its own buffer,
 * its value where it lies (a block, a memtable's arena), and a merge
 * compares keys as bytes. No string or view is made per entry; a scan
 * copies out only the entries it returns.
 *
 * Invariants:
 * - Every source yields strictly increasing keys (decreasing in reverse),
 *   each within the range [start, end).
 * - Sources are passed newest first; for a key present in several, the
 *   merge yields the entry of the first (newest) one.
 */
import { type Memtable, MemtableWalk, type RangeOptions } from "./memtable.ts";
import {
  type CachedBlock,
  type DataBlock,
  ReadAhead,
  type TableReader,
  type TableWriter,
} from "./sstable/mod.ts";
import { ByteCursor, ByteEntry, KEY_BUFFER_BYTES } from "./sstable/block.ts";
import { bufferPool, lowerBound } from "../util/mod.ts";

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
 * A position in entries of strictly increasing keys (decreasing, for a
 * reverse scan), the current entry in the {@linkcode ByteEntry} fields:
 * `next()` moves to the next one (to the first, on its first call),
 * returning false at the end. The current value's bytes stay where they
 * are until the next call.
 */
export interface EntryCursor extends ByteEntry {
  next(): boolean;
  /**
   * Done early: lets go of what the cursor holds (pinned cache blocks).
   * A cursor that ran to its end has let go already.
   */
  close(): void;
}

/**
 * An entry with its key as a binary string and its value as a view, as a
 * flush job's entries can be read (see FlushCursor).
 */
export abstract class Cursor {
  key = "";
  seq = 0;
  value: Uint8Array | undefined = undefined;
  expiry = 0;

  abstract next(): boolean;

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

/**
 * Entries of a memtable visible at `seq`, in range order, read from its
 * arena as bytes.
 */
export class MemtableCursor extends ByteEntry implements EntryCursor {
  readonly #walk: MemtableWalk;

  constructor(
    private readonly mem: Memtable,
    seq: number,
    range: RangeOptions,
  ) {
    super();
    this.#walk = new MemtableWalk(seq, range);
  }

  next(): boolean {
    return this.mem.step(this.#walk, this);
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

/** Compares the keys of entries a and b bytewise, like memcmp. */
function compareEntries(a: ByteEntry, b: ByteEntry): number {
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

/** Compares entry `e`'s key with `key[0, n)` bytewise, like memcmp. */
function compareKey(e: ByteEntry, key: Uint8Array, n: number): number {
  const k = e.key;
  const m = e.keyLength < n ? e.keyLength : n;
  for (let i = 0; i < m; i++) {
    const d = k[i]! - key[i]!;
    if (d !== 0) return d;
  }
  return e.keyLength - n;
}

/**
 * Merges cursors (newest first) into one ordered stream with one entry per
 * key, the newest, comparing keys as bytes. Tombstones are kept; callers
 * skip them (writeTables drops them at the bottom).
 *
 * The cursors are kept in a binary heap ordered by current key, then by
 * cursor (newer first): a merge of level 0's many tables costs a few
 * comparisons per entry, not two per source. The current entry is the
 * {@linkcode top} cursor's. When one source holds most of a range, its
 * entries cost one comparison each: the heap remembers which child of the
 * root is the smaller while the root stays, and whether the root's key is
 * also another cursor's (only then does moving past it copy the key and
 * pass over the older entries).
 */
export class MergeCursor<C extends EntryCursor = EntryCursor> {
  #heap: number[] | undefined;
  /**
   * The current entry's sources still have to move past its key. They
   * move at the next call, not before it returns: the entry's value lies
   * in its source's current block, which the source keeps only while it
   * stays there.
   */
  #pending = false;
  /** Whether another cursor is at the top cursor's key too. */
  #tied = false;
  /**
   * The heap slot (1 or 2) of the root's smaller child; 0 when not known.
   * Children move only when the root changes, which forgets it.
   */
  #child = 0;
  /**
   * The current key, kept while its sources move past it (made at the
   * first tie).
   */
  #key: Uint8Array | undefined;

  constructor(
    protected readonly cursors: readonly C[],
    private readonly reverse = false,
  ) {}

  /** The cursor holding the current entry. REQUIRES: next() was true. */
  get top(): C {
    return this.cursors[this.#heap![0]!]!;
  }

  /** Moves to the next key's newest entry; false at the end. */
  next(): boolean {
    let heap = this.#heap;
    if (heap === undefined) {
      heap = this.#heap = [];
      for (let i = 0; i < this.cursors.length; i++) {
        if (this.cursors[i]!.next()) heap.push(i);
      }
      for (let i = (heap.length >>> 1) - 1; i >= 0; i--) this.#siftDown(i);
      this.#rootMoved();
    } else if (this.#pending) {
      this.#pending = false;
      if (!this.#tied) {
        this.#advanceTop();
      } else {
        const top = this.top;
        const n = top.keyLength;
        let key = this.#key;
        if (key === undefined || n > key.length) {
          key = this.#key = bufferPool.alloc(Math.max(n * 2, KEY_BUFFER_BYTES));
        }
        const from = top.key;
        for (let i = 0; i < n; i++) key[i] = from[i]!;
        this.#advanceTop();
        // Older entries of the same key come next (each cursor's keys
        // strictly increase); they are passed over.
        while (heap.length > 0 && compareKey(this.top, key, n) === 0) {
          this.#advanceTop();
        }
      }
    }
    if (heap.length === 0) return false;
    this.#pending = true;
    return true;
  }

  /** Done early: closes every cursor. */
  close(): void {
    for (const c of this.cursors) c.close();
    this.#heap = [];
    this.#pending = false;
    this.#tied = false;
    this.#child = 0;
  }

  /**
   * Compares cursor a's entry with cursor b's in the merge's order:
   * negative when a's key goes first, zero for the same key.
   */
  #order(a: number, b: number): number {
    const d = compareEntries(this.cursors[a]!, this.cursors[b]!);
    return this.reverse ? -d : d;
  }

  /** Whether cursor a's entry goes before cursor b's. */
  #before(a: number, b: number): boolean {
    const d = this.#order(a, b);
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

  /**
   * A new cursor is at the root: forgets its smaller child, and finds
   * whether a child (the rest's smallest is one) has the root's key.
   */
  #rootMoved(): void {
    const heap = this.#heap!;
    this.#child = 0;
    const root = heap[0]!;
    this.#tied = (heap.length > 1 && this.#order(root, heap[1]!) === 0) ||
      (heap.length > 2 && this.#order(root, heap[2]!) === 0);
  }

  /** Moves the cursor at the top of the heap to its next entry. */
  #advanceTop(): void {
    const heap = this.#heap!;
    const root = heap[0]!;
    if (!this.cursors[root]!.next()) {
      const last = heap.pop()!;
      if (heap.length === 0) {
        this.#tied = false;
        return;
      }
      heap[0] = last;
      this.#siftDown(0);
      return this.#rootMoved();
    }
    const n = heap.length;
    if (n === 1) return;
    // The root's smaller child is the smallest of the rest: one comparison
    // with it tells whether the root stays, and whether a tie is left.
    let c = this.#child;
    if (c === 0) {
      c = n > 2 && this.#before(heap[2]!, heap[1]!) ? 2 : 1;
      this.#child = c;
    }
    const child = heap[c]!;
    const d = this.#order(root, child);
    if (d < 0 || (d === 0 && root < child)) {
      this.#tied = d === 0;
      return;
    }
    this.#siftDown(0);
    this.#rootMoved();
  }
}

/**
 * Merges runs (newest first) into one stream in key order with one entry
 * per key, the newest: a merge job's table source.
 */
export class RunMerge extends MergeCursor<RunReader> implements TableSource {
  constructor(runs: readonly RunReader[]) {
    super(runs);
  }

  get tombstone(): boolean {
    return this.top.valueLength < 0;
  }

  addTo(writer: TableWriter): void {
    const r = this.top;
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
}

/**
 * How many of `tables` (sorted by key, not overlapping) have `bound` below
 * `key`: a binary search, since `bound` (smallest or largest) rises with
 * the index.
 */
function tablesBelow(
  tables: readonly TableReader[],
  bound: "smallest" | "largest",
  key: string,
): number {
  let lo = 0;
  let hi = tables.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (tables[mid]!.props[bound] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Entries of tables sorted by key and not overlapping (a level above 0, or
 * one table) from `start` on, below `end` (the range's end as bytes),
 * parsed in place from the cached blocks. The block the cursor is in stays
 * pinned until it moves on: the current value lies in it.
 */
export class TableScan extends ByteCursor implements EntryCursor {
  /** The current table's index in `tables`; -1 before the first. */
  #t = -1;
  /** The current block of the current table. */
  #b = 0;
  #pinned: CachedBlock | undefined;
  /** Read-ahead state of the current table, made when a scan leaves its first block. */
  #ahead: ReadAhead | undefined;
  #done = false;

  constructor(
    private readonly tables: readonly TableReader[],
    private readonly range: RangeOptions,
    /** The range's end as bytes. */
    private readonly end: Uint8Array | undefined,
  ) {
    super();
  }

  override next(): boolean {
    if (this.#done) return false;
    let more = this.#t < 0 ? this.#first() : super.next();
    while (!more) {
      if (!this.#nextBlock()) {
        this.close();
        return false;
      }
      more = super.next();
    }
    const end = this.end;
    if (end !== undefined && compareKey(this, end, end.length) >= 0) {
      this.close();
      return false;
    }
    return true;
  }

  /** Moves to the first entry at or after `start` in the first table. */
  #first(): boolean {
    const { start, end } = this.range;
    // The first table whose largest key is at or after start.
    this.#t = start === undefined
      ? 0
      : tablesBelow(this.tables, "largest", start);
    const t = this.tables[this.#t];
    if (t === undefined || (end !== undefined && t.props.smallest >= end)) {
      this.#t = this.tables.length;
      return false;
    }
    const b = start === undefined ? 0 : t.blockFor(start);
    if (b >= t.blocks) {
      this.#b = t.blocks;
      return false;
    }
    this.#enter(t, b, t.pinFirst(b));
    return start === undefined ? super.next() : this.seek(start);
  }

  /** Enters the next block, of this table or the next; false at the end. */
  #nextBlock(): boolean {
    this.#unpin();
    let t = this.tables[this.#t];
    if (t === undefined) return false;
    if (++this.#b < t.blocks) {
      const { contents, pinned } = t.nextBlock(
        this.#b,
        this.#ahead ??= new ReadAhead(),
      );
      this.#enterContents(t, this.#b, contents, pinned);
      return true;
    }
    t = this.tables[++this.#t];
    const end = this.range.end;
    if (t === undefined || (end !== undefined && t.props.smallest >= end)) {
      return false;
    }
    this.#ahead = undefined;
    this.#enter(t, 0, t.pin(0));
    return true;
  }

  #enter(t: TableReader, b: number, c: CachedBlock): void {
    this.#enterContents(t, b, c.raw, c);
  }

  #enterContents(
    t: TableReader,
    b: number,
    contents: Uint8Array,
    pinned: CachedBlock | undefined,
  ): void {
    this.#b = b;
    this.#pinned = pinned;
    this.enter(contents, t.path, t.index.offsets[b]!);
  }

  #unpin(): void {
    const c = this.#pinned;
    if (c === undefined) return;
    this.#pinned = undefined;
    this.tables[this.#t]!.unpin(c);
  }

  override close(): void {
    this.#done = true;
    this.#unpin();
  }
}

/**
 * Entries of tables sorted by key and not overlapping (a level above 0, or
 * one table) within the range, in descending order, from their decoded
 * blocks.
 */
export class TableReverse extends ByteEntry implements EntryCursor {
  /** The current table's index in `tables`. */
  #t: number;
  /** The current block; -1 before the first of the current table. */
  #b = -1;
  #block: DataBlock | undefined;
  #i = 0;
  #done = false;

  constructor(
    private readonly tables: readonly TableReader[],
    private readonly range: RangeOptions,
  ) {
    super();
    // The last table whose smallest key is before the end.
    this.#t = range.end === undefined
      ? tables.length - 1
      : tablesBelow(tables, "smallest", range.end) - 1;
  }

  next(): boolean {
    if (this.#done) return false;
    const { start, end } = this.range;
    let block = this.#block;
    for (;;) {
      const table = this.tables[this.#t];
      if (
        table === undefined ||
        (start !== undefined && table.props.largest < start)
      ) {
        return this.#finish();
      }
      if (block === undefined) {
        this.#b = end === undefined
          ? table.blocks - 1
          : Math.min(table.blockFor(end), table.blocks - 1);
        if (this.#b < 0) {
          this.#t--;
          continue;
        }
        block = table.block(this.#b);
        this.#i = end === undefined
          ? block.keys.length
          : lowerBound(block.keys, end);
      }
      if (--this.#i >= 0) break;
      if (--this.#b < 0) {
        block = undefined;
        this.#t--;
        continue;
      }
      block = table.block(this.#b);
      this.#i = block.keys.length;
    }
    this.#block = block;
    const i = this.#i;
    const key = block.keys[i]!;
    if (start !== undefined && key < start) return this.#finish();
    this.setKey(key);
    this.setValue(block.values[i]);
    this.seq = block.seqs[i]!;
    this.expiry = block.expiries[i]!;
    return true;
  }

  #finish(): false {
    this.#done = true;
    this.#block = undefined;
    return false;
  }

  override close(): void {
    this.#finish();
  }
}
