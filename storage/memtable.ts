/**
 * The in-memory table of recent writes, with versions: each key has a chain
 * of versions, newest first, so that a reader pinned at sequence S sees the
 * newest version with seq <= S while writers go on.
 *
 * Layout: no JavaScript object per key or version. Each key has a record
 * in one byte arena: a header of Int32s (its hash, its length, and its
 * newest version's row, value offset and value length), the key's bytes,
 * then its first value's; later values are appended where the arena ends.
 * Each version is a row of typed-array columns (seq, expiry, older
 * version, key and value offsets and lengths). An open-addressing hash
 * table of Int32s maps a key's hash (the bloom filters' first hash,
 * `bloomHash1`, which a read computes anyway) to its record. A get of the
 * newest version is then a probe of the table, and a compare of the key
 * and a copy of the value in neighbouring bytes of the record: two cache
 * misses where a Map of objects and strings took five (and three when the
 * probe went through the version row: 15% more gets from a memtable of
 * 100k keys with the record header), and the garbage collector, which had
 * to trace and copy three objects per write, has a few large arrays to
 * look at.
 *
 * Ordered iteration uses a B+tree of the keys as binary strings, each
 * mapped to its record, built lazily: a new key's version row is appended
 * to a list, made a string and sorted into the tree only when an ordered
 * iteration asks for it. A memtable that is written and then flushed never
 * builds its tree, nor any key string: the flush encodes straight from the
 * arena. A scan steps through the tree and reads each entry from its
 * record, as bytes (see {@linkcode Memtable.step}): no hash probe, string
 * or object per entry.
 *
 * Invariants:
 * - In a chain, sequence numbers strictly decrease from newest to oldest.
 * - A version is dropped only when no pinned reader can see it: the chain
 *   keeps every version newer than the oldest pinned sequence (in the
 *   store-wide ReaderRegistry), plus the newest version at or below it.
 *   Dropped versions' rows and bytes stay where they are, counted in
 *   `bytes`, until half the rows are dropped ones: then a compaction
 *   copies the live versions into fresh buffers.
 * - Every key is in exactly one of `tree` and `unsorted`; `liveKeys` counts
 *   keys whose newest version is not a tombstone. The tree maps each key
 *   to the offset of its record in the arena (a compaction, which moves
 *   the records, maps them again).
 * - A memtable is read only while pinned: by the store while it is among
 *   its sources, by each view of it until released. After the last unpin
 *   its buffers go to the next memtable made.
 * - `slots` holds, for each key, its record, in the first free slot from
 *   `hashSlot(bloomHash1(key))` on (linear probing); it is at most half
 *   full. A record's header names the head of the key's chain and that
 *   version's value.
 */
import {
  assert,
  bufferPool,
  type BytePool,
  bytesToBinary,
  copyInto,
  Spares,
} from "../util/mod.ts";
import { type MapPosition, SortedMap } from "./sorted_map.ts";
import { bloomHash1 } from "./sstable/bloom.ts";

/** One version of a key; `value` undefined is a tombstone. */
export interface Version {
  seq: number;
  /** A view of the value's bytes (read-only); undefined for a tombstone. */
  value: Uint8Array | undefined;
  expiry: number;
}

/** A key's hash as the index keeps it: a small integer. */
export function hashSlot(h1: number): number {
  return h1 & 0x3fffffff;
}

/** Bytes of column space per version row, for memory accounting. */
const VERSION_ROW_BYTES = 48;
/**
 * Bytes per key besides its bytes: its record's header, hash slots, and
 * once a scan orders the keys, the key as a string and its place in the
 * tree (most memtables are flushed unordered, without them). (With 64,
 * memtables held a quarter more keys than before the arena, and random
 * fills stalled twice as often on the merges of their bigger tables;
 * counting the header's 20 bytes on top of 96 cost random fills a tenth.)
 */
const KEY_OVERHEAD_BYTES = 96;
/** Version rows and arena bytes a new memtable starts with. */
const INITIAL_ROWS = 1024;
const INITIAL_ARENA_BYTES = 64 * 1024;
/**
 * Most hash slots a memtable made like another starts with (4 MiB of
 * them, for half a million keys); it doubles them past that as it fills.
 */
