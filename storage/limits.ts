/**
 * Every bound kv enforces, named once. The same limits hold embedded and over
 * the network. Changing a limit that shapes files (record size) is safe only
 * upwards: readers reject records larger than the limit as corrupt.
 */

/**
 * Largest key, in bytes. Keys are held in memory per entry and repeated in
 * indexes; 64 KiB keeps a worst-case key comparable to a data block.
 */
export const KEY_BYTES_MAX = 64 * 1024;

/**
 * Largest value, in bytes. A value is written in one WAL record and held
 * whole in memory while read; 16 MiB bounds that copy.
 */
export const VALUE_BYTES_MAX = 16 * 1024 * 1024;

/** Most operations in one atomic batch. Bounds the work of one commit. */
export const BATCH_OPS_MAX = 100_000;

/**
 * Most keys in one getMany. Bounds the values one call copies out and holds
 * at once (up to this many times VALUE_BYTES_MAX in the worst case).
 */
export const GET_MANY_KEYS_MAX = 10_000;

/**
 * Largest encoded batch, in bytes. One batch is one WAL record that recovery
 * must read whole; 64 MiB bounds that allocation.
 */
export const BATCH_BYTES_MAX = 64 * 1024 * 1024;

/**
 * Largest WAL payload a reader accepts. A length field above this is
 * corruption, so a reader never allocates from an unchecked length.
 */
export const WAL_RECORD_BYTES_MAX = BATCH_BYTES_MAX + 1024;

/**
 * Bytes of each chunk the log encodes queued records into. A record
 * bigger than a chunk gets a chunk of its own, which is not kept.
 */
export const LOG_CHUNK_BYTES = 512 * 1024;

/**
 * Most written log chunks kept for reuse (12 MiB), by the store's next
 * records and the next segment's writer: enough for what a new segment
 * queues while the one before it is synced, so that a steady stream of
 * writes encodes into memory already in use. More are let go, and all of
 * them when the store closes.
 */
export const LOG_SPARE_CHUNKS_MAX = 24;

/**
 * Most encoded bytes queued for the log while an fsync is in flight. Writes
 * beyond it are rejected with a RangeError (nothing is stored) rather than
 * letting a caller that never awaits grow memory without bound.
 */
export const LOG_QUEUED_BYTES_MAX = 256 * 1024 * 1024;

/**
 * Bytes a search for a valid WAL record or manifest edit after damage may
 * checksum, for `searched` bytes searched: 64 MiB plus eight per byte. Data
 * whose every few bytes look like a header (a value of small integers) made
 * a search checksum a long candidate at each of them, for minutes; past the
 * budget, a valid record cannot be ruled out, and the damage is corruption.
 */
export function damageSearchBudget(searched: number): number {
  return 64 * 1024 * 1024 + 8 * Math.max(0, searched);
}

/** Longest gap between fsyncs under `--sync interval`, in milliseconds. */
export const SYNC_INTERVAL_MS = 100;

/**
 * Bytes buffered in memory under `--sync none` before they are handed to the
 * OS even if the event loop has not yet turned.
 */
export const UNSYNCED_BUFFER_BYTES_MAX = 1024 * 1024;

/**
 * Zero-filled space a WAL segment is grown by ahead of its records, in
 * bytes. An fdatasync after an append inside the file commits no new file
 * size; at the end it does (on ext4, a journal commit), and a raw loop of
 * write and fdatasync ran at about 0.75x the rate it did into such space. The
 * space is sparse (no disk blocks until written) and cut when the segment
 * is closed; a crash leaves it, and recovery reads it as the log's end.
 */
export const WAL_PREALLOCATE_BYTES = 1024 * 1024;

/**
 * The unit in which a power cut may keep some sectors of a write into a
 * WAL segment's preallocated space and lose others, in bytes: the
 * filesystem block (4 KiB on ext4 and most Linux filesystems). Recovery
 * reads damage followed by valid records within one such block, with only
 * zeros after it, as a torn write (see SegmentReader.recordAfterDamage).
 */
export const WAL_TEAR_BLOCK_BYTES = 4096;

/** Size of the buffer recovery reads WAL segments with. */
export const WAL_READ_CHUNK_BYTES = 1024 * 1024;

/**
 * Largest manifest a reader accepts; a writer refuses an edit that would
 * pass it (the store then fails, rather than commit what it could not
 * reopen). Recovery reads the manifest whole, so this bounds that read.
 * A manifest starts with a snapshot of the tables (about 60 bytes plus
 * two keys each) and grows to twice that before a new one starts: this
 * allows about 2 million tables with 100-byte keys (4 TB of 2 MiB
 * tables), or 4,000 with keys of 64 KiB.
 */
