/**
 * CRC-32 (ISO-HDLC: the polynomial of zlib, gzip, PNG and Ethernet), the
 * checksum of WAL records and table blocks written since format 2.
 * Computed natively by `node:zlib`, about 20 times faster than CRC-32C in
 * JavaScript (`crc32c.ts`): 0.11 µs instead of 2.5 µs per 4 KiB block.
 *
 * @example
 * ```ts
 * import { crc32 } from "./crc32.ts";
 * crc32(new TextEncoder().encode("123456789")); // 0xcbf43926
 * ```
 */
import { crc32 as zlibCrc32 } from "node:zlib";

/**
 * Extends a running CRC-32 with `data[start, end)`. Pass `0` as `crc` to
 * start. The result is an unsigned 32-bit integer.
 */
export function crc32Update(
  crc: number,
  data: Uint8Array,
  start = 0,
  end: number = data.length,
): number {
  const view = start === 0 && end === data.length
    ? data
    : data.subarray(start, end);
  return zlibCrc32(view, crc) >>> 0;
}

/** CRC-32 of `data[start, end)`. */
export function crc32(
  data: Uint8Array,
  start = 0,
  end: number = data.length,
): number {
  return crc32Update(0, data, start, end);
}
