/**
 * A cache of data blocks shared by every table of a store, bounded in
 * bytes, with CLOCK eviction: a hit only sets the block's reference bit (no
 * map update), and the hand evicts blocks not referenced since it last
 * passed. The bits are bytes of one array in ring order, not fields of the
 * blocks: the hand passes two referenced blocks per eviction or so, and
 * loading each block's object to clear its bit made a miss's insert take
 * 1.66 µs, against 1.01-1.08 µs with the bits apart. A block is cached as
 * its verified raw contents (enough for point lookups and forward scans);
 * a block scanned in reverse adds the decoded form, and the cache counts
 * both.
 *
 * Each table keeps its cached blocks in its own slot array (indexed by
 * block number), so a lookup is an array read, not a hash.
 *
 * Block buffers are recycled: an evicted block that was never decoded and
 * that no cursor is positioned in (pins) has no views into it outside the
 * cache (point lookups copy what they return before anything else runs,
 * and scans copy each entry before moving on), so its frame is kept for
 * the next block read. Fresh memory costs a page fault per 4 KiB on first touch, which
 * doubled the cost of a cache miss.
 *
 * New frames are carved from one arena as big as the cache (allocated at
 * the first miss; its pages are only committed as frames are first
 * filled), rather than allocated one by one: a buffer per block cost an
 * allocation and, as the cache filled, collections driven by the growth
 * of memory outside the heap. Frames of the arena are always kept for
 * reuse when evicted (the arena bounds them); frames allocated once it is
 * used up are kept up to FREE_BUFFER_BYTES_MAX.
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
  /** Its place in the clock's ring; -1 when not in it. */
  at: number;
  /**
   * Cursors positioned in the block (their current entry is a view into
   * it): evicted meanwhile, its buffer is recycled only once the last of
   * them moves on (unpin).
   */
  pins: number;
  /** Left the cache (its buffer recycled then, or at the last unpin). */
  evicted: boolean;
  /**
   * The memory `raw` lies in, from {@linkcode BlockCache.frame}, recycled
   * once the block is evicted and nothing can see it; undefined: memory
   * the cache does not recycle.
   */
  frame: Uint8Array | undefined;
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
/** Memory page size the arena aligns frames of whole pages to. */
const PAGE_BYTES = 4096;
/** Most recycled buffers kept per size. */
const FREE_BUFFERS_MAX = 64;
/**
 * Most bytes of recycled buffers kept in all: they are outside the cache's
 * capacity, and blocks of many sizes (large values) would otherwise keep
 * up to FREE_BUFFERS_MAX of each size idle.
 */
export const FREE_BUFFER_BYTES_MAX = 1024 * 1024;
/**
 * Largest arena: a bigger cache takes its frames beyond this from single
 * allocations. The arena is address space until its pages are touched.
 */
const ARENA_BYTES_MAX = 1024 * 1024 * 1024;
/**
 * Smallest cache given an arena by default: below it (caches for a single
 * scan, and tests' tiny caches) frames are single allocations.
 */
const ARENA_CACHE_BYTES_MIN = 256 * 1024;

/** CLOCK cache of table blocks. */
export class BlockCache {
  #ring: CachedBlock[] = [];
  /** Reference bits, by place in #ring. */
  #refs = new Uint8Array(1024);
  #hand = 0;
  #bytes = 0;
  /** Recycled frames by byte length. */
  #free = new Map<number, Uint8Array[]>();
  /** Bytes of the frames in #free that are not in the arena. */
  #freeBytes = 0;
  /** Where new frames come from first (see the file comment). */
  #arena: ArrayBuffer | undefined;
  /** Bytes of the arena handed out as frames. */
  #arenaUsed = 0;
  hits = 0;
  misses = 0;

  /** Bytes of the arena, allocated at the first new frame. */
  readonly #arenaBytes: number;

  /**
   * A cache of `capacityBytes`, whose new frames come from an arena of
   * `arenaBytes` (by default as big as the cache, up to ARENA_BYTES_MAX,
   * and none for caches under ARENA_CACHE_BYTES_MIN).
   */
  constructor(readonly capacityBytes: number, arenaBytes?: number) {
    this.#arenaBytes = arenaBytes ??
      (capacityBytes < ARENA_CACHE_BYTES_MIN
        ? 0
        : Math.min(capacityBytes, ARENA_BYTES_MAX));
  }

