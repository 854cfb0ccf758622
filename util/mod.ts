/**
 * Primitives shared by every layer: checksums, byte coding, byte strings,
 * assertions, a seeded PRNG and binary search. Imports nothing.
 *
 * @module
 */
export * from "./crc32.ts";
export * from "./crc32c.ts";
export * from "./crc_zeros.ts";
export * from "./coding.ts";
export * from "./bytes.ts";
export * from "./assert.ts";
export * from "./prng.ts";
export * from "./search.ts";
export * from "./sort.ts";
export * from "./spares.ts";
