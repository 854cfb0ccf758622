/**
 * On-disk constants of kv's file formats.
 *
 * THESE VALUES MUST NOT CHANGE: they are written to disk, and files written
 * by any earlier version must keep reading the same way. Incompatible changes
 * get a new format version instead. Specs: docs/format/wal.md.
 */

/** WAL frame header: masked checksum (4) + payload length (4) + type (1). */
export const WAL_HEADER_BYTES = 9;

/**
 * Set in a WAL record's type byte when its checksum is CRC-32 (zlib's), as
 * every record written since format 2 is; clear, the checksum is CRC-32C
 * (records written before). The other bits are the record type.
 */
export const WAL_TYPE_CRC32 = 0x80;

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

// ---- SSTable (docs/format/sstable.md) ----

/** SSTable file suffix; tables are named NNNNNN.sst by file number. */
export const SSTABLE_SUFFIX = ".sst";

/** Suffix of a table being written, renamed away once synced. */
export const TEMP_SUFFIX = ".tmp";

/**
 * Block trailer: compression (1) + masked checksum (4): CRC-32 (zlib's) in
 * format 2 tables, CRC-32C in format 1 tables.
 */
export const BLOCK_TRAILER_BYTES = 5;

/** Block compression byte: only "none" exists. */
export const BLOCK_COMPRESSION_NONE = 0;

/** Entries between restart points in data and index blocks. */
export const BLOCK_RESTART_INTERVAL = 16;

/** Footer: three 12-byte handles + format version (4) + magic (8). */
export const TABLE_FOOTER_BYTES = 48;

/** The SSTable format version written: blocks checksummed with CRC-32. */
export const TABLE_FORMAT_VERSION = 2;

/** The first SSTable format version, still read: blocks use CRC-32C. */
export const TABLE_FORMAT_VERSION_CRC32C = 1;

/** "kvsstab1": the last 8 bytes of every table. */
export const TABLE_MAGIC = Uint8Array.of(
  0x6b,
  0x76,
  0x73,
  0x73,
  0x74,
  0x61,
  0x62,
  0x31,
);

/** Entry tag kinds in data blocks, and the has-expiry flag. */
export const EntryTag = {
  PUT: 1,
  DELETE: 2,
  HAS_EXPIRY: 0x80,
} as const;

/** Seeds of the two FNV-1a hashes the Bloom filter probes with. */
export const BLOOM_SEED_1 = 0x811c9dc5;
export const BLOOM_SEED_2 = 0x050c5d1f;

/**
 * Last byte of a blocked Bloom filter (all of a key's probes in one 64-byte
 * line). Above 30, so a reader that knows only the first layout, whose last
 * byte is the probe count, takes it for an unknown filter and reads the
 * index instead: right answers, no filtering.
 */
export const BLOOM_BLOCKED_MARKER = 0xb1;

/** Bytes per line of a blocked Bloom filter: a cache line. */
export const BLOOM_LINE_BYTES = 64;

/** Multiplier that derives each probe's hash from the one before. */
export const BLOOM_PROBE_MULTIPLIER = 0x9e3779b9;

// ---- Manifest (docs/format/manifest.md) ----

/**
 * A WAL segment or table by file number (`NNNNNN.log`, `NNNNNN.sst`), or
 * either under its temporary name (`.tmp` after it): group 1 is the
 * number, group 3 the `.tmp` when present. Numbers are zero-padded to six
 * digits, no more: `0000880.log` is not the store's (read as segment 880
 * beside `000880.log`, it made a repair set every later segment aside).
 */
export const NUMBERED_FILE = /^(\d{6}|[1-9]\d{6,})\.(log|sst)(\.tmp)?$/;

/** Manifest files are MANIFEST-NNNNNN by file number. */
export const MANIFEST_PREFIX = "MANIFEST-";

/**
 * A manifest's name: only these are a store's own (`MANIFEST-backup` is a
 * user's file, which open must not remove); group 1 is the number.
 */
export const MANIFEST_FILE = /^MANIFEST-(\d{6}|[1-9]\d{6,})$/;

/** Names the live manifest; replaced atomically (temp, sync, rename). */
export const CURRENT_FILE_NAME = "CURRENT";

/** Manifest frame header: masked crc32c (4) + payload length (4). */
export const MANIFEST_HEADER_BYTES = 8;

/** Field tags of a version edit. */
export const EditTag = {
  NEXT_FILE: 1,
  LAST_SEQUENCE: 2,
  LOG_NUMBER: 3,
  ADD_TABLE: 4,
  REMOVE_TABLE: 5,
  ADD_LOG: 6,
} as const;
