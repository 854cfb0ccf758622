/**
 * On-disk constants of kv's file formats.
 *
 * THESE VALUES MUST NOT CHANGE: they are written to disk, and files written
 * by any earlier version must keep reading the same way. Incompatible changes
 * get a new format version instead. Specs: docs/format/wal.md.
 */

/** WAL frame header: masked crc32c (4) + payload length (4) + type (1). */
export const WAL_HEADER_BYTES = 9;

/**
 * WAL record types. 0 is reserved so that zero-filled space (preallocation,
 * or a torn write that left zeros) never reads as a record.
 */
export const WalRecordType = {
  ZERO: 0,
  PUT: 1,
  DELETE: 2,
  BATCH: 3,
} as const;

/** Operation kinds inside a BATCH record; same numbering as record types. */
export const BatchOpKind = {
  PUT: 1,
  DELETE: 2,
} as const;

/** Fixed prefix of every WAL payload: sequence (8) + timestamp ms (8). */
export const WAL_PAYLOAD_PREFIX_BYTES = 16;

/** WAL segment file names: six or more decimal digits, then ".log". */
export const WAL_SEGMENT_SUFFIX = ".log";

/** Name of the lock file held by the process that owns a data directory. */
export const LOCK_FILE_NAME = "LOCK";
