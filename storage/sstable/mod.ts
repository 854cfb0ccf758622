/**
 * Sorted string tables: immutable files of sorted entries with checksummed
 * blocks, an index, a Bloom filter and properties. docs/format/sstable.md.
 *
 * @module
 */
export { type DataBlock } from "./block.ts";
export { bloomHash1, bloomHash2, putBloomHashesOfBytes } from "./bloom.ts";
export {
  BlockCache,
  type BlockCacheStats,
  type CachedBlock,
  FREE_BUFFER_BYTES_MAX,
} from "./block_cache.ts";
export {
  type TableMeta,
  tableName,
  type TableOptions,
  TableWriter,
} from "./table_writer.ts";
export {
  type FilterStats,
  openTables,
  propsMatchRecord,
  ReadAhead,
  type ScanBlock,
  type TableEntry,
  tableHit,
  type TableProps,
  TableReader,
  UNKNOWN_TABLE_VERSION,
} from "./table_reader.ts";
