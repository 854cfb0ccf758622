/** Binary search over sorted string arrays (binary strings sort bytewise). */

/**
 * Index of the first key >= `key` in sorted `keys` (keys.length if none),
 * searching `keys[lo, hi)` (hi when none there).
 */
export function lowerBound(
  keys: readonly string[],
  key: string,
  lo = 0,
  hi: number = keys.length,
): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first key > `key` in sorted `keys` (keys.length if none). */
export function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The four bytes of binary string `key` after its first `skip` as a
 * big-endian number (missing bytes count as zero). For keys sharing their
 * first `skip` bytes the numbers are in key order, equal when the keys agree
 * on the next four: a binary search of such numbers in a compact array
 * touches a few cache lines where one over the strings touches one string
 * per step, and only ties need the strings.
 */
export function keyWord(key: string, skip: number): number {
  let d = 0;
  for (let i = skip; i < skip + 4; i++) {
    d = d * 256 + (i < key.length ? key.charCodeAt(i) : 0);
  }
  return d;
}

/** Length of the prefix `a` and `b` share. */
export function sharedPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/**
 * Index of the first of `keys` that is >= `key` (keys.length if none), as
 * {@linkcode lowerBound}, given `words[i]` = keyWord(keys[i], skip).
 * REQUIRES: `keys` sorted, all sharing their first `skip` bytes with `key`.
 */
export function wordLowerBound(
  keys: readonly string[],
  words: Uint32Array,
  skip: number,
  key: string,
): number {
  const d = keyWord(key, skip);
  let lo = 0;
  let hi = words.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (words[mid]! < d) lo = mid + 1;
    else hi = mid;
  }
  // [lo, end) share the number: their strings decide.
  let end = lo;
  hi = words.length;
  while (end < hi) {
    const mid = (end + hi) >>> 1;
    if (words[mid]! <= d) end = mid + 1;
    else hi = mid;
  }
  return lowerBound(keys, key, lo, end);
}
