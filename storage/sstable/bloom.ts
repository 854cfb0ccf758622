/**
 * Bloom filter over binary-string keys, sized from the real key count.
 * Format: docs/format/sstable.md, "Filter block".
 *
 * Tables are written with blocked filters: the first hash picks one 64-byte
 * line and every probe of the key tests a bit of that line, so a lookup
 * costs one cache miss per table instead of one per probe (a get after a
 * burst of random writes tests every level-0 table's filter). Filters of
 * the first layout (probes spread over the whole bit array), in tables
 * written before, are still read.
 */
import {
  BLOOM_BLOCKED_MARKER,
  BLOOM_LINE_BYTES,
  BLOOM_PROBE_MULTIPLIER,
  BLOOM_SEED_1,
  BLOOM_SEED_2,
} from "../format.ts";

const LINE_BITS = BLOOM_LINE_BYTES * 8;
/** Shift that keeps a probe hash's top log2(LINE_BITS) bits. */
const LINE_BIT_SHIFT = 32 - Math.log2(LINE_BITS);
const PROBE_MULTIPLIER = BLOOM_PROBE_MULTIPLIER | 0;

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
 * Stores bloomHash1 and bloomHash2 of the key `key[at, at + n)`, given as
 * bytes (the same hashes as for its binary string), in `h1s[i]` and
 * `h2s[i]`, in one pass over the key (a table writer hashes every key it
 * adds).
 */
export function putBloomHashesOfBytes(
  key: Uint8Array,
  at: number,
  n: number,
  h1s: Uint32Array,
  h2s: Uint32Array,
  i: number,
): void {
  let a = BLOOM_SEED_1;
  let b = BLOOM_SEED_2;
  for (let j = at; j < at + n; j++) {
    const c = key[j]!;
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
 * Line of a blocked filter with `lines` lines that key hash `h1` picks: the
 * high bits of h1, scaled (h1 * lines < 2^53, so the product is exact).
 */
function lineOf(h1: number, lines: number): number {
  return Math.floor((h1 * lines) / 4294967296);
}

/**
 * Builds the filter block contents from `n` keys' hashes: a blocked
 * filter. With bitsPerKey 0 the block is a single zero byte: no filter,
 * every lookup reads the index.
 */
export function buildBloom(
  h1s: Uint32Array,
  h2s: Uint32Array,
  n: number,
  bitsPerKey: number,
): Uint8Array {
  if (bitsPerKey <= 0 || n === 0) return Uint8Array.of(0);
  const lines = Math.max(1, Math.ceil((n * bitsPerKey) / LINE_BITS));
  const k = bloomProbes(bitsPerKey);
  const bytes = lines * BLOOM_LINE_BYTES;
  const out = new Uint8Array(bytes + 2);
  for (let j = 0; j < n; j++) {
    const base = lineOf(h1s[j]!, lines) * BLOOM_LINE_BYTES;
    let h = h2s[j]! | 0;
    for (let i = 0; i < k; i++) {
      const bit = h >>> LINE_BIT_SHIFT;
      out[base + (bit >>> 3)]! |= 1 << (bit & 7);
      h = Math.imul(h, PROBE_MULTIPLIER);
    }
  }
  out[bytes] = k;
  out[bytes + 1] = BLOOM_BLOCKED_MARKER;
  return out;
}

/**
 * Builds a filter of the first layout, whose probes spread over the whole
 * bit array: what tables written before blocked filters hold. Kept so that
 * tests can check those still read right.
 */
export function buildSpreadBloom(
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
 * A filter with k = 0 (disabled), a k above 30 or a layout it does not
 * know says "may".
 */
export function bloomMayContain(
  filter: Uint8Array,
  key: string,
  h1: number = bloomHash1(key),
  h2: number = bloomHash2(key),
): boolean {
  const last = filter.length - 1;
  if (filter[last] === BLOOM_BLOCKED_MARKER) {
    const bytes = last - 1;
    const k = filter[bytes]!;
    const lines = bytes / BLOOM_LINE_BYTES;
    if (k === 0 || k > 30 || lines < 1 || lines % 1 !== 0) return true;
    const base = lineOf(h1, lines) * BLOOM_LINE_BYTES;
    let h = h2 | 0;
    for (let i = 0; i < k; i++) {
      const bit = h >>> LINE_BIT_SHIFT;
      if ((filter[base + (bit >>> 3)]! & (1 << (bit & 7))) === 0) return false;
      h = Math.imul(h, PROBE_MULTIPLIER);
    }
    return true;
  }
  const k = filter[last]!;
  if (k === 0 || k > 30 || last <= 0) return true;
  const bits = last * 8;
  for (let i = 0; i < k; i++) {
    const bit = ((h1 + Math.imul(i, h2)) >>> 0) % bits;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}
