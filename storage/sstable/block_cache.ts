/**
 * A cache of data blocks shared by every table of a store, bounded in
 * bytes, with CLOCK eviction: a hit only sets the block's reference bit (no
 * map update), and the hand evicts blocks not referenced since it last
 * passed. A block is cached as its verified raw contents (enough for point
 * lookups); iteration adds the decoded form, and the cache counts both.
 *
 * Each table keeps its cached blocks in its own slot array (indexed by
 * block number), so a lookup is an array read, not a hash.
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
  /** The owning table's slots, and this block's index in them. */
  slots: Array<CachedBlock | undefined>;
  index: number;
}

/** CLOCK cache of table blocks. */
export class BlockCache {
  #ring: CachedBlock[] = [];
  #hand = 0;
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {}

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
    this.#ring.push(block);
    this.#bytes += block.bytes;
    this.#evict();
  }

  /** Charges `delta` more bytes to a cached block (it was decoded). */
  grow(block: CachedBlock, delta: number): void {
    if (block.slots[block.index] !== block) return;
    block.bytes += delta;
    this.#bytes += delta;
    this.#evict();
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

  #evict(): void {
    const ring = this.#ring;
    while (this.#bytes > this.capacityBytes && ring.length > 0) {
      if (this.#hand >= ring.length) this.#hand = 0;
      const b = ring[this.#hand]!;
      const live = b.slots[b.index] === b;
      if (live && b.ref) {
        b.ref = false;
        this.#hand++;
        continue;
      }
      if (live) b.slots[b.index] = undefined;
      this.#bytes -= b.bytes;
      ring[this.#hand] = ring[ring.length - 1]!;
      ring.pop();
    }
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