  /**
   * A frame of at least `n` bytes for a block about to be read and cached
   * (pass it to the cached block, and read into its first `n` bytes): a
   * recycled one when there is one of its size, else a new one from the
   * arena while it lasts. Its contents are garbage.
   */
  frame(n: number): Uint8Array {
    const size = Math.ceil(n / BUFFER_GRANULE) * BUFFER_GRANULE;
    const recycled = this.#free.get(size)?.pop();
    if (recycled) {
      if (recycled.buffer !== this.#arena) this.#freeBytes -= size;
      return recycled;
    }
    // A frame of whole pages starts on a page, so that a 4 KiB block is in
    // one page (the tables' blocks are cut to fit it): after a smaller
    // frame (a table's last block) the next one skips to the next page.
    let at = this.#arenaUsed;
    if (size % PAGE_BYTES === 0) at = Math.ceil(at / PAGE_BYTES) * PAGE_BYTES;
    if (at + size > this.#arenaBytes) return new Uint8Array(size);
    this.#arena ??= new ArrayBuffer(this.#arenaBytes);
    this.#arenaUsed = at + size;
    return new Uint8Array(this.#arena, at, size);
  }

  /** The first `n` bytes of a new {@linkcode frame}, for a test. */
  buffer(n: number): Uint8Array {
    return this.frame(n).subarray(0, n);
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

  /** Keeps an evicted block's frame for reuse when nothing can see it. */
  #recycle(b: CachedBlock): void {
    const frame = b.frame;
    if (frame === undefined || b.decoded !== undefined || b.pins > 0) return;
    b.frame = undefined;
    const size = frame.byteLength;
    let list = this.#free.get(size);
    if (frame.buffer === this.#arena) {
      if (!list) this.#free.set(size, list = []);
      list.push(frame);
      return;
    }
    if (this.#freeBytes + size > FREE_BUFFER_BYTES_MAX) return;
    if (!list) this.#free.set(size, list = []);
    if (list.length < FREE_BUFFERS_MAX) {
      list.push(frame);
      this.#freeBytes += size;
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
    this.#refs[block.at] = 1;
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
    slots[index] = block;
    this.#bytes += block.bytes;
    // Room is made before the new block joins the ring, so it is never the
    // one evicted (and recycled). It then takes the place of the first
    // block evicted for it, just behind the hand, which reaches it last.
    let at = this.#evict(true);
    if (at >= 0) {
      this.#ring[at] = block;
    } else {
      at = this.#ring.length;
      this.#ring.push(block);
      if (at >= this.#refs.length) {
        const refs = new Uint8Array(2 * this.#refs.length);
        refs.set(this.#refs);
        this.#refs = refs;
      }
    }
    block.at = at;
    this.#refs[at] = 1;
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
        this.#refs[b.at] = 0;
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
    const refs = this.#refs;
    let at = -1;
    while (this.#bytes > this.capacityBytes && ring.length > (at < 0 ? 0 : 1)) {
      let h = this.#hand;
      if (h >= ring.length) h = 0;
      this.#hand = h + 1;
      if (h === at) continue;
      if (refs[h] !== 0) {
        refs[h] = 0;
        continue;
      }
      // Unreferenced: a block dropped with its table is too (dropAll).
      const b = ring[h]!;
      if (b.slots[b.index] === b) b.slots[b.index] = undefined;
      this.#bytes -= b.bytes;
      b.evicted = true;
      b.at = -1;
      this.#recycle(b);
      if (hole && at < 0) {
        at = h;
        continue;
      }
      const last = ring.length - 1;
      const moved = ring[last]!;
      ring[h] = moved;
      moved.at = h;
      refs[h] = refs[last]!;
      refs[last] = 0;
      ring.pop();
      // The hand looks at the moved block next.
      this.#hand = h;
      // The kept place, when it was the last, moved to the hand's.
      if (at === last) at = h;
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
