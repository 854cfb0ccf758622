/**
 * The in-memory table of recent writes, with versions: each key maps to a
 * chain of versions, newest first, so that a reader pinned at sequence S
 * sees the newest version with seq <= S while writers go on.
 *
 * Keys are binary strings (one char per byte): V8 allocates and compares
 * them far faster than small Uint8Arrays. Values are the bytes a put
 * copied into the value pool (`input.ts`), shared with its WAL op: they are
 * written out and copied out with a memcpy, not a loop over chars. (Gets
 * from memory did not get faster with them: their cost is cache misses,
 * and a view costs one more than a string.) A hash index serves
 * point lookups: a Map from a key's 30-bit hash (the bloom filters' first
 * hash, `bloomHash1`, which a read computes anyway) to the newest version of
 * the key, the newest versions of keys sharing a hash chained through
 * `sibling`. A Map keyed by the string itself would hash every new string
 * afresh, which costs V8 about 0.26 µs for a 16-byte key: as much as the
 * rest of a get from memory. A B+tree of the same keys serves ordered
 * iteration, looking each key up in the index.
 *
 * The B+tree is kept lazily: a new key is appended to a list, and the list
 * is sorted into the tree only when an ordered iteration asks for it. A
 * memtable that is written and then flushed never builds its tree: the
 * flush hands its keys over in insertion order and the job sorts them off
 * the store's thread. Inserting a random key into the tree cost about as
 * much as the rest of a put.
 *
 * Invariants:
 * - In a chain, sequence numbers strictly decrease from newest to oldest.
 * - A version is dropped only when no pinned reader can see it: the chain
 *   keeps every version newer than the oldest pinned sequence (in the
 *   store-wide ReaderRegistry), plus the newest version at or below it.
 * - Every key of `index` is in exactly one of `tree` and `unsorted`;
 *   `liveKeys` counts keys whose newest version is not a tombstone.
 * - `index` maps `hashSlot(bloomHash1(key))` to a chain (through `sibling`)
 *   of the newest versions of the keys with that hash, one per key.
 */
import { assert } from "../util/mod.ts";
import { type MapPosition, SortedMap } from "./sorted_map.ts";
import { bloomHash1 } from "./sstable/bloom.ts";

/** One version of a key; `value` undefined is a tombstone. */
export interface Version {
  seq: number;
  /** The value's bytes; no one changes them. */
  value: Uint8Array | undefined;
  expiry: number;
  older: Version | undefined;
}

/** A version as the memtable keeps it: with its key, for the hash index. */
interface Entry extends Version {
  key: string;
  /** Newest version of the next key with the same hash (heads only). */
  sibling: Entry | undefined;
}

/** The index slot of a key with `bloomHash1` `h1`: a small integer. */
export function hashSlot(h1: number): number {
  return h1 & 0x3fffffff;
}

/** Rough bytes of bookkeeping per version, for memory accounting. */
const VERSION_OVERHEAD_BYTES = 48;
/** Rough bytes of bookkeeping per key (index and tree entries). */
const KEY_OVERHEAD_BYTES = 96;

/** Bounds and direction of an iteration over binary-string keys. */
export interface RangeOptions {
  /** Inclusive lower bound. */
  start?: string | undefined;
  /** Exclusive upper bound. */
  end?: string | undefined;
  reverse?: boolean | undefined;
}

/**
 * The sequence numbers readers are pinned at, shared by every memtable of a
 * store: a reader pinned at S keeps, in every memtable (including ones
 * created after it was pinned), the newest version at or below S.
 */
export class ReaderRegistry {
  #readers = new Map<number, number>();
  #oldest = Number.POSITIVE_INFINITY;

  /** The smallest pinned sequence number (Infinity when none). */
  get oldest(): number {
    return this.#oldest;
  }

