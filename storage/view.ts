/**
 * Reads across the store's sources: the mutable memtable, the frozen ones
 * waiting for flush, and the tables of a version. A View pins one set of
 * sources at one sequence number for scans and snapshots.
 *
 * Invariants:
 * - Sources are consulted newest first: memtable, frozen memtables (newest
 *   first), level 0 (newest first), then deeper levels. The first entry
 *   found for a key, value or tombstone, is the answer.
 * - A pinned view keeps its memtable's versions (a registered reader) and
 *   its tables (a version reference) until released.
 */

import type { Memtable, RangeOptions } from "./memtable.ts";
import {
  type EntryCursor,
  MemtableCursor,
  MergeCursor,
  TableReverse,
  TableScan,
} from "./merge.ts";
import {
  putBloomHashesOfBytes,
  tableHit,
  type TableReader,
} from "./sstable/mod.ts";
import { ReadKey } from "./input.ts";
import type { Version } from "./version.ts";
import { bufferPool, putBinary, resultPool } from "../util/mod.ts";

/** The sources of a read. `imms` is ordered newest first. */
export interface Sources {
  mem: Memtable;
  imms: readonly Memtable[];
  version: Version;
}

/**
 * The table of sorted, non-overlapping level `l` of `version` that may
 * hold `key`.
 */
function tableFor(
  version: Version,
  l: number,
  key: string,
): TableReader | undefined {
  // Tables sorted by smallest key: the candidate is the last one starting
  // at or before key.
  const smallest = version.smallest[l]!;
  let lo = 0;
  let hi = smallest.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (smallest[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && key <= version.largest[l]![lo - 1]!
    ? version.levels[l]![lo - 1]
    : undefined;
}

/**
 * A copy of the value of `key` visible at `seq` (from the pool of
 * results), or undefined when absent or deleted. Synchronous: table blocks
 * are read with readSync.
 */
export function lookup(
  sources: Sources,
  key: ReadKey,
  seq: number,
): Uint8Array | undefined {
  // The filter hashes, computed once for every memtable and table probed.
  const { bytes, length } = key;
  putBloomHashesOfBytes(bytes, 0, length, h1s, h2s, 0);
  const h1 = h1s[0]!;
  if (seq === Number.POSITIVE_INFINITY) {
    // The newest version: from the key's record alone.
    const r = sources.mem.findRecord(bytes, length, h1);
    if (r !== -1) return sources.mem.copyNewest(r, resultPool);
    for (const imm of sources.imms) {
      const ir = imm.findRecord(bytes, length, h1);
      if (ir !== -1) return imm.copyNewest(ir, resultPool);
    }
  } else {
    const v = sources.mem.findBytes(bytes, length, seq, h1);
    if (v !== -1) return sources.mem.copyValue(v, resultPool);
    for (const imm of sources.imms) {
      const iv = imm.findBytes(bytes, length, seq, h1);
      if (iv !== -1) return imm.copyValue(iv, resultPool);
    }
  }
  const version = sources.version;
  const levels = version.levels;
  const h2 = h2s[0]!;
  const k = key.binary;
  const l0 = levels[0]!;
  for (let i = l0.length - 1; i >= 0; i--) {
    const c = l0[i]!.find(k, h1, h2);
    if (c !== undefined && tableHit.seq <= seq) return copyHit(c);
  }
  for (let l = 1; l < levels.length; l++) {
    const t = tableFor(version, l, k);
    if (!t) continue;
    const c = t.find(k, h1, h2);
    if (c !== undefined && tableHit.seq <= seq) return copyHit(c);
  }
  return undefined;
}

/**
 * A copy (from the pool of results) of the value of the entry a table's
 * find() just found in block contents `c`; undefined for a tombstone.
 */
function copyHit(c: Uint8Array): Uint8Array | undefined {
  const { valueAt, valueLength } = tableHit;
  return valueLength < 0
    ? undefined
    : resultPool.copy(c, valueAt, valueAt + valueLength);
}

/** Where {@linkcode lookup} puts a key's filter hashes. */
const h1s = new Uint32Array(1);
const h2s = new Uint32Array(1);

/** The key a read of a binary-string key (already checked) probes with. */
const binaryKey = new ReadKey();

/** {@linkcode lookup} of a key given as a binary string. */
export function lookupBinary(
  sources: Sources,
  key: string,
  seq: number,
): Uint8Array | undefined {
  return lookup(sources, binaryKey.setBinary(key), seq);
}

/**
 * Every source's entries in the range, merged: one (newest) per key,
 * tombstones included.
 */
export function mergedEntries(
  sources: Sources,
  seq: number,
  range: RangeOptions,
): MergeCursor {
  const cursors: EntryCursor[] = [
    new MemtableCursor(sources.mem, seq, range),
  ];
  for (const imm of sources.imms) {
    cursors.push(new MemtableCursor(imm, seq, range));
  }
  const { end, reverse = false } = range;
  // The bound is the scan's own, not a result's: from the pool of working
  // buffers, where no caller can detach it (by transferring a value).
  const endBytes = end === undefined ? undefined : workingBytes(end);
  const tables = (run: readonly TableReader[]) =>
    reverse
      ? new TableReverse(run, range)
      : new TableScan(run, range, endBytes);
  const levels = sources.version.levels;
  const l0 = levels[0]!;
  for (let i = l0.length - 1; i >= 0; i--) cursors.push(tables([l0[i]!]));
  for (let l = 1; l < levels.length; l++) {
    if (levels[l]!.length > 0) cursors.push(tables(levels[l]!));
  }
  return new MergeCursor(cursors, reverse);
}

/** Sources pinned at a sequence number until released. */
export class View implements Sources {
  #released = false;
  /** Holds taken with hold() and not yet let go. */
  #holds = 0;
  #freed = false;

  constructor(
    readonly seq: number,
    readonly mem: Memtable,
    readonly imms: readonly Memtable[],
    readonly version: Version,
    /** Settles once every write issued before the view is applied. */
    readonly settled: Promise<void> | undefined,
  ) {
    mem.readers.add(seq);
    mem.pin();
    for (const imm of imms) imm.pin();
    version.ref();
  }

  /** Whether release() was called. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Another holder of the sources (a snapshot's scan, which may outlive the
   * snapshot's release): they stay pinned until it lets go too. Returns its
   * let-go function (safe to call twice), or undefined when the view was
   * released already.
   */
  hold(): (() => void) | undefined {
    if (this.#released) return undefined;
    this.#holds++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#holds--;
      this.#free();
    };
  }

  /**
   * Unpins the sources, or lets the last {@linkcode hold} do it. Safe to
   * call twice.
   */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#free();
  }

  #free(): void {
    if (!this.#released || this.#holds > 0 || this.#freed) return;
    this.#freed = true;
    this.mem.readers.remove(this.seq);
    this.mem.unpin();
    for (const imm of this.imms) imm.unpin();
    this.version.unref();
  }
}

/** Bytes of binary string `binary` from the pool of working buffers. */
function workingBytes(binary: string): Uint8Array {
  const out = bufferPool.alloc(binary.length);
  putBinary(out, 0, binary);
  return out;
}
