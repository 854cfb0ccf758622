/**
 * A least-recently-used cache of data blocks, bounded in bytes and shared
 * by every table of a store. A block is cached as its verified raw contents
 * (enough for point lookups); iteration adds the decoded form, and the
 * cache counts both. Map iteration order is insertion order, so
 * re-inserting on a hit keeps the least recently used entry first.
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
  /** Cache clock at the last move to the recent end. */
  touched: number;
}

/** One number per block: tables stay far below 2^32 bytes and 2^21 files. */
function cacheKey(fileNumber: number, offset: number): number {
  return fileNumber * 0x1_0000_0000 + offset;
}

/** LRU cache of blocks keyed by file number and block offset. */
export class BlockCache {
  #map = new Map<number, CachedBlock>();
  #bytes = 0;
  #tick = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {}

  /** The cached block, counting a hit or a miss. */
  get(fileNumber: number, offset: number): CachedBlock | undefined {
    const key = cacheKey(fileNumber, offset);
    const block = this.#map.get(key);
    if (block === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // Move to the recent end only when the block has aged: a hot block is
    // not re-inserted on every hit (an approximate LRU, far fewer map ops).
    if (this.#tick - block.touched > this.#map.size >>> 2) {
      block.touched = this.#tick;
      this.#map.delete(key);
      this.#map.set(key, block);
    }
    this.#tick++;
    return block;
  }

  /** Caches a block, evicting the least recently used beyond capacity. */
  set(fileNumber: number, offset: number, block: CachedBlock): void {
    if (block.bytes > this.capacityBytes) return;
    const key = cacheKey(fileNumber, offset);
    block.touched = this.#tick++;
    const old = this.#map.get(key);
    if (old) {
      this.#bytes -= old.bytes;
      this.#map.delete(key);
    }
    this.#map.set(key, block);
    this.#bytes += block.bytes;
    this.#evict();
  }

  /** Charges `delta` more bytes to a cached block (it was decoded). */
  grow(block: CachedBlock, delta: number): void {
    block.bytes += delta;
    this.#bytes += delta;
    this.#evict();
  }

  #evict(): void {
    for (const [k, b] of this.#map) {
      if (this.#bytes <= this.capacityBytes) break;
      this.#map.delete(k);
      this.#bytes -= b.bytes;
    }
  }

  /** Counters for stats. */
  stats(): BlockCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      bytes: this.#bytes,
      blocks: this.#map.size,
    };
  }
}
