/**
 * Assertions for implementation code (TigerBeetle style): a failed assertion
 * is a bug in kv, never bad user input, which gets a TypeError/RangeError.
 */

/** Thrown when an internal invariant does not hold. */
export class AssertionError extends Error {
  override name = "AssertionError";
}

/** Throws an {@linkcode AssertionError} unless `condition` holds. */
export function assert(
  condition: unknown,
  message = "Assertion failed",
): asserts condition {
  if (!condition) throw new AssertionError(message);
}