  /** Pins a reader at `seq`. */
  add(seq: number): void {
    this.#readers.set(seq, (this.#readers.get(seq) ?? 0) + 1);
    if (seq < this.#oldest) this.#oldest = seq;
  }

  /** Unpins a reader added with {@linkcode add}. */
  remove(seq: number): void {
    const n = this.#readers.get(seq);
    assert(n !== undefined, "remove of an unknown reader");
    if (n > 1) {
      this.#readers.set(seq, n - 1);
      return;
    }
    this.#readers.delete(seq);
    if (seq === this.#oldest) {
      let oldest = Number.POSITIVE_INFINITY;
      for (const s of this.#readers.keys()) if (s < oldest) oldest = s;
      this.#oldest = oldest;
    }
  }
}

/** Versioned sorted table of recent writes. */
export class Memtable {
  /** `readers` decides which old versions must be kept. */
  constructor(readonly readers: ReaderRegistry = new ReaderRegistry()) {}

  #index = new Map<number, Entry>();
  #keys = 0;
  #tree = new SortedMap<true>();
  /** Keys of `index` not yet in `tree`, in insertion order. */
  #unsorted: string[] = [];
  #liveKeys = 0;
  #bytes = 0;
  #lastSeq = 0;

  /** Sequence number of the last write applied (0 when empty). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Number of distinct keys (tombstones included). */
  get size(): number {
    return this.#keys;
  }

  /** Keys whose newest version is a value. */
  get liveKeys(): number {
    return this.#liveKeys;
  }

  /** Approximate memory held by keys, values and versions. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Bytes of writes issued to this memtable but not yet applied (waiting
   * for their fsync). Counted when deciding to freeze, so that a burst of
   * writes cannot overshoot the memtable size before any is applied.
   */
  reserved = 0;

  /** Applies a write at sequence `seq`; a tombstone when value is undefined. */
  apply(
    seq: number,
    key: string,
    value: Uint8Array | undefined,
    expiry: number,
  ): void {
    const slot = hashSlot(bloomHash1(key));
    const first = this.#index.get(slot);
    let before: Entry | undefined;
    let newest = first;
    while (newest !== undefined && newest.key !== key) {
      before = newest;
      newest = newest.sibling;
    }
    if (seq > this.#lastSeq) this.#lastSeq = seq;
    this.#bytes += VERSION_OVERHEAD_BYTES + (value ? value.length : 0);
    if (!newest) {
      const head: Entry = {
        seq,
        value,
        expiry,
        older: undefined,
        key,
        sibling: first,
      };
      this.#index.set(slot, head);
      this.#unsorted.push(key);
      this.#keys++;
      this.#bytes += key.length + KEY_OVERHEAD_BYTES;
      if (value !== undefined) this.#liveKeys++;
      return;
    }
    assert(seq > newest.seq, "memtable sequence must increase");
    const head: Entry = {
      seq,
      value,
      expiry,
      older: newest,
      key,
      sibling: newest.sibling,
    };
    newest.sibling = undefined;
    if (before === undefined) this.#index.set(slot, head);
    else before.sibling = head;
    this.#prune(head);
    const wasLive = newest.value !== undefined;
    const isLive = value !== undefined;
    if (wasLive !== isLive) this.#liveKeys += isLive ? 1 : -1;
  }

  /** Drops versions below `head` that no registered reader can see. */
  #prune(head: Version): void {
    let v = head;
    const oldest = this.readers.oldest;
    while (v.older && v.seq > oldest) v = v.older;
    let dropped = v.older;
    v.older = undefined;
    while (dropped) {
      this.#bytes -= VERSION_OVERHEAD_BYTES +
        (dropped.value ? dropped.value.length : 0);
      dropped = dropped.older;
    }
  }

  /**
   * The version of `key` visible at `seq` (tombstones included). `h1` is
   * the key's `bloomHash1`, when the caller has it already.
   */
  get(
    key: string,
    seq = Number.POSITIVE_INFINITY,
    h1: number = bloomHash1(key),
  ): Version | undefined {
    let head = this.#index.get(hashSlot(h1));
    while (head !== undefined && head.key !== key) head = head.sibling;
    let v: Version | undefined = head;
    while (v && v.seq > seq) v = v.older;
    return v;
  }

  /**
   * Every key's newest version (tombstones included), with its key, in no
   * particular order: what a flush writes out, without the ordering that
   * iteration needs.
   */
  *newest(): Generator<Version & { key: string }> {
    for (const first of this.#index.values()) {
      for (let v: Entry | undefined = first; v; v = v.sibling) yield v;
    }
  }

  /** Sorts the keys written since the last ordering into the tree. */
  #order(): void {
    const keys = this.#unsorted;
    if (keys.length === 0) return;
    this.#unsorted = [];
    // The default sort compares UTF-16 code units: for binary strings,
    // bytewise order.
    keys.sort();
    for (const key of keys) this.#tree.set(key, true);
  }

  /**
   * Yields [key, version] pairs in key order within the range, as visible at
   * `seq`, skipping keys with no version at or below it. Tombstones are
   * yielded; callers filter them. Safe to interleave with apply(): after an
   * insert it seeks again past the last key it yielded.
   */
  *entries(
    seq: number,
    range: RangeOptions,
  ): Generator<[string, Version]> {
    const { start, end, reverse = false } = range;
    const tree = this.#tree;
    this.#order();
    let pos: MapPosition<true> | undefined = reverse
      ? tree.seekLT(end)
      : tree.seekGE(start);
    let mutations = tree.mutations;
    while (pos) {
      const key = tree.keyAt(pos);
      if (!reverse && end !== undefined && key >= end) return;
      if (reverse && start !== undefined && key < start) return;
      const v = this.get(key, seq);
      if (v) yield [key, v];
      // Keys written while the caller held the entry join the order now.
      this.#order();
      if (tree.mutations !== mutations) {
        mutations = tree.mutations;
        // key + "\0" is the smallest binary string greater than key.
        pos = reverse ? tree.seekLT(key) : tree.seekGE(key + "\u0000");
        continue;
      }
      if (!tree.step(pos, reverse)) return;
    }
  }
}
