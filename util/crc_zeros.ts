/**
 * Extending a CRC over zero bytes without reading them: the CRC of
 * `data` followed by `n` zero bytes, from the CRC of `data` alone, in
 * O(log n) steps. Recovery checks candidate records that run into a
 * segment's zero-filled (preallocated) space this way, so that the
 * zeros cost nothing to checksum.
 *
 * The math: for a reflected CRC, feeding a zero bit maps the shift
 * register r to (r >>> 1) ^ (r & 1 ? poly : 0), a linear map over GF(2),
 * that is, a 32x32 bit matrix. Feeding n zero bytes applies that map 8n
 * times; the matrices for 2^k zero bytes are built once by squaring, and
 * n's binary digits pick which of them to apply. The CRCs here invert the
 * register before and after (init and final XOR 0xffffffff), so the
 * register is the CRC's complement.
 *
 * @example
 * ```ts
 * import { crc32 } from "./crc32.ts";
 * import { crc32ExtendZeros } from "./crc_zeros.ts";
 * const data = new Uint8Array([1, 2, 3, 0, 0]);
 * crc32ExtendZeros(crc32(data, 0, 3), 2) === crc32(data); // true
 * ```
 */

/** A 32x32 bit matrix: column j is the image of bit j. */
type Matrix = Uint32Array;

function apply(m: Matrix, v: number): number {
  let out = 0;
  for (let j = 0; v !== 0; j++, v >>>= 1) {
    if (v & 1) out ^= m[j]!;
  }
  return out >>> 0;
}

function square(m: Matrix): Matrix {
  const out = new Uint32Array(32);
  for (let j = 0; j < 32; j++) out[j] = apply(m, m[j]!);
  return out;
}

/** A function extending a CRC with reflected polynomial `poly`. */
function zeroExtender(poly: number): (crc: number, n: number) => number {
  // One zero bit, then 2, 4 and 8 of them: one zero byte.
  let m: Matrix = new Uint32Array(32);
  m[0] = poly;
  for (let j = 1; j < 32; j++) m[j] = (1 << (j - 1)) >>> 0;
  for (let i = 0; i < 3; i++) m = square(m);
  /** powers[k]: the matrix of 2^k zero bytes, built as needed. */
  const powers: Matrix[] = [m];
  return (crc, n) => {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`zero count ${n} is not a non-negative integer`);
    }
    let r = ~crc >>> 0;
    for (let k = 0; n > 0; k++, n = Math.floor(n / 2)) {
      if (k === powers.length) powers.push(square(powers[k - 1]!));
      if (n % 2 === 1) r = apply(powers[k]!, r);
    }
    return ~r >>> 0;
  };
}

/** The CRC-32 (crc32.ts) of some data followed by `n` zero bytes. */
export const crc32ExtendZeros: (crc: number, n: number) => number =
  zeroExtender(0xedb88320);

/** The CRC-32C (crc32c.ts) of some data followed by `n` zero bytes. */
export const crc32cExtendZeros: (crc: number, n: number) => number =
  zeroExtender(0x82f63b78);
