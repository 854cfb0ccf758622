/**
 * A least-recently-used cache of decoded data blocks, bounded in bytes and
 * shared by every table of a store. Map iteration order is insertion order,
 * so re-inserting on a hit keeps the least recently used entry first.
 */
import type { DataBlock } from "./block.ts";

/** Hit and miss counters. */
export interface BlockCacheStats {
  hits: number;
  misses: number;
  bytes: number;
  blocks: number;
}

/** LRU cache of decoded blocks keyed by file number and block offset. */
export class BlockCache {
  #map = new Map<string, DataBlock>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {}

  /** The cached block, counting a hit or a miss. */
  get(fileNumber: number, offset: number): DataBlock | undefined {
    const key = `${fileNumber}:${offset}`;
    const block = this.#map.get(key);
    if (block === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.#map.delete(key);
    this.#map.set(key, block);
    return block;
  }

  /** Caches a block, evicting the least recently used beyond capacity. */
  set(fileNumber: number, offset: number, block: DataBlock): void {
    if (block.bytes > this.capacityBytes) return;
    const key = `${fileNumber}:${offset}`;
    const old = this.#map.get(key);
    if (old) {
      this.#bytes -= old.bytes;
      this.#map.delete(key);
    }
    this.#map.set(key, block);
    this.#bytes += block.bytes;
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
