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
import type { Memtable, RangeOptions } from "./memtable.ts";
import type { TableReader } from "./sstable/mod.ts";

/** One entry of a source; value undefined is a tombstone. */
export interface SourceEntry {
  key: string;
  seq: number;
  /**
   * The value: a binary string (memtables) or a view into a table block
   * (read-only); undefined for a tombstone.
   */
  value: string | Uint8Array | undefined;
  expiry: number;
}

/** Entries of a memtable visible at `seq`, in range order. */
export function* memtableSource(
  mem: Memtable,
  seq: number,
  range: RangeOptions,
): Generator<SourceEntry> {
  for (const [key, v] of mem.entries(seq, range)) {
    yield { key, seq: v.seq, value: v.value, expiry: v.expiry };
  }
}

/**
 * A memtable's newest entry per key, tombstones included, in the order the
 * keys were first written: a flush's input, which the job sorts.
 */
export function* flushSource(mem: Memtable): Generator<SourceEntry> {
  for (const [key, v] of mem.newest()) {
    yield { key, seq: v.seq, value: v.value, expiry: v.expiry };
  }
}

/** Entries of one table within the range, in range order. */
export function* tableSource(
  table: TableReader,
  range: RangeOptions,
): Generator<SourceEntry> {
  const { start, end, reverse = false } = range;
  const blocks = table.blocks;
  if (!reverse) {
    // Forward: entries are parsed from the cached blocks in place.
    let b = start === undefined ? 0 : table.blockFor(start);
    let seeking = start !== undefined;
    for (; b < blocks; b++) {
      const c = table.cursor(b);
      let more = seeking ? c.seek(start!) : c.first();
      seeking = false;
      for (; more; more = c.next()) {
        const key = c.key;
        if (end !== undefined && key >= end) return;
        yield { key, seq: c.seq, value: c.value, expiry: c.expiry };
      }
    }
    return;
  }
  let b = end === undefined
    ? blocks - 1
    : Math.min(table.blockFor(end), blocks - 1);
  let first = true;
  for (; b >= 0; b--) {
    const block = table.block(b);
    let i = first && end !== undefined
      ? lowerBound(block.keys, end) - 1
      : block.keys.length - 1;
    first = false;
    for (; i >= 0; i--) {
      const key = block.keys[i]!;
      if (start !== undefined && key < start) return;
      yield {
        key,
        seq: block.seqs[i]!,
        value: block.values[i],
        expiry: block.expiries[i]!,
      };
    }
  }
}

/**
 * Every entry of `tables` (sorted and not overlapping, or just one table),
 * in key order, read sequentially without the block cache: merge input.
 */
export function* fullScan(
  tables: readonly TableReader[],
): Generator<SourceEntry> {
  for (const t of tables) {
    for (const c of t.scanCursors()) {
      for (let more = c.first(); more; more = c.next()) {
        yield { key: c.key, seq: c.seq, value: c.value, expiry: c.expiry };
      }
    }
  }
}

/**
 * Entries of a level whose tables are sorted by key and do not overlap
 * (level 1 and above), in range order.
 */
export function* levelSource(
  tables: readonly TableReader[],
  range: RangeOptions,
): Generator<SourceEntry> {
  const { start, end, reverse = false } = range;
  const overlaps = (t: TableReader) =>
    (start === undefined || t.props.largest >= start) &&
    (end === undefined || t.props.smallest < end);
  if (!reverse) {
    for (const t of tables) if (overlaps(t)) yield* tableSource(t, range);
  } else {
    for (let i = tables.length - 1; i >= 0; i--) {
      const t = tables[i]!;
      if (overlaps(t)) yield* tableSource(t, range);
    }
  }
}

/**
 * Merges sources (newest first) into one ordered stream with one entry per
 * key, the newest. Tombstones are yielded; callers skip them.
 *
 * The sources' heads are kept in a binary heap ordered by key, then by
 * source (newer first): a merge of level 0's many tables costs a few
 * comparisons per entry, not two per source.
 */
export function* mergeSources(
  sources: Array<Iterator<SourceEntry>>,
  reverse: boolean,
): Generator<SourceEntry> {
  const heads: Array<SourceEntry | undefined> = [];
  const heap: number[] = [];
  // Whether source a's head goes before source b's.
  const before = (a: number, b: number): boolean => {
    const ka = heads[a]!.key;
    const kb = heads[b]!.key;
    if (ka === kb) return a < b;
    return reverse ? ka > kb : ka < kb;
  };
  const siftDown = (i: number): void => {
    const n = heap.length;
    const id = heap[i]!;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(heap[child + 1]!, heap[child]!)) child++;
      if (!before(heap[child]!, id)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = id;
  };
  // Moves the source at the top of the heap to its next entry.
  const advanceTop = (): void => {
    const id = heap[0]!;
    const r = sources[id]!.next();
    if (r.done) {
      heads[id] = undefined;
      const last = heap.pop()!;
      if (heap.length === 0) return;
      heap[0] = last;
    } else {
      heads[id] = r.value;
    }
    siftDown(0);
  };
  for (let i = 0; i < sources.length; i++) {
    const r = sources[i]!.next();
    heads.push(r.done ? undefined : r.value);
    if (!r.done) heap.push(i);
  }
  for (let i = (heap.length >>> 1) - 1; i >= 0; i--) siftDown(i);
  while (heap.length > 0) {
    const winner = heads[heap[0]!]!;
    const key = winner.key;
    advanceTop();
    // Older entries of the same key come next (each source's keys strictly
    // increase); they are passed over.
    while (heap.length > 0 && heads[heap[0]!]!.key === key) advanceTop();
    yield winner;
  }
}
