/**
 * A cache of data blocks shared by every table of a store, bounded in
 * bytes, with CLOCK eviction: a hit only sets the block's reference bit (no
 * map update), and the hand evicts blocks not referenced since it last
 * passed. A block is cached as its verified raw contents (enough for point
 * lookups and forward scans); a block scanned in reverse adds the decoded
 * form, and the cache counts both.
 *
 * Each table keeps its cached blocks in its own slot array (indexed by
 * block number), so a lookup is an array read, not a hash.
 *
 * Block buffers are recycled: an evicted block that was never decoded and
 * that no cursor is positioned in (pins) has no views into it outside the
 * cache (point lookups copy what they return before anything else runs,
 * and scans copy each entry before moving on), so its buffer is kept for
 * the next block read. Fresh memory costs a page fault per 4 KiB on first touch, which
 * doubled the cost of a cache miss.
 */
import type { DataBlock } from "./block.ts";

/** Hit and miss counters. */
export interface BlockCacheStats {
  hits: number;
  misses: number;
  bytes: number;
  blocks: number;
}

/** A cached block: verified contents, and its decoded form once needed. */
export interface CachedBlock {
  raw: Uint8Array;
  decoded: DataBlock | undefined;
  /** Bytes charged to the cache. */
  bytes: number;
  /** Referenced since the clock hand last passed. */
  ref: boolean;
  /**
   * Cursors positioned in the block (their current entry is a view into
   * it): evicted meanwhile, its buffer is recycled only once the last of
   * them moves on (unpin).
   */
  pins: number;
  /** Left the cache (its buffer recycled then, or at the last unpin). */
  evicted: boolean;
  /** The owning table's slots, and this block's index in them. */
  slots: Array<CachedBlock | undefined>;
  index: number;
}

/**
 * Buffers are allocated in multiples of this, so that they can be reused.
 * A block of the default size (4 KiB and the entry that passes it, about
 * 4.2 KiB) takes 4.25 KiB; with 1 KiB steps it took 5 KiB, a fifth of the
 * cache's memory unused and a page fault more per block filled in.
 */
const BUFFER_GRANULE = 256;
/** Most recycled buffers kept per size. */
const FREE_BUFFERS_MAX = 64;
/**
 * Most bytes of recycled buffers kept in all: they are outside the cache's
 * capacity, and blocks of many sizes (large values) would otherwise keep
 * up to FREE_BUFFERS_MAX of each size idle.
 */
export const FREE_BUFFER_BYTES_MAX = 1024 * 1024;

/** CLOCK cache of table blocks. */
export class BlockCache {
  #ring: CachedBlock[] = [];
  #hand = 0;
  #bytes = 0;
  /** Recycled buffers by byte length. */
  #free = new Map<number, ArrayBuffer[]>();
  /** Bytes of the buffers in #free. */
  #freeBytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {}

  /**
   * A buffer of `n` bytes for a block about to be read and cached: a
   * recycled one when there is one of its size. Its contents are garbage.
   */
  buffer(n: number): Uint8Array {
    const size = Math.ceil(n / BUFFER_GRANULE) * BUFFER_GRANULE;
    const recycled = this.#free.get(size)?.pop();
    if (recycled) this.#freeBytes -= size;
    return new Uint8Array(recycled ?? new ArrayBuffer(size), 0, n);
  }

  /** Whether `bytes` more fit without evicting anything. */
  hasRoom(bytes: number): boolean {
    return this.#bytes + bytes <= this.capacityBytes;
  }

  /** A cursor is positioned in `block` (see {@linkcode unpin}). */
  pin(block: CachedBlock): void {
    block.pins++;
  }

  /**
   * A cursor left `block`: once no cursor is in it, an evicted block's
   * buffer is recycled.
   */
  unpin(block: CachedBlock): void {
    if (--block.pins === 0 && block.evicted) this.#recycle(block);
  }

  /** Keeps an evicted block's buffer for reuse when nothing can see it. */
  #recycle(b: CachedBlock): void {
    if (b.decoded !== undefined || b.pins > 0) return;
    const buf = b.raw.buffer as ArrayBuffer;
    if (buf.byteLength % BUFFER_GRANULE !== 0) return;
    if (this.#freeBytes + buf.byteLength > FREE_BUFFER_BYTES_MAX) return;
    let list = this.#free.get(buf.byteLength);
    if (!list) this.#free.set(buf.byteLength, list = []);
    if (list.length < FREE_BUFFERS_MAX) {
      list.push(buf);
      this.#freeBytes += buf.byteLength;
    }
  }

  /** The cached block in `slots[index]`, counting a hit or a miss. */
  get(
    slots: Array<CachedBlock | undefined>,
    index: number,
  ): CachedBlock | undefined {
    const block = slots[index];
    if (block === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    block.ref = true;
    return block;
  }

  /** Caches `block` in `slots[index]`, evicting beyond capacity. */
  set(
    slots: Array<CachedBlock | undefined>,
    index: number,
    block: CachedBlock,
  ): void {
    if (block.bytes > this.capacityBytes || slots[index] !== undefined) return;
    block.slots = slots;
    block.index = index;
    block.ref = true;
    slots[index] = block;
    this.#bytes += block.bytes;
    // Room is made before the new block joins the ring, so it is never the
    // one evicted (and recycled). It then takes the place of the first
    // block evicted for it, just behind the hand, which reaches it last.
    const hole = this.#evict(true);
    if (hole >= 0) this.#ring[hole] = block;
    else this.#ring.push(block);
  }

  /** Charges `delta` more bytes to a cached block (it was decoded). */
  grow(block: CachedBlock, delta: number): void {
    if (block.slots[block.index] !== block) return;
    block.bytes += delta;
    this.#bytes += delta;
    this.#evict(false);
  }

  /** Drops every block of a table that is being closed. */
  dropAll(slots: Array<CachedBlock | undefined>): void {
    for (let i = 0; i < slots.length; i++) {
      const b = slots[i];
      if (b) {
        b.ref = false;
        slots[i] = undefined;
      }
    }
    // The ring still holds them: they go at the hand's next pass, first.
  }

  /**
   * Evicts blocks until the cache is within its capacity. With `hole`, the
   * first block evicted keeps its place in the ring (the hand passes over
   * it) and that place is returned, for set() to put the new block in
   * (moving the ring's last block there instead had the hand clear that
   * block's bit at once: a step more per eviction); else -1.
   */
  #evict(hole: boolean): number {
    const ring = this.#ring;
    let at = -1;
    while (this.#bytes > this.capacityBytes && ring.length > (at < 0 ? 0 : 1)) {
      if (this.#hand >= ring.length) this.#hand = 0;
      if (this.#hand === at) {
        this.#hand++;
        continue;
      }
      const b = ring[this.#hand]!;
      const live = b.slots[b.index] === b;
      if (live && b.ref) {
        b.ref = false;
        this.#hand++;
        continue;
      }
      if (live) b.slots[b.index] = undefined;
      this.#bytes -= b.bytes;
      b.evicted = true;
      this.#recycle(b);
      if (hole && at < 0) {
        at = this.#hand++;
        continue;
      }
      const last = ring.length - 1;
      ring[this.#hand] = ring[last]!;
      ring.pop();
      // The kept place, when it was the last, moved to the hand's.
      if (at === last) at = this.#hand;
    }
    return at;
  }

  /** Counters for stats. */
  stats(): BlockCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      bytes: this.#bytes,
      blocks: this.#ring.length,
    };
  }
}
