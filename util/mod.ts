/**
 * Primitives shared by every layer: checksums, byte coding, byte strings,
 * assertions and a seeded PRNG. Imports nothing.
 *
 * @module
 */
export * from "./crc32c.ts";
export * from "./coding.ts";
export * from "./bytes.ts";
export * from "./assert.ts";
export * from "./prng.ts";
