/**
 * Bloom filter over binary-string keys, sized from the real key count.
 * Format: docs/format/sstable.md, "Filter block".
 */
import { BLOOM_SEED_1, BLOOM_SEED_2 } from "../format.ts";

function fnv1a(key: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return avalanche(h);
}

/** Final avalanche so nearby keys spread over the bit array. */
function avalanche(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/**
 * Stores bloomHash1(key) in `h1s[i]` and bloomHash2(key) in `h2s[i]`, in one
 * pass over the key (a table writer hashes every key it adds).
 */
export function putBloomHashes(
  key: string,
  h1s: Uint32Array,
  h2s: Uint32Array,
  i: number,
): void {
  let a = BLOOM_SEED_1;
  let b = BLOOM_SEED_2;
  for (let j = 0; j < key.length; j++) {
    const c = key.charCodeAt(j);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  h1s[i] = avalanche(a);
  h2s[i] = avalanche(b) | 1;
}

/** Number of probes for a bits-per-key setting. */
export function bloomProbes(bitsPerKey: number): number {
  return Math.min(30, Math.max(1, Math.round(bitsPerKey * 0.69)));
}

/** The two probe hashes of a key, kept by a table writer per key. */
export function bloomHash1(key: string): number {
  return fnv1a(key, BLOOM_SEED_1);
}

/** Second probe hash; odd so that probes cycle through the bit array. */
export function bloomHash2(key: string): number {
  return fnv1a(key, BLOOM_SEED_2) | 1;
}

/**
 * Builds the filter block contents from `n` keys' hashes. With bitsPerKey 0
 * the block is a single zero byte: no filter, every lookup reads the index.
 */
export function buildBloom(
  h1s: Uint32Array,
  h2s: Uint32Array,
  n: number,
  bitsPerKey: number,
): Uint8Array {
  if (bitsPerKey <= 0 || n === 0) return Uint8Array.of(0);
  const bytes = Math.max(8, Math.ceil((n * bitsPerKey) / 8));
  const k = bloomProbes(bitsPerKey);
  const out = new Uint8Array(bytes + 1);
  const bits = bytes * 8;
  for (let j = 0; j < n; j++) {
    const h1 = h1s[j]!;
    const h2 = h2s[j]!;
    for (let i = 0; i < k; i++) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % bits;
      out[bit >>> 3]! |= 1 << (bit & 7);
    }
  }
  out[bytes] = k;
  return out;
}

/**
 * True when `key` may be in the filter; false means certainly absent.
 * A filter with k = 0 (disabled) or a k above 30 (unknown) says "may".
 */
export function bloomMayContain(
  filter: Uint8Array,
  key: string,
  h1: number = bloomHash1(key),
  h2: number = bloomHash2(key),
): boolean {
  const bytes = filter.length - 1;
  const k = filter[bytes]!;
  if (k === 0 || k > 30 || bytes <= 0) return true;
  const bits = bytes * 8;
  for (let i = 0; i < k; i++) {
    const bit = ((h1 + Math.imul(i, h2)) >>> 0) % bits;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}
