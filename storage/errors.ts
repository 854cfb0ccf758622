/**
 * Error classes of the storage layer. Absence is a value (`undefined`), bad
 * input is a TypeError/RangeError, damage on disk is a CorruptionError, and
 * a store that can no longer write says why with StoreFailedError.
 */

/** Bytes on disk failed verification: a checksum, a length, a format. */
export class CorruptionError extends Error {
  override name = "CorruptionError";
  constructor(
    message: string,
    /** File the damage is in. */
    readonly file: string,
    /** Byte offset of the damaged record or block. */
    readonly offset: number,
  ) {
    super(message);
  }
}

/**
 * The store stopped accepting writes after a write or sync failed
 * (fail-stop). Reads still work; reopening the store recovers.
 */
export class StoreFailedError extends Error {
  override name = "StoreFailedError";
}

/** An operation on a store that was closed. */
export class StoreClosedError extends Error {
  override name = "StoreClosedError";
  constructor() {
    super("Store is closed");
  }
}

/** Another process (or handle) owns the data directory. */
export class LockedError extends Error {
  override name = "LockedError";
}
