/**
 * Little-endian fixed-width and varint coding over `Uint8Array`s, as in
 * LevelDB's util/coding. 64-bit fields hold integers up to 2^53 - 1
 * (`Number.MAX_SAFE_INTEGER`) so callers never pay for BigInt.
 */

const TWO_32 = 0x1_0000_0000;

/** Largest value {@linkcode putFixed64} accepts. */
export const FIXED64_SAFE_MAX = Number.MAX_SAFE_INTEGER;

/** Bytes a varint32 of `value` occupies (1 to 5). */
export function varint32Length(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x20_0000) return 3;
  if (value < 0x1000_0000) return 4;
  return 5;
}

/**
 * Writes `value` (0 to 2^32 - 1) as a varint32 at `offset`; returns the offset
 * after it. REQUIRES: enough room in `buf`.
 */
export function putVarint32(
  buf: Uint8Array,
  offset: number,
  value: number,
): number {
  let v = value >>> 0;
  while (v >= 0x80) {
    buf[offset++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[offset++] = v;
  return offset;
}

/** Result slot for {@linkcode getVarint32}, reused to avoid allocation. */
export interface VarintResult {
  value: number;
  offset: number;
}

/**
 * Decodes a varint32 at `offset`, not reading at or past `limit`. Returns
 * false if the bytes end early or the varint is longer than 5 bytes or
 * overflows 32 bits; `out` then holds nothing useful.
 */
export function getVarint32(
  buf: Uint8Array,
  offset: number,
  limit: number,
  out: VarintResult,
): boolean {
  let result = 0;
  for (let shift = 0; shift <= 28; shift += 7) {
    if (offset >= limit) return false;
    const byte = buf[offset++]!;
    if (shift === 28 && byte > 0x0f) return false;
    result += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      out.value = result;
      out.offset = offset;
      return true;
    }
  }
  return false;
}

/** Writes a little-endian u32 at `offset`. */
export function putFixed32(buf: Uint8Array, offset: number, value: number) {
  buf[offset] = value & 0xff;
  buf[offset + 1] = (value >>> 8) & 0xff;
  buf[offset + 2] = (value >>> 16) & 0xff;
  buf[offset + 3] = (value >>> 24) & 0xff;
}

/** Reads a little-endian u32 at `offset`. REQUIRES: 4 bytes available. */
export function getFixed32(buf: Uint8Array, offset: number): number {
  return (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16) |
    (buf[offset + 3]! << 24)) >>> 0;
}

/**
 * Writes a little-endian u64 holding a safe integer at `offset`.
 * REQUIRES: 0 <= value <= 2^53 - 1.
 */
export function putFixed64(buf: Uint8Array, offset: number, value: number) {
  const lo = value % TWO_32;
  putFixed32(buf, offset, lo);
  putFixed32(buf, offset + 4, (value - lo) / TWO_32);
}

/**
 * Reads a little-endian u64 at `offset`. Returns -1 when the value does not
 * fit a safe integer, which callers treat as corruption.
 */
export function getFixed64(buf: Uint8Array, offset: number): number {
  const lo = getFixed32(buf, offset);
  const hi = getFixed32(buf, offset + 4);
  if (hi > 0x1f_ffff) return -1;
  return hi * TWO_32 + lo;
}
