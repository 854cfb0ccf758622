/**
 * Sorting binary strings (bytewise order) by radix: a typed-array sort of
 * numbers, each packing the next three bytes of a key with its index, puts
 * keys in order by those bytes natively, without a comparison callback per
 * step; only keys that tie go on to the next three bytes. With it, a flush
 * cursor's set-up for 16k random keys (reading them and sorting) went from
 * 0.41-0.44 to 0.28-0.29 µs per key against a typed-array sort comparing
 * the strings.
 */

/** Runs this short are sorted by comparing strings. */
const SMALL_RUN = 16;
/** Index part of a packed number: sorts of up to 2^21 keys use radix. */
const INDEX_SCALE = 2 ** 21;
/** Bytes per pass; each takes 9 bits, 0 meaning past the key's end. */
const PASS_BYTES = 3;
/** Passes after which a run is sorted by comparing strings. */
const MAX_PASSES = 32;

/** Indexes of `keys` (binary strings) in bytewise key order. */
export function sortedOrder(keys: readonly string[]): Uint32Array {
  const n = keys.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (n > INDEX_SCALE) {
    order.sort((a, b) => compare(keys[a]!, keys[b]!));
    return order;
  }
  radixRun(keys, order, new Float64Array(n), 0, n, 0, 0);
  return order;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The 9-bit digits of `key`'s bytes [at, at + 3) as one number. */
function digits(key: string, at: number): number {
  let d = 0;
  for (let i = at; i < at + PASS_BYTES; i++) {
    d = d * 512 + (i < key.length ? key.charCodeAt(i) + 1 : 0);
  }
  return d;
}

/**
 * Sorts `order[lo, hi)`, whose keys share their first `skip` bytes.
 * `packed` is scratch space as long as `order`.
 */
function radixRun(
  keys: readonly string[],
  order: Uint32Array,
  packed: Float64Array,
  lo: number,
  hi: number,
  skip: number,
  passes: number,
): void {
  if (hi - lo <= SMALL_RUN || passes >= MAX_PASSES) {
    insertionSort(keys, order, lo, hi);
    return;
  }
  skip = sharedBytes(keys, order, lo, hi, skip);
  for (let i = lo; i < hi; i++) {
    const e = order[i]!;
    packed[i] = digits(keys[e]!, skip) * INDEX_SCALE + e;
  }
  packed.subarray(lo, hi).sort();
  let start = lo;
  let word = -1;
  for (let i = lo; i <= hi; i++) {
    let w = -1;
    if (i < hi) {
      const p = packed[i]!;
      const e = p % INDEX_SCALE;
      order[i] = e;
      w = (p - e) / INDEX_SCALE;
    }
    if (w === word) continue;
    // Keys tied on all three bytes, the last of them present, may differ
    // further on; ties that ended inside the three are equal keys.
    if (i - start > 1 && word % 512 !== 0) {
      radixRun(keys, order, packed, start, i, skip + PASS_BYTES, passes + 1);
    }
    start = i;
    word = w;
  }
}

/** How many bytes from `skip` on all keys of `order[lo, hi)` share, plus skip. */
function sharedBytes(
  keys: readonly string[],
  order: Uint32Array,
  lo: number,
  hi: number,
  skip: number,
): number {
  const first = keys[order[lo]!]!;
  let end = first.length;
  for (let i = lo + 1; i < hi && end > skip; i++) {
    const key = keys[order[i]!]!;
    const n = Math.min(end, key.length);
    let j = skip;
    while (j < n && key.charCodeAt(j) === first.charCodeAt(j)) j++;
    end = j;
  }
  return end;
}

function insertionSort(
  keys: readonly string[],
  order: Uint32Array,
  lo: number,
  hi: number,
): void {
  for (let i = lo + 1; i < hi; i++) {
    const e = order[i]!;
    const key = keys[e]!;
    let j = i - 1;
    while (j >= lo && keys[order[j]!]! > key) {
      order[j + 1] = order[j]!;
      j--;
    }
    order[j + 1] = e;
  }
}