const PRESIZED_SLOTS_MAX = 1 << 20;
/** Int32 fields of a version row (see ROW_* for what each holds). */
const ROW_INTS = 8;
/** The key's hashSlot, for probing and rehashing. */
const ROW_HASH = 0;
const ROW_KEY_AT = 1;
const ROW_KEY_LENGTH = 2;
const ROW_VALUE_AT = 3;
/** -1 for a tombstone. */
const ROW_VALUE_LENGTH = 4;
/** Next older version of the key, or -1. */
const ROW_OLDER = 5;
/** 1 once a newer version of the key exists, else 0. */
const ROW_SUPERSEDED = 6;
/**
 * Each key's record in the arena starts with a header of Int32s (then come
 * the key's bytes, then its first value's): what a probe compares and a get
 * of the newest version copies, in the cache lines of the key itself.
 */
const HEADER_INTS = 5;
const HEADER_BYTES = HEADER_INTS * 4;
/** The key's hashSlot. */
const HEADER_HASH = 0;
const HEADER_KEY_LENGTH = 1;
/** The key's newest version row. */
const HEADER_NEWEST = 2;
/** Where the newest version's value is, and its length (-1: tombstone). */
const HEADER_VALUE_AT = 3;
const HEADER_VALUE_LENGTH = 4;
/** Fewest dropped versions worth a compaction (see #compact). */
const COMPACT_DEAD_ROWS_MIN = 4096;
/** Most sets of buffers kept for the next memtables. */
const SPARE_BUFFERS_MAX = 5;
/** Largest arena: offsets are Int32s (and its size a multiple of 4). */
const ARENA_BYTES_MAX = 0x7ffffffc;

/** Bounds and direction of an iteration over binary-string keys. */
export interface RangeOptions {
  /** Inclusive lower bound. */
  start?: string | undefined;
  /** Exclusive upper bound. */
  end?: string | undefined;
  reverse?: boolean | undefined;
}

/**
 * An entry read as bytes (see {@linkcode Memtable.step}): the key in
 * `key[0, keyLength)`, the value in `block[valueAt, valueAt +
 * valueLength)` (-1: a tombstone). A merge's ByteEntry is one.
 */
export interface EntryBytes {
  key: Uint8Array;
  keyLength: number;
  block: Uint8Array;
  /** `block` as words, when its values lie 4-byte aligned (see copyWords). */
  blockWords: Int32Array | undefined;
  valueAt: number;
  valueLength: number;
  seq: number;
  expiry: number;
}

/**
 * Where an ordered walk of a memtable stands (see
 * {@linkcode Memtable.step}): its sequence and range, and its place in the
 * key tree.
 */
export class MemtableWalk {
  /** The current key's place: undefined before the first step and after the last. */
  pos: MapPosition<number> | undefined = undefined;
  started = false;
  /** The tree's count of inserts when `pos` was found. */
  mutations = 0;
  /** The current key (the tree's own string: no copy). */
  key = "";

  constructor(
    /** Versions above it are not visible. */
    readonly seq: number,
    readonly range: RangeOptions,
  ) {}
}

/**
 * The sequence numbers readers are pinned at, shared by every memtable of a
 * store: a reader pinned at S keeps, in every memtable (including ones
 * created after it was pinned), the newest version at or below S.
 */
export class ReaderRegistry {
  #readers = new Map<number, number>();
  #oldest = Number.POSITIVE_INFINITY;
  /**
   * Set when the store closes: a memtable a view still pinned then keeps
   * its buffers to itself at its last unpin, rather than hand them to the
   * spares the closing store has let go of (and hold them past it).
   */
  storeClosed = false;

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

/** The buffers of a memtable, handed on once no one reads it. */
interface Buffers {
  arena: Uint8Array;
  meta: Int32Array;
  seqs: Float64Array;
  slots: Int32Array;
}

/**
 * Buffers of memtables no one reads any more, for the next memtables:
 * fresh ones cost a page fault per 4 KiB written and a copy per doubling,
 * which made a write into a new memtable five to ten times as slow as one
 * into a recycled one (0.6–1.6 µs against 0.11–0.14 µs). At most one set
 * per memtable a store can hold (1 + IMMUTABLE_MEMTABLES_MAX): fewer, and
 * memtables frozen while others wait for their flush start without.
 */
const spareBuffers = new Spares<Buffers>(SPARE_BUFFERS_MAX);

/**
 * `n` rounded up to a multiple of 4, for sizes up to 2^53 (`& ~3` would
 * wrap at 2^31: arena sizes reach it).
 */
function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Versioned sorted table of recent writes. */
export class Memtable {
  /**
   * `readers` decides which old versions must be kept. Without spare
   * buffers, a memtable that follows `like` (the one frozen before it)
   * starts at the sizes `like` grew to, rather than growing through
   * doublings from small ones: each doubling copied everything and wrote
   * it into fresh memory, at a page fault per 4 KiB. Fresh arrays take
   * memory only as they are written, except the hash slots, which are
   * filled; those start at most PRESIZED_SLOTS_MAX.
   */
  constructor(
    readonly readers: ReaderRegistry = new ReaderRegistry(),
    like?: Memtable,
  ) {
    const spare = spareBuffers.take();
    if (spare) {
      this.#arena = spare.arena;
      this.#arena32 = new Int32Array(spare.arena.buffer);
      this.#meta = spare.meta;
      this.#seqs = spare.seqs;
      this.#slots = spare.slots.fill(-1);
    } else if (like) {
      this.#arena = new Uint8Array(like.#arena.length);
      this.#arena32 = new Int32Array(this.#arena.buffer);
      this.#meta = new Int32Array(like.#meta.length);
      this.#seqs = new Float64Array(like.#seqs.length);
      this.#slots = new Int32Array(
        Math.min(like.#slots.length, PRESIZED_SLOTS_MAX),
      ).fill(-1);
    } else {
      this.#arena = new Uint8Array(INITIAL_ARENA_BYTES);
      this.#arena32 = new Int32Array(this.#arena.buffer);
      this.#meta = new Int32Array(INITIAL_ROWS * ROW_INTS);
      this.#seqs = new Float64Array(INITIAL_ROWS * 2);
      this.#slots = new Int32Array(2 * INITIAL_ROWS).fill(-1);
    }
  }