export const MANIFEST_BYTES_MAX = 1024 * 1024 * 1024;

/**
 * Manifest size that triggers writing a fresh one (a snapshot), or twice
 * the snapshot the manifest started with when that is more.
 */
export const MANIFEST_ROTATE_BYTES = 4 * 1024 * 1024;

/**
 * Largest single version edit, in bytes: a writer refuses a bigger one
 * (the store then fails rather than commit what a reader would reject).
 */
export const MANIFEST_EDIT_BYTES_MAX = 32 * 1024 * 1024;

/** Default memtable size before it is frozen and flushed (4 MiB). */
export const MEMTABLE_BYTES_DEFAULT = 4 * 1024 * 1024;

/**
 * A WAL segment past this many times the memtable size freezes the
 * memtable however small it is. Overwrites of the same keys replace
 * versions in the memtable but every one is appended to the log: without
 * this bound a hot key rewritten forever grew one segment without end (2
 * million overwrites of 9,000 keys left a 126 MB segment behind a 2 MB
 * memtable), and so did the replay at the next open.
 */
export const WAL_SEGMENT_MEMTABLE_RATIO = 2;

/** Smallest memtable size a store accepts (tests use tiny ones). */
export const MEMTABLE_BYTES_MIN = 1024;

/** Largest memtable size a store accepts (1 GiB). */
export const MEMTABLE_BYTES_MAX = 1024 * 1024 * 1024;

/**
 * Most frozen memtables waiting for flush. Once the memtable is full and
 * this many are frozen, writes wait (stall) for a flush: memory stays
 * bounded however fast writes come. Four, not two: the extra ones absorb
 * bursts the worker's flushes fall behind on (fills of 200k keys ran 15-30%
 * faster) for a few MiB of memory.
 */
export const IMMUTABLE_MEMTABLES_MAX = 4;

/**
 * After this long with no write (and no flush or merge running), level 0
 * holding IDLE_MERGE_L0_TABLES or more tables, below its trigger, is
 * merged down: reads after a burst of writes then look through one table
 * per level instead of every level-0 table (a seek, a cursor per table).
 */
export const IDLE_MERGE_MS_DEFAULT = 1000;

/** Level-0 tables from which an idle store merges level 0 down. */
export const IDLE_MERGE_L0_TABLES = 2;

/** Default target size of a table's data block. */
export const BLOCK_BYTES_DEFAULT = 4096;

/** Default Bloom filter bits per key (about 1% false positives). */
export const BLOOM_BITS_PER_KEY_DEFAULT = 10;

/** Target size of a table written by a merge. */
export const TABLE_BYTES_TARGET = 2 * 1024 * 1024;

/** Number of level-0 tables that triggers merging them into level 1. */
export const L0_MERGE_TRIGGER = 8;

/**
 * Level 1's default size target (`l1Bytes`); each deeper level's is
 * LEVEL_SIZE_RATIO times the one above (640 MiB for level 2, 6.25 GiB for
 * level 3, ...). About twice what level 0 holds when it is merged, so that
 * a level-0 merge rewrites a bounded amount.
 */
export const L1_BYTES_DEFAULT = 64 * 1024 * 1024;

/** How much bigger each level's size target is than the one above. */
export const LEVEL_SIZE_RATIO = 10;

/**
 * Level 0 at this many times its merge trigger stops flushes until the
 * running merge ends (LevelDB's stop trigger): reads stay bounded.
 */
export const L0_STOP_FACTOR = 3;

/**
 * Most tables opened at once, by a store opening or by a commit adding them:
 * each open is a file open on the runtime's blocking thread pool, which
 * grows a thread for each one waiting (thirty at once took a process from 6
 * to 28 threads). Opened one after another, each waiting for its turn of
 * the event loop, a 550-table store took half as long again to open.
 */
export const TABLE_OPENS_AT_ONCE = 64;

/** Default block cache capacity in bytes. */
export const BLOCK_CACHE_BYTES_DEFAULT = 64 * 1024 * 1024;

/**
 * Most writes waiting for a flush. Beyond it a write is rejected with a
 * RangeError (nothing stored): a caller that never awaits cannot grow
 * memory without bound.
 */
export const STALLED_WRITES_MAX = 65_536;