  #arena: Uint8Array;
  /** The arena as Int32s, for the key records' headers. */
  #arena32: Int32Array;
  #arenaUsed = 0;
  // Version rows: the fields a get reads in one Int32 row of ROW_INTS
  // (half a cache line), seq and expiry in a Float64 row of two.
  #rows = 0;
  #meta: Int32Array;
  #seqs: Float64Array;
  /**
   * Each key's record (its byte offset in the arena; -1: free), by hash,
   * linear probing.
   */
  #slots: Int32Array;
  /** Holders: the store while the memtable is among its sources, views. */
  #pins = 1;
  /** Its buffers went to another memtable: nothing may read it. */
  #recycled = false;
  /** Rows, and value bytes, of versions dropped since the last compaction. */
  #deadRows = 0;
  #deadBytes = 0;
  /** Compactions so far (for tests). */
  compactions = 0;
  #keys = 0;
  /** Each ordered key's record (see the module invariants). */
  #tree = new SortedMap<number>();
  /** A version row of each key not yet in `tree`, in insertion order. */
  #unsorted: number[] = [];
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

  /** Bytes of the arrays it holds (arena, rows and hash slots). */
  get allocatedBytes(): number {
    return this.#arena.byteLength + this.#meta.byteLength +
      this.#seqs.byteLength + this.#slots.byteLength;
  }

  /**
   * Bytes of writes issued to this memtable but not yet applied (waiting
   * for their fsync). Counted when deciding to freeze, so that a burst of
   * writes cannot overshoot the memtable size before any is applied.
   */
  reserved = 0;

  /**
   * Another holder (a view) reads the memtable: its buffers are kept until
   * it calls {@linkcode unpin}.
   */
  pin(): void {
    assert(!this.#recycled, "pin of a recycled memtable");
    this.#pins++;
  }

  /**
   * A holder is done with the memtable; after the last one (the store,
   * once the memtable is flushed, or the last view of it), its buffers go
   * to the next memtable made, and it must not be read again.
   */
  unpin(): void {
    assert(this.#pins > 0, "unpin of a recycled memtable");
    if (--this.#pins > 0) return;
    this.#recycled = true;
    if (this.readers.storeClosed) return;
    spareBuffers.give({
      arena: this.#arena,
      meta: this.#meta,
      seqs: this.#seqs,
      slots: this.#slots,
    });
  }

  /** Applies a write at sequence `seq`; a tombstone when value is undefined. */
  apply(
    seq: number,
    key: string,
    value: Uint8Array | undefined,
    expiry: number,
  ): void {
    assert(!this.#recycled, "write to a recycled memtable");
    if (
      this.#deadRows >= COMPACT_DEAD_ROWS_MIN &&
      2 * this.#deadRows >= this.#rows
    ) this.#compact();
    const hash = hashSlot(bloomHash1(key));
    const slot = this.#probe(key, hash);
    const record = this.#slots[slot]!;
    if (seq > this.#lastSeq) this.#lastSeq = seq;
    const v = this.#newRow();
    const r = v * ROW_INTS;
    const meta = this.#meta;
    this.#seqs[2 * v] = seq;
    this.#seqs[2 * v + 1] = expiry;
    meta[r + ROW_HASH] = hash;
    const valueBytes = value === undefined ? 0 : value.length;
    if (record === -1) {
      // The key's header, its bytes, then the value's, side by side (the
      // value 4-byte aligned: see copyNewest).
      const at = this.#reserveRecord(roundUp4(key.length) + valueBytes);
      const keyAt = at + HEADER_BYTES;
      const arena = this.#arena;
      for (let i = 0; i < key.length; i++) {
        arena[keyAt + i] = key.charCodeAt(i);
      }
      const h = this.#arena32;
      const q = at >>> 2;
      h[q + HEADER_HASH] = hash;
      h[q + HEADER_KEY_LENGTH] = key.length;
      meta[r + ROW_KEY_AT] = keyAt;
      meta[r + ROW_KEY_LENGTH] = key.length;
      meta[r + ROW_OLDER] = -1;
      meta[r + ROW_SUPERSEDED] = 0;
      this.#setValue(v, value, keyAt + roundUp4(key.length), q);
      this.#slots[slot] = at;
      this.#unsorted.push(v);
      this.#keys++;
      this.#bytes += key.length + KEY_OVERHEAD_BYTES;
      if (value !== undefined) this.#liveKeys++;
      this.#bytes += VERSION_ROW_BYTES + valueBytes;
      if (2 * this.#keys > this.#slots.length) this.#rehash();
      return;
    }
    const newest = this.#arena32[(record >>> 2) + HEADER_NEWEST]!;
    assert(seq > this.#seqs[2 * newest]!, "memtable sequence must increase");
    meta[r + ROW_KEY_AT] = meta[newest * ROW_INTS + ROW_KEY_AT]!;
    meta[r + ROW_KEY_LENGTH] = key.length;
    meta[r + ROW_OLDER] = newest;
    meta[r + ROW_SUPERSEDED] = 0;
    meta[newest * ROW_INTS + ROW_SUPERSEDED] = 1;
    this.#setValue(
      v,
      value,
      value === undefined ? 0 : this.#reserveValue(valueBytes),
      record >>> 2,
    );
    this.#bytes += VERSION_ROW_BYTES + valueBytes;
    this.#prune(v);
    const wasLive = meta[newest * ROW_INTS + ROW_VALUE_LENGTH]! >= 0;
    const isLive = value !== undefined;
    if (wasLive !== isLive) this.#liveKeys += isLive ? 1 : -1;
  }

  /**
   * Stores `value` (or a tombstone) for row `v`, its bytes at `at`, and
   * makes `v` the newest version in the header of the key's record (at
   * Int32 `q` of the arena).
   */
  #setValue(
    v: number,
    value: Uint8Array | undefined,
    at: number,
    q: number,
  ): void {
    const r = v * ROW_INTS;
    const h = this.#arena32;
    h[q + HEADER_NEWEST] = v;
    if (value === undefined) {
      this.#meta[r + ROW_VALUE_AT] = 0;
      this.#meta[r + ROW_VALUE_LENGTH] = -1;
      h[q + HEADER_VALUE_AT] = 0;
      h[q + HEADER_VALUE_LENGTH] = -1;
      return;
    }
    this.#arena.set(value, at);
    this.#meta[r + ROW_VALUE_AT] = at;
    this.#meta[r + ROW_VALUE_LENGTH] = value.length;
    h[q + HEADER_VALUE_AT] = at;
    h[q + HEADER_VALUE_LENGTH] = value.length;
  }

  /** Drops versions below `head` that no registered reader can see. */
  #prune(head: number): void {
    const meta = this.#meta;
    const oldest = this.readers.oldest;
    let v = head;
    while (
      meta[v * ROW_INTS + ROW_OLDER]! !== -1 && this.#seqs[2 * v]! > oldest
    ) v = meta[v * ROW_INTS + ROW_OLDER]!;
    // Their rows and value bytes stay where they are, counted in `bytes`,
    // until a compaction (#compact) copies out what is live.
    for (let d = meta[v * ROW_INTS + ROW_OLDER]!; d !== -1;) {
      this.#deadRows++;
      this.#deadBytes += Math.max(0, meta[d * ROW_INTS + ROW_VALUE_LENGTH]!);
      d = meta[d * ROW_INTS + ROW_OLDER]!;
    }
    meta[v * ROW_INTS + ROW_OLDER] = -1;
  }

  /**
   * Copies the live versions (those a chain still reaches) into fresh rows
   * and a fresh arena, and drops the rest: run once at least half of the
   * rows are dropped versions, so that a memtable of overwrites (replayed
   * at open, where nothing freezes it) grows with its live data, not with
   * every write. Row numbers change: the keys not yet ordered are ordered
   * first, so that none is kept outside the chains. Views of the old arena
   * stay valid (it is left as it is).
   */
  #compact(): void {
    // Live bytes, headers included; each record, and each value, may need
    // 3 more bytes to stay aligned in its new place.
    const live = this.#arenaUsed - this.#deadBytes;
    const need = live + 3 * (this.#keys + this.#rows - this.#deadRows);
    // Within 2 GiB or not at all (compacting only saves memory).
    if (need > ARENA_BYTES_MAX) return;
    this.#order();
    const oldMeta = this.#meta;
    const oldSeqs = this.#seqs;
    const oldArena = this.#arena;
    const liveRows = this.#rows - this.#deadRows;
    const rowCapacity = Math.max(INITIAL_ROWS, 2 * liveRows);
    const meta = new Int32Array(rowCapacity * ROW_INTS);
    const seqs = new Float64Array(rowCapacity * 2);
    const arena = new Uint8Array(
      Math.min(
        ARENA_BYTES_MAX,
        Math.max(INITIAL_ARENA_BYTES, roundUp4(2 * need)),
      ),
    );
    const arena32 = new Int32Array(arena.buffer);
    // Chains are copied in the order of their heads (each key's newest
    // version), which keeps visitNewest in write order; the hash table is
    // filled again with the new records.
    const slots = new Int32Array(this.#slots.length).fill(-1);
    const mask = slots.length - 1;
    const oldRows = this.#rows;
    // Each key's old record to its new one, for the tree.
    const moved = new Map<number, number>();
    let rows = 0;
    let used = 0;
    for (let head = 0; head < oldRows; head++) {
      if (oldMeta[head * ROW_INTS + ROW_SUPERSEDED] !== 0) continue;
      let s = oldMeta[head * ROW_INTS + ROW_HASH]! & mask;
      while (slots[s] !== -1) s = (s + 1) & mask;
      let v = head;
      const at = roundUp4(used);
      const q = at >>> 2;
      const keyAt = at + HEADER_BYTES;
      const keyFrom = oldMeta[v * ROW_INTS + ROW_KEY_AT]!;
      const keyLength = oldMeta[v * ROW_INTS + ROW_KEY_LENGTH]!;
      moved.set(keyFrom - HEADER_BYTES, at);
      arena32[q + HEADER_HASH] = oldMeta[v * ROW_INTS + ROW_HASH]!;
      arena32[q + HEADER_KEY_LENGTH] = keyLength;
      used = copyInto(arena, keyAt, oldArena, keyFrom, keyFrom + keyLength);
      let newer = -1;
      for (; v !== -1; v = oldMeta[v * ROW_INTS + ROW_OLDER]!) {
        const n = rows++;
        const r = n * ROW_INTS;
        const o = v * ROW_INTS;
        meta[r + ROW_HASH] = oldMeta[o + ROW_HASH]!;
        meta[r + ROW_KEY_AT] = keyAt;
        meta[r + ROW_KEY_LENGTH] = keyLength;
        const valueLength = oldMeta[o + ROW_VALUE_LENGTH]!;
        const valueFrom = oldMeta[o + ROW_VALUE_AT]!;
        if (valueLength >= 0) used = roundUp4(used);
        meta[r + ROW_VALUE_AT] = valueLength < 0 ? 0 : used;
        meta[r + ROW_VALUE_LENGTH] = valueLength;
        if (valueLength > 0) {
          used = copyInto(
            arena,
            used,
            oldArena,
            valueFrom,
            valueFrom + valueLength,
          );
        }
        meta[r + ROW_OLDER] = -1;
        meta[r + ROW_SUPERSEDED] = newer === -1 ? 0 : 1;
        seqs[2 * n] = oldSeqs[2 * v]!;
        seqs[2 * n + 1] = oldSeqs[2 * v + 1]!;
        if (newer === -1) {
          slots[s] = at;
          arena32[q + HEADER_NEWEST] = n;
          arena32[q + HEADER_VALUE_AT] = meta[r + ROW_VALUE_AT]!;
          arena32[q + HEADER_VALUE_LENGTH] = valueLength;
        } else {
          meta[newer * ROW_INTS + ROW_OLDER] = n;
        }
        newer = n;
      }
    }
    this.#bytes -= this.#deadBytes + this.#deadRows * VERSION_ROW_BYTES;
    this.#tree.updateValues((record) => moved.get(record)!);
    this.#slots = slots;
    this.#meta = meta;
    this.#seqs = seqs;
    this.#arena = arena;
    this.#arena32 = arena32;
    this.#rows = rows;
    this.#arenaUsed = used;
    this.#deadRows = 0;
    this.#deadBytes = 0;
    this.compactions++;
  }

  /**
   * The slot of `key` (hash `hash`): where its newest version is, or the
   * free slot where it goes.
   */
  #probe(key: string, hash: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let s = hash & mask;; s = (s + 1) & mask) {
      const at = slots[s]!;
      if (
        at === -1 ||
        (this.#arena32[(at >>> 2) + HEADER_HASH] === hash &&
          this.#keyIs(at, key))
      ) {
        return s;
      }
    }
  }

  /** {@linkcode #probe} for a key given as `key[0, n)`. */
  #probeBytes(key: Uint8Array, n: number, hash: number): number {
    const slots = this.#slots;
    const h = this.#arena32;
    const arena = this.#arena;
    const mask = slots.length - 1;
    next: for (let s = hash & mask;; s = (s + 1) & mask) {
      const at = slots[s]!;
      if (at === -1) return s;
      const q = at >>> 2;
      if (h[q + HEADER_HASH] !== hash || h[q + HEADER_KEY_LENGTH] !== n) {
        continue;
      }
      const keyAt = at + HEADER_BYTES;
      for (let i = 0; i < n; i++) {
        if (arena[keyAt + i] !== key[i]) continue next;
      }
      return s;
    }
  }

  /** Whether the key of the record at `record` is `key`. */
  #keyIs(record: number, key: string): boolean {
    const n = this.#arena32[(record >>> 2) + HEADER_KEY_LENGTH]!;
    if (n !== key.length) return false;
    const arena = this.#arena;
    const at = record + HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      if (arena[at + i] !== key.charCodeAt(i)) return false;
    }
    return true;
  }

  /** A fresh version row, growing the columns when full. */
  #newRow(): number {
    if (this.#rows * ROW_INTS === this.#meta.length) {
      const meta = new Int32Array(2 * this.#meta.length);
      meta.set(this.#meta);
      this.#meta = meta;
      const seqs = new Float64Array(2 * this.#seqs.length);
      seqs.set(this.#seqs);
      this.#seqs = seqs;
    }
    return this.#rows++;
  }

  /**
   * `n` bytes at the end of the arena; returns their offset. Growing moves
   * the arena to a new buffer: views of the old one stay valid (its bytes
   * never change).
   */
  #reserve(n: number): number {
    const at = this.#arenaUsed;
    if (at + n > this.#arena.length) {
      if (at + n > ARENA_BYTES_MAX) {
        throw new RangeError("Memtable arena past 2 GiB");
      }
      const size = Math.min(
        ARENA_BYTES_MAX,
        roundUp4(Math.max(2 * this.#arena.length, at + n)),
      );
      const grown = new Uint8Array(size);
      grown.set(this.#arena.subarray(0, at));
      this.#arena = grown;
      this.#arena32 = new Int32Array(grown.buffer);
    }
    this.#arenaUsed = at + n;
    return at;
  }

  /**
   * Room for a new key's record: its header, 4-byte aligned, then `n`
   * bytes (the key's and its value's); returns where the header goes.
   */
  #reserveRecord(n: number): number {
    this.#arenaUsed = roundUp4(this.#arenaUsed);
    return this.#reserve(HEADER_BYTES + n);
  }

  /** Room for `n` bytes of a value, 4-byte aligned; returns where. */
  #reserveValue(n: number): number {
    this.#arenaUsed = roundUp4(this.#arenaUsed);
    return this.#reserve(n);
  }

  /** Doubles the hash table, placing every key's record again. */
  #rehash(): void {
    const old = this.#slots;
    const slots = new Int32Array(2 * old.length).fill(-1);
    const mask = slots.length - 1;
    for (const at of old) {
      if (at === -1) continue;
      let s = this.#arena32[(at >>> 2) + HEADER_HASH]! & mask;
      while (slots[s] !== -1) s = (s + 1) & mask;
      slots[s] = at;
    }
    this.#slots = slots;
  }

  /**
   * The version row of `key` visible at `seq` (tombstones included), or -1.
   * `h1` is the key's `bloomHash1`, when the caller has it already.
   */
  find(
    key: string,
    seq = Number.POSITIVE_INFINITY,
    h1: number = bloomHash1(key),
  ): number {
    assert(!this.#recycled, "read of a recycled memtable");
    return this.#visible(
      this.#newestRow(this.#slots[this.#probe(key, hashSlot(h1))]!),
      seq,
    );
  }

  /** The newest version row of the record at `record` (-1: none), or -1. */
  #newestRow(record: number): number {
    return record === -1 ? -1 : this.#arena32[(record >>> 2) + HEADER_NEWEST]!;
  }

  /** The version in the chain from `v` (a newest) visible at `seq`, or -1. */
  #visible(v: number, seq: number): number {
    // A read of the newest version (the store's gets) takes the chain's
    // head without loading its sequence number: one cache miss fewer.
    if (seq === Number.POSITIVE_INFINITY) return v;
    while (v !== -1 && this.#seqs[2 * v]! > seq) {
      v = this.#meta[v * ROW_INTS + ROW_OLDER]!;
    }
    return v;
  }

  /**
   * {@linkcode find} for a key given as bytes, `key[0, n)`, with its
   * `bloomHash1` `h1`: what a get probes, on bytes it has copied out once
   * (see ReadKey).
   */
  findBytes(key: Uint8Array, n: number, seq: number, h1: number): number {
    assert(!this.#recycled, "read of a recycled memtable");
    const s = this.#probeBytes(key, n, hashSlot(h1));
    return this.#visible(this.#newestRow(this.#slots[s]!), seq);
  }

  /**
   * The record of key `key[0, n)` (with `bloomHash1` `h1`), for
   * {@linkcode copyNewest}, or -1 when the memtable does not hold the key:
   * a read of the newest version, from the key's header alone.
   */
  findRecord(key: Uint8Array, n: number, h1: number): number {
    assert(!this.#recycled, "read of a recycled memtable");
    return this.#slots[this.#probeBytes(key, n, hashSlot(h1))]!;
  }

  /**
   * A copy of the newest value of the key whose record is at `record` (from
   * {@linkcode findRecord}), from `pool`; undefined: a tombstone.
   */
  copyNewest(record: number, pool: BytePool): Uint8Array | undefined {
    const q = record >>> 2;
    const n = this.#arena32[q + HEADER_VALUE_LENGTH]!;
    if (n < 0) return undefined;
    const at = this.#arena32[q + HEADER_VALUE_AT]!;
    // Values lie 4-byte aligned: copied a word at a time, without a view of
    // the arena (a get of 100 bytes copied 60-90 ns sooner).
    return pool.copyWords(this.#arena, this.#arena32, at, n);
  }

  /** A copy of version row `v`'s value from `pool`; undefined: tombstone. */
  copyValue(v: number, pool: BytePool): Uint8Array | undefined {
    const n = this.#meta[v * ROW_INTS + ROW_VALUE_LENGTH]!;
    if (n < 0) return undefined;
    const at = this.#meta[v * ROW_INTS + ROW_VALUE_AT]!;
    return pool.copyWords(this.#arena, this.#arena32, at, n);
  }

  /** Version row `v` as a Version (its value a view of the arena). */
  #version(v: number): Version {
    const n = this.#meta[v * ROW_INTS + ROW_VALUE_LENGTH]!;
    const at = this.#meta[v * ROW_INTS + ROW_VALUE_AT]!;
    return {
      seq: this.#seqs[2 * v]!,
      value: n < 0 ? undefined : this.#arena.subarray(at, at + n),
      expiry: this.#seqs[2 * v + 1]!,
    };
  }

  /** Row `v`'s key as a binary string. */
  #key(v: number): string {
    const at = this.#meta[v * ROW_INTS + ROW_KEY_AT]!;
    return bytesToBinary(
      this.#arena,
      at,
      at + this.#meta[v * ROW_INTS + ROW_KEY_LENGTH]!,
    );
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
    const v = this.find(key, seq, h1);
    return v === -1 ? undefined : this.#version(v);
  }

  /**
   * Calls `visit` with every key's newest version (tombstones included), in
   * the order those versions were written, as offsets into `arena`
   * (`valueLength` -1 for a tombstone): what a flush writes out, without
   * the ordering that iteration needs, nor a string or view per entry.
   * Rows are read in sequence (not in hash order, a cache miss each), and a
   * load in key order comes out in key order, which the flush then need not
   * sort.
   */
  visitNewest(
    visit: (
      arena: Uint8Array,
      keyAt: number,
      keyLength: number,
      seq: number,
      expiry: number,
      valueAt: number,
      valueLength: number,
    ) => void,
  ): void {
    assert(!this.#recycled, "flush of a recycled memtable");
    const arena = this.#arena;
    const meta = this.#meta;
    for (let v = 0; v < this.#rows; v++) {
      const r = v * ROW_INTS;
      if (meta[r + ROW_SUPERSEDED] !== 0) continue;
      visit(
        arena,
        meta[r + ROW_KEY_AT]!,
        meta[r + ROW_KEY_LENGTH]!,
        this.#seqs[2 * v]!,
        this.#seqs[2 * v + 1]!,
        meta[r + ROW_VALUE_AT]!,
        meta[r + ROW_VALUE_LENGTH]!,
      );
    }
  }

  /** Every key's newest version with its key, in no particular order. */
  *newest(): Generator<Version & { key: string }> {
    for (const at of this.#slots) {
      if (at === -1) continue;
      const v = this.#newestRow(at);
      yield { key: this.#key(v), ...this.#version(v) };
    }
  }

  /** Sorts the keys written since the last ordering into the tree. */
  #order(): void {
    const rows = this.#unsorted;
    if (rows.length === 0) return;
    this.#unsorted = [];
    // Each key's record (its first version's key sits right after the
    // record's header), looked up after a native sort of the keys alone.
    const records = new Map<string, number>();
    const keys = rows.map((v) => {
      const key = this.#key(v);
      records.set(key, this.#meta[v * ROW_INTS + ROW_KEY_AT]! - HEADER_BYTES);
      return key;
    });
    // The default sort compares UTF-16 code units: for binary strings,
    // bytewise order.
    keys.sort();
    for (const key of keys) this.#tree.set(key, records.get(key)!);
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
    const walk = new MemtableWalk(seq, range);
    const e: EntryBytes = {
      key: new Uint8Array(0),
      keyLength: 0,
      block: this.#arena,
      blockWords: undefined,
      valueAt: 0,
      valueLength: -1,
      seq: 0,
      expiry: 0,
    };
    while (this.step(walk, e)) {
      yield [walk.key, {
        seq: e.seq,
        value: e.valueLength < 0
          ? undefined
          : e.block.subarray(e.valueAt, e.valueAt + e.valueLength),
        expiry: e.expiry,
      }];
    }
  }

  /**
   * Moves `walk` to the next key of its range with a version visible at
   * its sequence (a tombstone too), and reads that version into `out`: the
   * key's bytes copied into `out.key` (replaced by a bigger buffer when
   * short), the value where it lies in the arena. False at the end. Safe
   * to interleave with apply(): after an insert it seeks again past the
   * last key it read.
   */
  step(walk: MemtableWalk, out: EntryBytes): boolean {
    assert(!this.#recycled, "scan of a recycled memtable");
    const tree = this.#tree;
    const { start, end, reverse = false } = walk.range;
    // Keys written since the last step join the order now.
    this.#order();
    let pos = walk.pos;
    if (!walk.started) {
      walk.started = true;
      walk.mutations = tree.mutations;
      pos = reverse ? tree.seekLT(end) : tree.seekGE(start);
    } else if (pos === undefined) {
      return false;
    } else if (tree.mutations !== walk.mutations) {
      // An insert may have moved the keys under the position.
      walk.mutations = tree.mutations;
      // key + "\0" is the smallest binary string greater than key.
      pos = reverse ? tree.seekLT(walk.key) : tree.seekGE(walk.key + "\u0000");
    } else if (!tree.step(pos, reverse)) {
      pos = undefined;
    }
    while (pos !== undefined) {
      const key = tree.keyAt(pos);
      if (
        reverse
          ? start !== undefined && key < start
          : end !== undefined && key >= end
      ) {
        break;
      }
      const record = tree.valueAt(pos);
      const v = this.#visible(this.#newestRow(record), walk.seq);
      if (v !== -1) {
        walk.pos = pos;
        walk.key = key;
        this.#read(record, v, out);
        return true;
      }
      if (!tree.step(pos, reverse)) break;
    }
    walk.pos = undefined;
    return false;
  }

  /** Reads version row `v` of the key whose record is at `record` into `out`. */
  #read(record: number, v: number, out: EntryBytes): void {
    const n = this.#arena32[(record >>> 2) + HEADER_KEY_LENGTH]!;
    if (n > out.key.length) out.key = bufferPool.alloc(2 * n);
    const arena = this.#arena;
    const at = record + HEADER_BYTES;
    copyInto(out.key, 0, arena, at, at + n);
    out.keyLength = n;
    const r = v * ROW_INTS;
    out.block = arena;
    out.blockWords = this.#arena32;
    out.valueAt = this.#meta[r + ROW_VALUE_AT]!;
    out.valueLength = this.#meta[r + ROW_VALUE_LENGTH]!;
    out.seq = this.#seqs[2 * v]!;
    out.expiry = this.#seqs[2 * v + 1]!;
  }
}
