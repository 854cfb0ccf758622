/**
 * The store: a WAL for durability in front of an LSM tree — a versioned
 * memtable, frozen memtables being flushed, and SSTables in levels named by
 * a manifest.
 *
 * Invariants:
 * - Sequence numbers are assigned when an operation is issued, and the
 *   memtable and WAL segment it goes to are fixed then too; operations
 *   reach their memtable in sequence order, and only once acknowledged by
 *   the log under the active sync mode. Reads never see unacknowledged
 *   writes.
 * - A read issued after a write to the same key (a scan: after any write)
 *   waits for that write to settle and reads as of its own issue, so
 *   concurrent operations behave as if applied one at a time.
 * - A WAL segment is deleted only after the manifest edit that put its
 *   data in tables is durable; a table only after no live version names it.
 * - After a failed write, fsync, flush or manifest edit the store rejects
 *   writes (fail-stop); reads keep working.
 */
import {
  assert,
  bufferPool,
  bytesToBinary,
  dropAllSpares,
  prefixSuccessor,
  resultPool,
} from "../util/mod.ts";
import {
  type Compaction,
  type CompactionPolicy,
  pickCompaction,
  type TableShape,
} from "./compaction.ts";
import {
  type Env,
  type FileLock,
  joinPath,
  type Timer,
  type WritableFile,
} from "./env.ts";
import { StoreClosedError, StoreFailedError } from "./errors.ts";
import { BatchOpKind } from "./format.ts";
import {
  boundToBinary,
  type Bytes,
  keyToBinary,
  ReadKey,
  valueToBytes,
} from "./input.ts";
import {
  BATCH_BYTES_MAX,
  BATCH_OPS_MAX,
  GET_MANY_KEYS_MAX,
  IDLE_MERGE_L0_TABLES,
  IMMUTABLE_MEMTABLES_MAX,
  L0_STOP_FACTOR,
  LOG_QUEUED_BYTES_MAX,
  STALLED_WRITES_MAX,
  WAL_SEGMENT_MEMTABLE_RATIO,
} from "./limits.ts";
import { LogWriter, type LogWriterStats, type SyncMode } from "./log_writer.ts";
import {
  applyEdit,
  type ManifestState,
  ManifestWriter,
  type VersionEdit,
} from "./manifest.ts";
import {
  encodeMemtable,
  filesFor,
  type Job,
  type JobRunner,
  recycleEntryBuffer,
} from "./jobs.ts";
import { Memtable } from "./memtable.ts";
import type { EntryCursor, MergeCursor } from "./merge.ts";
import type { RecoveryReport } from "./recovery.ts";
import { segmentName } from "./recovery.ts";
import {
  type BlockCache,
  type BlockCacheStats,
  type FilterStats,
  openTables,
  type TableMeta,
  type TableOptions,
  type TableReader,
} from "./sstable/mod.ts";
import { TableSet, Version } from "./version.ts";
import {
  lookup,
  lookupBinary,
  mergedEntries,
  type Sources,
  View,
} from "./view.ts";
import { encodedRecordBytes, type WalOp } from "./wal.ts";

/** The key of the get in progress (gets are synchronous up to the await). */
const getKey = new ReadKey();

export type { Bytes } from "./input.ts";

const RESOLVED = Promise.resolve();

/**
 * With sync "none", every this many bytes of writes one write resolves
 * only after a turn of the event loop (see #perform).
 */
const EVENT_LOOP_TURN_BYTES = 256 * 1024;

/**
 * While background work runs, or an idle merge is due to be checked, every
 * this many entries read (gets, scan entries) one resolves only after a
 * turn of the event loop, so that a reader awaiting promises resolved at
 * once cannot hold up the commits of flushes and merges (whose results
 * arrive as events), nor the idle merge's timer (without the turns, level 0
 * stayed at 5 tables through the whole seek and read loops of `kv bench`).
 */
const READS_PER_TURN = 1024;

/** Most entries a scan's next() reads ahead at once. */
const READ_AHEAD_MAX = 32;

/**
 * Ops written with no read using the index of pending writes, after which
 * the index is dropped (see Store.#pendingByKey): writers that a read met
 * once do not pay for it ever after.
 */
const PENDING_INDEX_IDLE_OPS = 1024;

/** One operation of an atomic {@linkcode Store.batch}. */
export type BatchOp =
  | { type: "put"; key: Bytes; value: Bytes }
  | { type: "delete"; key: Bytes };

/** Range, order and limit of a {@linkcode Store.scan}. */
export interface ScanOptions {
  /** Inclusive lower bound. */
  start?: Bytes;
  /** Exclusive upper bound. */
  end?: Bytes;
  /** Only keys starting with these bytes (combined with start/end). */
  prefix?: Bytes;
  /** Most entries to return. */
  limit?: number;
  /** Descending key order. */
  reverse?: boolean;
}

/**
 * A key and its value, as returned by scans. Both are copies the caller
 * owns, views of shared 64 KiB chunks (as Node's `Buffer` pool): transfer
 * a copy (`slice()`), not `.buffer`, which would empty the other arrays of
 * its chunk.
 */
export interface Entry {
  key: Uint8Array;
  value: Uint8Array;
}

/**
 * What {@linkcode Store.scan}, {@linkcode Store.keys} and a snapshot's
 * scan return: an async iterator, which can also hand over entries many at
 * a time, as classic-level's iterators do (one call and one await for
 * many entries, where `for await` costs one of each per entry).
 */
export interface Scan<T> extends AsyncGenerator<T, undefined> {
  /**
   * Up to `size` next entries (fewer only at the scan's end; none once it
   * has ended). `size` must be a positive integer.
   */
  nextv(size: number): Promise<T[]>;
  /**
   * Every entry left, up to the scan's limit, as one array; the scan has
   * then ended and let go of its view.
   */
  all(): Promise<T[]>;
}

/** Tables and bytes in one level. */
export interface LevelStats {
  tables: number;
  bytes: number;
}

/** Counters and state reported by {@linkcode Store.stats}. */
export interface StoreStats {
  /**
   * Keys in the store when that is known without a scan (everything still
   * in the memtable); otherwise an upper bound (entries in all sources,
   * counting a key once per source). `count()` is exact.
   */
  numKeys: number;
  numKeysExact: boolean;
  lastSequence: number;
  memtableBytes: number;
  immutableMemtables: number;
  levels: LevelStats[];
  walSegments: number;
  walBytes: number;
  syncMode: SyncMode;
  wal: LogWriterStats;
  flushes: number;
  /** Writes that had to wait for a flush to make room. */
  writeStalls: number;
  merges: number;
  /** Level-0 merges done by moving tables that overlap nothing. */
  moves: number;
  /** Merges of level 0 below its trigger, after writes went idle. */
  idleMerges: number;
  blockCache: BlockCacheStats;
  bloom: FilterStats;
  failure: string | undefined;
  recovery: RecoveryReport;
}

/** A frozen memtable waiting for flush, with its WAL segment. */
export interface Frozen {
  mem: Memtable;
  segment: number;
  /** Settles once every write to `mem` is applied and its segment synced. */
  closed: Promise<void>;
  /** The flush job writing `mem` out, once started. */
  tables?: Promise<TableMeta[]>;
}

/** A read-only view of the store at one moment, until released. */
export interface Snapshot {
  /** Sequence number the snapshot reads at. */
  readonly sequence: number;
  get(key: Bytes): Promise<Uint8Array | undefined>;
  getMany(keys: readonly Bytes[]): Promise<(Uint8Array | undefined)[]>;
  scan(options?: ScanOptions): Scan<Entry>;
  /** Frees what the snapshot pins (memtable versions, table files). */
  release(): void;
}

/** Everything {@linkcode Store}'s constructor needs; made by openStore. */
export interface StoreParts {
  env: Env;
  dir: string;
  lock: FileLock;
  mode: SyncMode;
  memtableBytes: number;
  compaction: CompactionPolicy;
  manifestRotateBytes: number;
  tableOptions: TableOptions;
  cache: BlockCache;
  filterStats: FilterStats;
  state: ManifestState;
  manifest: ManifestWriter;
  tables: TableReader[][];
  mem: Memtable;
  segment: number;
  /** Earlier segments replayed at open: their data is in `mem` too. */
  olderSegments: number[];
  segmentBytes: number;
  file: WritableFile;
  recovery: RecoveryReport;
  /** Where flush and merge jobs run. */
  runner: JobRunner;
  /** Write-idle time before level 0 is merged down below its trigger (0: never). */
  idleMergeMs: number;
}

/** A kv store. Create one with `openStore` (storage/open.ts). */
export class Store {
  readonly dir: string;
  /** What recovery did when this store opened. */
  readonly recovery: RecoveryReport;
  #env: Env;
  #lock: FileLock;
  #mode: SyncMode;
  #memtableBytes: number;
  #compaction: CompactionPolicy;
  /** Per level, the largest key its last merge took (where the next starts). */
  #pointers: Array<string | undefined> = [];
  /** Writes issued so far: the idle merge checks that none came. */
  #writesIssued = 0;
  /** The runner was told of the coming flush of the current memtable. */
  #runnerPrepared = false;
  readonly #idleMergeMs: number;
  /** Idle merges started (stats). */
  #idleMerges = 0;
  /** Pending check for an idle merge of level 0. */
  #idleTimer: Timer | undefined;
  #manifestRotateBytes: number;
  #tableOptions: TableOptions;
  #runner: JobRunner;
  #cache: BlockCache;
  #filterStats: FilterStats;
  #state: ManifestState;
  #manifest: ManifestWriter;
  #tables: TableSet;
  #version: Version;
  #mem: Memtable;
  #segment: number;
  #imms: Frozen[] = [];
  #olderSegments: number[];
  /**
   * Memtable, frozen memtables newest first, and version, as reads take
   * them (replaced, never mutated: views keep theirs).
   */
  #current!: Sources;
  #log: LogWriter;
  #lastApplied: number;
  #nextSeq: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  #failure: StoreFailedError | undefined;
  #flushRunning = false;
  #flushDone: Promise<void> = RESOLVED;
  #mergeRunning = false;
  #mergeDone: Promise<void> = RESOLVED;
  /** Jobs running, so that close() can wait for every one. */
  #jobs = new Set<Promise<TableMeta[]>>();
  /** The last manifest edit in progress: edits run one at a time. */
  #commitTail: Promise<void> = RESOLVED;
  #flushes = 0;
  #merges = 0;
  #moves = 0;
  #walStats: LogWriterStats = { records: 0, writes: 0, syncs: 0, groupMax: 0 };
  /**
   * Unsettled writes (durable ones, and stalled ones), in issue order,
   * with the sequence number of their first op.
   */
  #inFlight = new Set<{ ops: WalOp[]; seq: number }>();
  /**
   * Latest unsettled write per key, for issue-order reads: built by the
   * first read that meets writes in flight, kept up by the writes after it
   * and dropped when none is left in flight, or when PENDING_INDEX_IDLE_OPS
   * ops have been written since a read last used it. Writes no read meets
   * cost no map updates: there were three per op, and durable fills in
   * batches of 1000 ran 10-30% faster without them.
   */
  #pendingByKey: Map<string, number> | undefined;
  /** Ops indexed in #pendingByKey since a read last used it. */
  #pendingIndexIdleOps = 0;
  /**
   * Reads waiting for a write to be applied (see #getAfter), each with the
   * sequence number it waits for: run in #applyOps, right after it.
   */
  #readsAfter: Array<{ seq: number; run: () => void }> = [];
  #lastWrite: Promise<void> = RESOLVED;
  /**
   * Operations waiting for a flush to make room, in issue order: writes,
   * and reads issued after them (which must see them).
   */
  #stalled: Array<
    | {
      kind: "write";
      ops: WalOp[];
      seq: number;
      bytes: number;
      resolve: () => void;
      reject: (error: unknown) => void;
    }
    | { kind: "read"; run: () => void }
  > = [];
  #stalledBytes = 0;
  #stalls = 0;
  /** Bytes of unsynced writes acknowledged since the event loop last turned. */
  #bytesSinceTurn = 0;
  /** Entries read since the event loop last turned (see READS_PER_TURN). */
  #readsSinceTurn = 0;
  /** For scans: a turn of the event loop when one is due, else undefined. */
  #readTurn = (): Promise<void> | undefined => {
    if (
      !this.#flushRunning && !this.#mergeRunning &&
      this.#idleTimer === undefined
    ) {
      return undefined;
    }
    if (++this.#readsSinceTurn < READS_PER_TURN) return undefined;
    this.#readsSinceTurn = 0;
    return this.#env.yieldNow();
  };

  /** @internal Use `openStore`. */
  constructor(p: StoreParts) {
    this.dir = p.dir;
    this.recovery = p.recovery;
    this.#env = p.env;
    this.#lock = p.lock;
    this.#mode = p.mode;
    this.#memtableBytes = p.memtableBytes;
    this.#compaction = p.compaction;
    this.#manifestRotateBytes = p.manifestRotateBytes;
    this.#tableOptions = p.tableOptions;
    this.#runner = p.runner;
    this.#idleMergeMs = p.idleMergeMs;
    this.#cache = p.cache;
    this.#filterStats = p.filterStats;
    this.#state = p.state;
    this.#manifest = p.manifest;
    this.#tables = new TableSet((reader) => this.#deleteTable(reader));
    this.#version = new Version(p.tables, this.#tables);
    this.#mem = p.mem;
    this.#sourcesChanged();
    this.#segment = p.segment;
    this.#olderSegments = p.olderSegments;
    this.#log = this.#newLog(segmentName(p.segment), p.file, p.segmentBytes);
    this.#lastApplied = p.recovery.lastSeq;
    this.#nextSeq = p.recovery.lastSeq + 1;
    this.#scheduleBackground();
    if (!this.#flushRunning && !this.#mergeRunning) this.#armIdleMerge();
  }

  #newLog(
    name: string,
    file: WritableFile | Promise<WritableFile>,
    bytes: number,
  ): LogWriter {
    return new LogWriter(
      this.#env,
      joinPath(this.dir, name),
      file,
      this.#mode,
      bytes,
      (error) => this.#fail(error),
    );
  }

  /** Enters fail-stop: no more writes, with `error` as the reason. */
  #fail(error: unknown): void {
    if (this.#failure) return;
    this.#failure = error instanceof StoreFailedError
      ? error
      : new StoreFailedError(
        `${error instanceof Error ? error.message : String(error)}; ` +
          "the store accepts no more writes until it is reopened",
      );
    this.#log.failWith(this.#failure);
    this.#drainStalled();
  }

  #checkWritable(): void {
    if (this.#closed) throw new StoreClosedError();
    if (this.#failure) throw this.#failure;
  }

  /** Sets `key` to `value`. Resolves once durable under the sync mode. */
  put(key: Bytes, value: Bytes): Promise<void> {
    try {
      this.#checkWritable();
      const op: WalOp = {
        kind: BatchOpKind.PUT,
        key: keyToBinary(key),
        value: valueToBytes(value),
        expiry: 0,
      };
      return this.#write([op]);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Removes `key` (no error if absent). Resolves once durable. */
  delete(key: Bytes): Promise<void> {
    try {
      this.#checkWritable();
      const op: WalOp = {
        kind: BatchOpKind.DELETE,
        key: keyToBinary(key),
        value: undefined,
        expiry: 0,
      };
      return this.#write([op]);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Applies `ops` atomically, as one WAL record: after a crash either all
   * of them are there or none. Later ops on the same key win.
   */
  batch(ops: readonly BatchOp[]): Promise<void> {
    try {
      this.#checkWritable();
      if (!Array.isArray(ops)) {
        throw new TypeError("Batch must be an array of operations");
      }
      if (ops.length === 0) return RESOLVED;
      if (ops.length > BATCH_OPS_MAX) {
        throw new RangeError(
          `Batch has ${ops.length} operations; the limit is ${BATCH_OPS_MAX} (BATCH_OPS_MAX)`,
        );
      }
      const walOps = new Array<WalOp>(ops.length);
      let i = 0;
      try {
        for (; i < ops.length; i++) walOps[i] = batchOp(ops[i]!);
      } catch (error) {
        throw inOperation(error, i);
      }
      const bytes = encodedRecordBytes(walOps);
      if (bytes > BATCH_BYTES_MAX) {
        throw new RangeError(
          `Batch encodes to ${bytes} bytes; the limit is ${BATCH_BYTES_MAX} (BATCH_BYTES_MAX)`,
        );
      }
      return this.#write(walOps, bytes);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #write(
    ops: WalOp[],
    bytes: number = encodedRecordBytes(ops),
  ): Promise<void> {
    // Every limit is checked before a sequence number is taken: a write
    // refused after it would leave a gap that recovery calls corruption.
    const stall = this.#stalled.length > 0 || this.#mustStall();
    if (
      this.#log.queuedBytes + this.#stalledBytes + bytes > LOG_QUEUED_BYTES_MAX
    ) {
      return Promise.reject(
        new RangeError(
          `More than ${LOG_QUEUED_BYTES_MAX} bytes of writes are waiting for ` +
            "the log (LOG_QUEUED_BYTES_MAX); await earlier writes before issuing more",
        ),
      );
    }
    if (stall && this.#stalled.length >= STALLED_WRITES_MAX) {
      return Promise.reject(
        new RangeError(
          `${STALLED_WRITES_MAX} operations are already waiting for a flush ` +
            "(STALLED_WRITES_MAX); await earlier writes before issuing more",
        ),
      );
    }
    const seq = this.#nextSeq;
    this.#nextSeq += ops.length;
    this.#writesIssued++;
    if (stall) return this.#stall(ops, seq, bytes);
    return this.#perform(ops, seq, bytes);
  }

  /**
   * True when the memtable is full and no more may be frozen: writes wait
   * for a flush, which keeps memory bounded however fast they come.
   */
  #mustStall(): boolean {
    return this.#memFull() && this.#imms.length >= IMMUTABLE_MEMTABLES_MAX;
  }

  /**
   * Whether the memtable, counting writes not yet applied, is full; or its
   * WAL segment is (WAL_SEGMENT_MEMTABLE_RATIO): overwrites keep the one
   * small while the other grows.
   */
  #memFull(): boolean {
    return this.#mem.bytes + this.#mem.reserved >= this.#memtableBytes ||
      this.#log.bytes >= WAL_SEGMENT_MEMTABLE_RATIO * this.#memtableBytes;
  }

  /** Queues a write behind a flush; it runs, in order, once there is room. */
  #stall(ops: WalOp[], seq: number, bytes: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const settle = this.#track(ops, seq, promise);
    this.#stalledBytes += bytes;
    this.#stalled.push({
      kind: "write",
      ops,
      seq,
      bytes,
      resolve: () => {
        settle();
        resolve();
      },
      reject: (error) => {
        settle();
        reject(error);
      },
    });
    this.#stalls++;
    this.#scheduleBackground();
    return promise;
  }

  /**
   * Runs stalled operations, in order: reads at once, writes while there
   * is room (or, after a failure, rejects them).
   */
  #drainStalled(): void {
    while (this.#stalled.length > 0) {
      const head = this.#stalled[0]!;
      if (head.kind === "read") {
        this.#stalled.shift();
        head.run();
        continue;
      }
      if (!this.#failure && this.#mustStall()) return;
      this.#stalled.shift();
      this.#stalledBytes -= head.bytes;
      if (this.#failure) {
        head.reject(this.#failure);
        continue;
      }
      this.#perform(head.ops, head.seq, head.bytes, true).then(
        head.resolve,
        head.reject,
      );
    }
  }

  /**
   * Runs `read` now, or, when writes are stalled, once every write issued
   * before it has been performed: a read keeps its place in issue order.
   */
  #whenIssued<T>(read: () => T): T | Promise<T> {
    if (this.#stalled.length === 0) return read();
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.#stalled.push({
      kind: "read",
      run: () => {
        try {
          resolve(read());
        } catch (error) {
          reject(error);
        }
      },
    });
    return promise;
  }

  /**
   * Marks `ops` (sequence numbers from `seq`) pending until `promise`
   * settles; returns the settler.
   */
  #track(ops: WalOp[], seq: number, promise: Promise<void>): () => void {
    const write = { ops, seq };
    this.#inFlight.add(write);
    const index = this.#pendingByKey;
    if (index) {
      this.#pendingIndexIdleOps += ops.length;
      if (this.#pendingIndexIdleOps > PENDING_INDEX_IDLE_OPS) {
        // No read has needed it for a while: the next one rebuilds it.
        this.#pendingByKey = undefined;
      } else {
        indexOps(index, ops, seq);
      }
    }
    this.#lastWrite = promise;
    return () => {
      this.#inFlight.delete(write);
      if (this.#readsAfter.length > 0) this.#runReadsAfter();
      const index = this.#pendingByKey;
      if (!index) return;
      if (this.#inFlight.size === 0) {
        this.#pendingByKey = undefined;
        return;
      }
      for (let i = 0; i < ops.length; i++) {
        const key = ops[i]!.key;
        if (index.get(key) === seq + i) index.delete(key);
      }
    };
  }

  /**
   * The sequence number of the latest unsettled write of `key`, if any
   * (see #pendingByKey).
   */
  #pendingWrite(key: string): number | undefined {
    if (this.#inFlight.size === 0) return undefined;
    let index = this.#pendingByKey;
    if (!index) {
      index = this.#pendingByKey = new Map();
      for (const { ops, seq } of this.#inFlight) indexOps(index, ops, seq);
    }
    this.#pendingIndexIdleOps = 0;
    return index.get(key);
  }

  /**
   * Appends a sequenced write to the log of the current memtable. A write
   * from the stall queue is `tracked` already, under the promise its caller
   * holds, since it was issued: tracked again here, its second entry would
   * come after those of writes issued later and still stalled, and a read
   * could then wait for it instead of them.
   */
  #perform(
    ops: WalOp[],
    seq: number,
    bytes: number,
    tracked = false,
  ): Promise<void> {
    if (this.#memFull() && this.#imms.length < IMMUTABLE_MEMTABLES_MAX) {
      this.#freeze();
    } else if (
      !this.#runnerPrepared && 2 * this.#mem.bytes >= this.#memtableBytes
    ) {
      // Half full: a flush is coming; let the runner get ready for it. A
      // failure to do so now is no failure of the write: the flush will
      // start the runner itself.
      this.#runnerPrepared = true;
      try {
        this.#runner.prepare?.();
      } catch {
        // ignored: see above
      }
    }
    const mem = this.#mem;
    const log = this.#log;
    if (this.#mode === "none") {
      // Acknowledged once queued: apply now, no promise bookkeeping.
      try {
        log.append(seq, ops, undefined, bytes);
      } catch (error) {
        return Promise.reject(error);
      }
      this.#applyOps(mem, seq, ops);
      // A writer awaiting only promises resolved at once never lets the
      // event loop turn, and background work (log writes, flush and merge
      // results, manifest edits) waits on it: let it turn now and then.
      this.#bytesSinceTurn += reservedBytes(ops);
      if (this.#bytesSinceTurn < EVENT_LOOP_TURN_BYTES) return RESOLVED;
      this.#bytesSinceTurn = 0;
      return this.#env.yieldNow();
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const settle = tracked ? undefined : this.#track(ops, seq, promise);
    const reserved = reservedBytes(ops);
    mem.reserved += reserved;
    log.append(seq, ops, {
      onDurable: () => {
        mem.reserved -= reserved;
        this.#applyOps(mem, seq, ops);
        settle?.();
        resolve();
      },
      onFailed: (error) => {
        mem.reserved -= reserved;
        settle?.();
        reject(error);
      },
    }, bytes);
    return promise;
  }

  #applyOps(mem: Memtable, seq: number, ops: WalOp[]): void {
    for (const op of ops) mem.apply(seq++, op.key, op.value, op.expiry);
    this.#lastApplied = seq - 1;
    if (this.#readsAfter.length > 0) this.#runReadsAfter();
  }

  /**
   * Runs the reads waiting for writes now applied, or settled: a write
   * that failed (the store failed) is never applied, and the reads behind
   * it run once it and every write before it have settled. Not sooner: a
   * group commit whose fsync was running when the store failed still
   * succeeds, and a read issued after it must see it.
   */
  #runReadsAfter(): void {
    // #inFlight is in issue order: its first write is the oldest unsettled.
    const oldest = this.#inFlight.values().next().value?.seq ??
      Number.POSITIVE_INFINITY;
    const ready: Array<() => void> = [];
    const waiting: Array<{ seq: number; run: () => void }> = [];
    for (const r of this.#readsAfter) {
      if (r.seq <= this.#lastApplied || r.seq < oldest) ready.push(r.run);
      else waiting.push(r);
    }
    this.#readsAfter = waiting;
    for (const run of ready) run();
  }

  /**
   * Freezes the memtable and starts a new WAL segment for the writes that
   * follow. The new segment opens only after the old one is synced and
   * closed, so segments never interleave and a power cut cannot keep a
   * later segment while losing the end of an earlier one.
   */
  #freeze(): void {
    const old = this.#log;
    const number = this.#state.nextFile++;
    const name = segmentName(number);
    const closed = old.close().finally(() => this.#addWalStats(old));
    const file = closed.then(async () => {
      const f = await this.#env.openWritable(joinPath(this.dir, name));
      try {
        await this.#env.syncDir(this.dir);
        // Recorded before any write goes to it: an open then refuses a
        // store whose segment was lost or deleted, even the newest one,
        // whose writes sequence numbers alone cannot miss.
        await this.#commit({ added: [], removed: [], addedLogs: [number] })
          .catch((error) => {
            // A failed store appends nothing more to its manifest, but the
            // segment still takes the writes `none` acknowledged already
            // (see LogWriter.failWith); open replays it unrecorded.
            if (!this.#failure) throw error;
          });
      } catch (error) {
        f.close();
        throw error;
      }
      return f;
    });
    this.#imms.push({ mem: this.#mem, segment: this.#segment, closed });
    this.#mem = new Memtable(this.#mem.readers, this.#mem);
    this.#runnerPrepared = false;
    this.#sourcesChanged();
    this.#segment = number;
    this.#log = this.#newLog(name, file, 0);
    if (this.#failure) this.#log.failWith(this.#failure);
    this.#scheduleBackground();
  }

  #addWalStats(log: LogWriter): void {
    const s = log.stats;
    this.#walStats.records += s.records;
    this.#walStats.writes += s.writes;
    this.#walStats.syncs += s.syncs;
    this.#walStats.groupMax = Math.max(this.#walStats.groupMax, s.groupMax);
  }

  /**
   * Rebuilds the current sources after the memtable, the frozen list or
   * the version changed (not per read: a get allocates nothing for them).
   */
  #sourcesChanged(): void {
    this.#current = {
      mem: this.#mem,
      imms: this.#imms.map((f) => f.mem).reverse(),
      version: this.#version,
    };
  }

  /** The value of `key`, or undefined when absent. */
  get(key: Bytes): Promise<Uint8Array | undefined> {
    // Not an async function: the common case (no write of this key in
    // flight) resolves at once, without async-function machinery.
    let k: ReadKey;
    try {
      if (this.#closed) throw new StoreClosedError();
      k = getKey.set(key);
    } catch (error) {
      return Promise.reject(error);
    }
    try {
      const pending = this.#inFlight.size > 0
        ? this.#pendingWrite(k.binary)
        : undefined;
      if (pending !== undefined) {
        return this.#getAfter([k.binary], pending).then((values) => values[0]);
      }
      const value = lookup(this.#current, k, Number.POSITIVE_INFINITY);
      const turn = this.#readTurn();
      return turn ? turn.then(() => value) : Promise.resolve(value);
    } catch (error) {
      return Promise.reject(error);
    } finally {
      k.release();
    }
  }

  /**
   * The values of `keys`, in the same order (undefined where absent), all
   * read at one point in time: every write issued before the call and none
   * issued after, as with {@linkcode get}. One call and one await for many
   * keys, like Deno KV's `getMany`. At most GET_MANY_KEYS_MAX keys.
   */
  getMany(keys: readonly Bytes[]): Promise<(Uint8Array | undefined)[]> {
    const ks: string[] = [];
    let pending = -1;
    try {
      if (this.#closed) throw new StoreClosedError();
      checkGetMany(keys);
      for (const key of keys) ks.push(keyToBinary(key));
      if (this.#inFlight.size > 0) {
        for (const k of ks) {
          pending = Math.max(pending, this.#pendingWrite(k) ?? -1);
        }
      }
      if (pending < 0) {
        const s = this.#current;
        const values = ks.map((k) =>
          lookupBinary(s, k, Number.POSITIVE_INFINITY)
        );
        const turn = this.#readTurn();
        return turn ? turn.then(() => values) : Promise.resolve(values);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#getAfter(ks, pending);
  }

  /**
   * Reads `ks` as of the current call, once the write with sequence number
   * `waitFor` (the latest of those of them issued before it) is applied:
   * at once, in #applyOps, before anything else can change the sources (a
   * read that awaited the write's promise could find a later write of the
   * key applied, then flushed on its own, and return an older value), at
   * the sequence number current now.
   */
  #getAfter(
    ks: string[],
    waitFor: number,
  ): Promise<(Uint8Array | undefined)[]> {
    const seq = this.#nextSeq - 1;
    const { promise, resolve, reject } = Promise.withResolvers<
      (Uint8Array | undefined)[]
    >();
    const run = () => {
      try {
        const s = this.#current;
        resolve(ks.map((k) => lookupBinary(s, k, seq)));
      } catch (error) {
        reject(error);
      }
    };
    if (this.#lastApplied >= waitFor) run();
    else this.#readsAfter.push({ seq: waitFor, run });
    return promise;
  }

  /** Whether `key` is present. */
  async has(key: Bytes): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /** A view of the current sources, reading at `seq`. */
  #pin(seq: number): View {
    const s = this.#current;
    const settled = this.#inFlight.size > 0 ? this.#lastWrite : undefined;
    return new View(seq, s.mem, s.imms, s.version, settled);
  }

  /**
   * A view of every write issued so far and none issued later: pinned now,
   * or, behind stalled writes, as soon as they have been performed.
   */
  #pinAtIssue(): { seq: number; view: View | Promise<View> } {
    const seq = this.#nextSeq - 1;
    return { seq, view: this.#whenIssued(() => this.#pin(seq)) };
  }

  /**
   * Entries in bytewise key order (descending with `reverse`), from `start`
   * (inclusive) to `end` (exclusive), within `prefix`, at most `limit`.
   *
   * The scan sees one point-in-time view, taken when scan() is called: it
   * includes every write issued before the call and none issued after.
   * Flushes and merges during the scan change nothing it returns. Read it
   * to the end or break out of the loop to release the view.
   */
  scan(options: ScanOptions = {}): Scan<Entry> {
    if (this.#closed) throw new StoreClosedError();
    const { range, limit } = scanRange(options);
    const { view } = this.#pinAtIssue();
    return new ScanIterator<Entry>(
      view,
      range,
      limit,
      true,
      false,
      this.#readTurn,
      this.#isClosed,
    );
  }

  /** Keys only, in the same order and view as {@linkcode scan}. */
  keys(options: ScanOptions = {}): Scan<Uint8Array> {
    if (this.#closed) throw new StoreClosedError();
    const { range, limit } = scanRange(options);
    const { view } = this.#pinAtIssue();
    return new ScanIterator<Uint8Array>(
      view,
      range,
      limit,
      true,
      true,
      this.#readTurn,
      this.#isClosed,
    );
  }

  /** Number of keys, in all or within a prefix or range (exact). */
  async count(
    options: Omit<ScanOptions, "limit" | "reverse"> = {},
  ): Promise<number> {
    if (this.#closed) throw new StoreClosedError();
    const { range } = scanRange(options, "count");
    for (const name of COUNT_REFUSED_OPTIONS) {
      // A count capped by a limit would be a different answer, not a
      // faster one: refused rather than ignored.
      if ((options as ScanOptions)[name] !== undefined) {
        throw new TypeError(
          `count takes prefix, start and end, not ${name}`,
        );
      }
    }
    const whole = options.start === undefined && options.end === undefined &&
      options.prefix === undefined;
    if (
      whole && this.#inFlight.size === 0 && this.#imms.length === 0 &&
      this.#version.tableCount === 0 && this.#stalled.length === 0
    ) {
      return this.#mem.liveKeys;
    }
    const view = await this.#pinAtIssue().view;
    try {
      if (view.settled) await view.settled.catch(() => {});
      if (this.#tablesClosed) throw new StoreClosedError();
      let n = 0;
      let sinceYield = 0;
      const e = mergedEntries(view, view.seq, range);
      try {
        while (e.next()) {
          if (e.top.valueLength >= 0) n++;
          if (++sinceYield === 65536) {
            sinceYield = 0;
            await this.#yield();
            if (this.#tablesClosed) throw new StoreClosedError();
          }
        }
      } finally {
        e.close();
      }
      return n;
    } finally {
      view.release();
    }
  }

  /**
   * Set once close() is about to close the tables: from then on, reads of
   * scans and snapshots made before (which may reach tables) are refused.
   * Until then they go on, as gets do, while close() waits for writes.
   */
  #tablesClosed = false;

  /** For readers that outlive a call: whether the tables are closed. */
  readonly #isClosed = (): boolean => this.#tablesClosed;

  #yield(): Promise<void> {
    return this.#env.yieldNow();
  }

  /**
   * A read-only view at the current sequence number: gets and scans through
   * it see the store as it is now, whatever is written later. Call
   * release() when done: it pins memtable versions and table files.
   */
  snapshot(): Snapshot {
    if (this.#closed) throw new StoreClosedError();
    const { seq, view } = this.#pinAtIssue();
    let released = false;
    const pinned = Promise.resolve(view);
    const ready = async () => {
      if (released) throw new RangeError("Snapshot was released");
      if (this.#closed) throw new StoreClosedError();
      const v = await pinned;
      if (v.settled) await v.settled.catch(() => {});
      if (released) throw new RangeError("Snapshot was released");
      if (this.#tablesClosed) throw new StoreClosedError();
      return v;
    };
    return {
      sequence: seq,
      get: async (key: Bytes) => {
        const k = keyToBinary(key);
        const v = await ready();
        return lookupBinary(v, k, v.seq);
      },
      getMany: async (keys: readonly Bytes[]) => {
        checkGetMany(keys);
        const ks = keys.map(keyToBinary);
        const v = await ready();
        return ks.map((k) => lookupBinary(v, k, v.seq));
      },
      scan: (options: ScanOptions = {}) => {
        if (released) throw new RangeError("Snapshot was released");
        if (this.#closed) throw new StoreClosedError();
        const { range, limit } = scanRange(options);
        return new ScanIterator<Entry>(
          pinned,
          range,
          limit,
          false,
          false,
          this.#readTurn,
          this.#isClosed,
        );
      },
      release: () => {
        if (released) return;
        released = true;
        void pinned.then((v) => v.release());
      },
    };
  }

  /** Counters and state; see {@linkcode StoreStats}. */
  stats(): StoreStats {
    const levels = this.#version.levels.map((l) => ({
      tables: l.length,
      bytes: l.reduce((n, t) => n + t.size, 0),
    }));
    const tableEntries = this.#version.levels.reduce(
      (n, l) =>
        n + l.reduce((m, t) => m + t.props.entries - t.props.tombstones, 0),
      0,
    );
    const exact = this.#imms.length === 0 && this.#version.tableCount === 0;
    const wal = { ...this.#walStats };
    const s = this.#log.stats;
    wal.records += s.records;
    wal.writes += s.writes;
    wal.syncs += s.syncs;
    wal.groupMax = Math.max(wal.groupMax, s.groupMax);
    return {
      numKeys: exact ? this.#mem.liveKeys : this.#mem.liveKeys +
        this.#imms.reduce((n, f) => n + f.mem.liveKeys, 0) +
        tableEntries,
      numKeysExact: exact,
      lastSequence: this.#lastApplied,
      memtableBytes: this.#mem.bytes,
      immutableMemtables: this.#imms.length,
      levels,
      walSegments: this.#imms.length + 1,
      walBytes: this.#log.bytes,
      syncMode: this.#mode,
      wal,
      flushes: this.#flushes,
      writeStalls: this.#stalls,
      merges: this.#merges,
      idleMerges: this.#idleMerges,
      moves: this.#moves,
      blockCache: this.#cache.stats(),
      bloom: { ...this.#filterStats },
      failure: this.#failure?.message,
      recovery: this.recovery,
    };
  }

  /** Makes every acknowledged write durable now, whatever the sync mode. */
  async sync(): Promise<void> {
    if (this.#closed) throw new StoreClosedError();
    for (const f of this.#imms) await f.closed;
    await this.#log.sync();
  }

  /**
   * Waits until no frozen memtable is waiting and no merge is due: for
   * tests and tools that want a settled tree.
   */
  async settle(): Promise<void> {
    // As sync() does: a closed store has nothing to settle, and saying it
    // settled would hide a use after close.
    if (this.#closed) throw new StoreClosedError();
    await this.#backgroundIdle();
    if (this.#failure) throw this.#failure;
  }

  /** Resolves once neither background lane is running. */
  async #backgroundIdle(): Promise<void> {
    while (this.#flushRunning || this.#mergeRunning) {
      await Promise.all([this.#flushDone, this.#mergeDone]);
    }
  }

  // ---- background work: a flush lane and a merge lane ----
  //
  // Flushes and level-0 merges run side by side (on two worker threads
  // when the runner is a worker, taking turns on the store's thread when
  // inline): a long merge does not hold up the flushes that writers may be
  // stalled on. They touch different tables: a merge takes the level-0
  // tables there when it starts and all of level 1, which only merges
  // write; tables flushed meanwhile are newer than everything it reads.
  // Their manifest edits are serialized.

  /** Starts each lane that is idle and has work. */
  #scheduleBackground(forClose = false): void {
    if ((this.#closed && !forClose) || this.#failure) return;
    if (!this.#flushRunning && this.#imms.length > 0) {
      this.#flushRunning = true;
      this.#flushDone = this.#flushLane();
    }
    if (!this.#mergeRunning && this.#mergeDue()) {
      this.#mergeRunning = true;
      this.#mergeDone = this.#mergeLane();
    }
  }

  #mergeDue(idle = false): boolean {
    return this.#pickMerge(this.#version, idle) !== undefined;
  }

  /**
   * The next merge in version `v`, if any level is due. An idle merge
   * takes level 0 from IDLE_MERGE_L0_TABLES tables on.
   */
  #pickMerge(v: Version, idle: boolean): Compaction | undefined {
    return pickCompaction(
      v.levels.map((level) => level.map(shapeOf)),
      idle
        ? { ...this.#compaction, l0Trigger: IDLE_MERGE_L0_TABLES }
        : this.#compaction,
      this.#pointers,
    );
  }

  /**
   * With the merge lane done and level 0 holding tables below its trigger,
   * checks back after `idleMergeMs`: if no write came meanwhile and no
   * background work runs, level 0 is merged down then, so that reads after
   * a burst of writes look through one table per level.
   */
  #armIdleMerge(): void {
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    if (
      this.#idleMergeMs <= 0 || this.#closed || this.#failure ||
      this.#version.levels[0]!.length < IDLE_MERGE_L0_TABLES
    ) {
      return;
    }
    const writes = this.#writesIssued;
    this.#idleTimer = this.#env.setTimer(this.#idleMergeMs, () => {
      this.#idleTimer = undefined;
      if (
        this.#closed || this.#failure || this.#mergeRunning ||
        this.#flushRunning || this.#imms.length > 0
      ) {
        return;
      }
      if (this.#writesIssued !== writes) return this.#armIdleMerge();
      if (!this.#mergeDue(true)) return;
      this.#mergeRunning = true;
      this.#mergeDone = this.#mergeLane(true);
    }, true);
  }

  async #flushLane(): Promise<void> {
    try {
      while (!this.#failure && this.#imms.length > 0) {
        // Level 0 at its stop size: wait until the merge lane has brought
        // every level within its target, rather than make every read look
        // through more tables. Waiting for one merge only let writes keep
        // level 0 full, and level 1 grew to four times its target while
        // loading 10 million keys (every level-0 merge then rewrote all of
        // it): the stall is the backpressure that keeps the tree in shape.
        if (
          this.#version.levels[0]!.length >= L0_STOP_FACTOR *
              this.#compaction.l0Trigger && this.#mergeRunning
        ) {
          await this.#mergeDone;
          continue;
        }
        await this.#flushOldest();
        this.#scheduleBackground(true);
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#flushRunning = false;
      if (!this.#mergeRunning) this.#armIdleMerge();
    }
  }

  async #mergeLane(idle = false): Promise<void> {
    try {
      if (idle) {
        this.#idleMerges++;
        await this.#merge(true);
      }
      while (!this.#failure && this.#mergeDue()) await this.#merge();
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#mergeRunning = false;
      this.#armIdleMerge();
    }
  }

  /**
   * Flushes the oldest frozen memtable: its job may already be running (the
   * jobs of every frozen memtable start at once, so that one's table writes
   * and fsyncs overlap another's encoding), but commits go in order.
   */
  async #flushOldest(): Promise<void> {
    for (const f of this.#imms) {
      if (f.tables) continue;
      f.tables = this.#startFlush(f);
      // Its failure is handled when its turn to commit comes (or by the
      // fail-stop of an earlier one): not an unhandled rejection meanwhile.
      f.tables.catch(() => {});
    }
    const frozen = this.#imms[0]!;
    const metas = await frozen.tables!;
    // The segment the edit names as the oldest still needed is on disk
    // before the edit (created, its directory entry synced): a power cut
    // could otherwise keep an edit naming a segment that no open finds,
    // which an open refuses as lost writes (missingLogSegments). The next
    // frozen memtable's segment is, once closed; the active one once
    // opened (should a freeze come meanwhile, it is the next frozen one).
    const next = this.#imms[1];
    await (next ? next.closed : this.#log.opened).catch(() => {});
    const logNumber = this.#imms[1]?.segment ?? this.#segment;
    await this.#commit({
      added: metas.map((meta) => ({ level: 0, meta })),
      removed: [],
      nextFile: this.#state.nextFile,
      lastSeq: Math.max(this.#state.lastSeq, frozen.mem.lastSeq),
      logNumber,
    });
    this.#imms.shift();
    this.#sourcesChanged();
    // Its data is in tables now: once no view reads it either, its buffers
    // serve the next memtable.
    frozen.mem.unpin();
    this.#flushes++;
    this.#drainStalled();
    // The edit is durable: the segments' data is in tables.
    const obsolete = [
      frozen.segment,
      ...this.#olderSegments.filter((n) => n < logNumber),
    ];
    this.#olderSegments = this.#olderSegments.filter((n) => n >= logNumber);
    for (const n of obsolete) {
      await this.#env.remove(joinPath(this.dir, segmentName(n))).catch(
        () => {},
      );
    }
  }

  /** Starts the job writing frozen memtable `f` out as level-0 tables. */
  async #startFlush(f: Frozen): Promise<TableMeta[]> {
    await f.closed;
    // After a failure nothing more is committed: write nothing more either
    // (close() may already have waited for the jobs it knew of).
    if (this.#failure) throw this.#failure;
    const entries = encodeMemtable(f.mem);
    const metas = await this.#runJob({
      kind: "flush",
      dir: this.dir,
      entries,
      ...this.#reserveFiles(entries.length),
      options: this.#tableOptions,
    });
    // Run inline, the job leaves its entries buffer here (a worker hands
    // it back itself; moved to the worker, it is empty here).
    recycleEntryBuffer(entries.buffer as ArrayBuffer);
    return metas;
  }

  /**
   * Runs the next merge (leveled compaction, `compaction.ts`): a level's
   * tables and the overlapping ones of the next level become the next
   * level's replacement for them, or move down as they are when nothing
   * overlaps.
   */
  async #merge(idle = false): Promise<void> {
    const v = this.#version;
    v.ref();
    try {
      const pick = this.#pickMerge(v, idle);
      if (!pick) return;
      const { level, inputs, overlaps } = pick;
      const out = level + 1;
      if (level > 0) this.#pointers[level] = inputs.at(-1)!.largest;
      if (pick.move) {
        // LevelDB's trivial move: an edit, no rewrite. #commit reuses the
        // open readers.
        const moved = new Set(inputs.map((t) => t.fileNumber));
        await this.#commit({
          added: this.#state.levels[level]!
            .filter((m) => moved.has(m.fileNumber))
            .map((meta) => ({ level: out, meta })),
          removed: inputs.map((t) => ({ level, fileNumber: t.fileNumber })),
        });
        this.#moves++;
        return;
      }
      // Runs newest first: level 0's tables newest to oldest (each its own
      // run, since they may overlap), or the one table of a deeper level;
      // then the next level's overlapping tables, one run.
      const runs = level === 0
        ? inputs.map((t) => [t.fileNumber]).reverse()
        : [inputs.map((t) => t.fileNumber)];
      if (overlaps.length > 0) runs.push(overlaps.map((t) => t.fileNumber));
      const inputBytes = [...inputs, ...overlaps].reduce(
        (n, t) => n + t.size,
        0,
      );
      const metas = await this.#runJob({
        kind: "merge",
        dir: this.dir,
        runs,
        dropTombstones: pick.dropTombstones,
        ...this.#reserveFiles(inputBytes),
        options: this.#tableOptions,
      });
      await this.#commit({
        added: metas.map((meta) => ({ level: out, meta })),
        removed: [
          ...inputs.map((t) => ({ level, fileNumber: t.fileNumber })),
          ...overlaps.map((t) => ({ level: out, fileNumber: t.fileNumber })),
        ],
        nextFile: this.#state.nextFile,
      });
      this.#merges++;
    } finally {
      v.unref();
    }
  }

  /** Runs `job`, keeping track of it until it settles. */
  #runJob(job: Job): Promise<TableMeta[]> {
    const running = this.#runner.run(job);
    this.#jobs.add(running);
    const forget = () => this.#jobs.delete(running);
    running.then(forget, forget);
    return running;
  }

  /**
   * Reserves file numbers for a job's output: numbers handed out later (a
   * freeze, another job) never collide with the ones it writes.
   */
  #reserveFiles(inputBytes: number): { firstFile: number; files: number } {
    const files = filesFor(inputBytes, this.#tableOptions.tableBytes);
    const firstFile = this.#state.nextFile;
    this.#state.nextFile += files;
    return { firstFile, files };
  }

  /**
   * Opens the edit's new tables, makes the edit durable in the manifest,
   * then installs the new version. The old version's tables that nothing
   * else holds are deleted when it is released. Edits from the two lanes
   * run one after the other.
   */
  #commit(edit: VersionEdit): Promise<void> {
    const run = this.#commitTail.then(() => this.#commitNow(edit));
    this.#commitTail = run.catch(() => {});
    return run;
  }

  async #commitNow(edit: VersionEdit): Promise<void> {
    // Fail-stop covers the manifest too: after any failure (a failed edit's
    // bytes may be half on disk) nothing more is appended to it. The data
    // of an uncommitted flush is still in its WAL segment.
    if (this.#failure) throw this.#failure;
    const opened = new Map<number, TableReader>();
    const current = new Map<number, TableReader>();
    for (const level of this.#version.levels) {
      for (const t of level) current.set(t.fileNumber, t);
    }
    const moved = new Set<number>();
    const toOpen: number[] = [];
    for (const { meta } of edit.added) {
      const open = current.get(meta.fileNumber);
      if (open) {
        moved.add(meta.fileNumber);
        opened.set(meta.fileNumber, open);
      } else {
        toOpen.push(meta.fileNumber);
      }
    }
    // Side by side (openTables): one after another, each open waiting for
    // its turn of the event loop, a merge's thirty tables took over a second
    // under a loop of gets, with every edit queued behind it. A table that
    // fails to open fails the edit (openTables closes the others).
    const readers = await openTables(
      this.#env,
      this.dir,
      toOpen,
      this.#cache,
      this.#filterStats,
    );
    for (const r of readers) opened.set(r.fileNumber, r);
    try {
      if (this.#failure) throw this.#failure;
      // A new manifest once the edits since the snapshot outweigh it:
      // rotating at a fixed size rewrote a snapshot bigger than that size
      // with every edit.
      if (
        this.#manifest.bytes >=
          Math.max(this.#manifestRotateBytes, 2 * this.#manifest.snapshotBytes)
      ) {
        await this.#rotateManifest();
      }
      // Numbers handed out while the tables were written or opened (a
      // freeze, a rotation) must stay used: record the counter as it is now.
      edit.nextFile = this.#state.nextFile;
      await this.#manifest.append(edit);
    } catch (error) {
      for (const r of opened.values()) if (!moved.has(r.fileNumber)) r.close();
      // At once, before the other lane's queued edit can run.
      this.#fail(error);
      throw error;
    }
    applyEdit(this.#state, edit, this.#manifest.name, this.#manifest.bytes);
    const removed = new Set(edit.removed.map((r) => r.fileNumber));
    const levels = this.#version.levels.map((level) =>
      level.filter((t) => !removed.has(t.fileNumber))
    );
    for (const { level, meta } of edit.added) {
      levels[level]!.push(opened.get(meta.fileNumber)!);
    }
    for (let l = 1; l < levels.length; l++) {
      levels[l]!.sort((a, b) => a.props.smallest < b.props.smallest ? -1 : 1);
    }
    const old = this.#version;
    this.#version = new Version(levels, this.#tables);
    this.#sourcesChanged();
    old.unref();
  }

  async #rotateManifest(): Promise<void> {
    const old = this.#manifest;
    this.#manifest = await ManifestWriter.create(
      this.#env,
      this.dir,
      this.#state.nextFile++,
      this.#state,
    );
    old.close();
    await this.#env.remove(joinPath(this.dir, old.name)).catch(() => {});
  }

  #deleteTable(reader: TableReader): void {
    reader.close();
    const removal = this.#env.remove(reader.path).catch(() => {
      // Left for the next open, which removes unreferenced tables.
    }).finally(() => this.#removals.delete(removal));
    this.#removals.add(removal);
  }

  /** Removals of obsolete tables still in flight; close() waits for them. */
  #removals = new Set<Promise<void>>();

  /**
   * Waits for queued writes and background work, fsyncs the log and
   * releases the directory. Safe to call twice.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = this.#close();
    }
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#idleTimer?.cancel();
    this.#idleTimer = undefined;
    try {
      // Stalled writes were accepted: let flushes make room for them.
      while (this.#stalled.length > 0 && !this.#failure) {
        this.#scheduleBackground(true);
        await this.#backgroundIdle();
      }
      let firstError: unknown;
      for (const f of this.#imms) await f.closed.catch((e) => firstError ??= e);
      await this.#log.close().catch((e) => firstError ??= e);
      await this.#backgroundIdle();
      // A job whose result nobody will commit (the store failed) may still
      // be writing: no file is written after close returns.
      await Promise.allSettled(this.#jobs);
      this.#runner.close();
      this.#manifest.close();
      this.#tablesClosed = true;
      this.#tables.closeAll();
      // A closed store leaves no spare buffers behind it (memtables, flush
      // entries, log), not even those of views released later.
      this.#mem.readers.storeClosed = true;
      dropAllSpares();
      // Nothing in the directory changes after close returns: not even the
      // removal of a table a merge made obsolete just before.
      await Promise.allSettled([...this.#removals]);
      if (firstError) throw firstError;
    } finally {
      this.#lock.release();
    }
  }

  /** @internal The manifest file currently live (for tools and tests). */
  get manifestName(): string {
    return this.#manifest.name;
  }
}

/** What a write will add to a memtable, roughly, before it is applied. */
function reservedBytes(ops: WalOp[]): number {
  let n = 0;
  for (const op of ops) n += 48 + op.key.length + (op.value?.length ?? 0);
  return n;
}

/** What the compaction picker sees of an open table. */
function shapeOf(t: TableReader): TableShape {
  return {
    fileNumber: t.fileNumber,
    smallest: t.props.smallest,
    largest: t.props.largest,
    size: t.size,
  };
}

/** A batch operation as a WAL op; throws on a bad one. */
function batchOp(op: BatchOp): WalOp {
  if (op?.type === "put") {
    return {
      kind: BatchOpKind.PUT,
      key: keyToBinary(op.key),
      value: valueToBytes(op.value),
      expiry: 0,
    };
  }
  if (op?.type === "delete") {
    return {
      kind: BatchOpKind.DELETE,
      key: keyToBinary(op.key),
      value: undefined,
      expiry: 0,
    };
  }
  throw new TypeError('It must have type "put" or "delete"');
}

/** Maps each of `ops`' keys to its sequence number (from `seq`). */
function indexOps(
  index: Map<string, number>,
  ops: readonly WalOp[],
  seq: number,
): void {
  for (let i = 0; i < ops.length; i++) index.set(ops[i]!.key, seq + i);
}

/** `error`, of the same kind, saying it is about batch operation `i`. */
function inOperation(error: unknown, i: number): unknown {
  if (!(error instanceof Error)) return error;
  const message = `Batch operation ${i}: ${error.message}`;
  if (error instanceof RangeError) return new RangeError(message);
  if (error instanceof TypeError) return new TypeError(message);
  return error;
}

/** Throws unless `keys` is an array of at most GET_MANY_KEYS_MAX keys. */
function checkGetMany(keys: readonly Bytes[]): void {
  if (!Array.isArray(keys)) {
    throw new TypeError("getMany takes an array of keys");
  }
  if (keys.length > GET_MANY_KEYS_MAX) {
    throw new RangeError(
      `getMany was given ${keys.length} keys; the limit is ${GET_MANY_KEYS_MAX} (GET_MANY_KEYS_MAX)`,
    );
  }
}

/** The names {@linkcode ScanOptions} has. */
const SCAN_OPTION_NAMES: readonly string[] = [
  "start",
  "end",
  "prefix",
  "limit",
  "reverse",
];

/** Scan options that count() refuses (see Store.count). */
const COUNT_REFUSED_OPTIONS = ["limit", "reverse"] as const;

/** Validates scan options into a binary-string range and a limit. */
function scanRange(
  options: ScanOptions,
  /** The call the options are for, as errors name it. */
  call: "scan" | "count" = "scan",
): {
  range: { start?: string; end?: string; reverse: boolean };
  limit: number;
} {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `${call === "scan" ? "Scan" : "Count"} options must be an object`,
    );
  }
  for (const name of Object.keys(options)) {
    // A misspelled option (`lmit`) ignored would scan everything.
    if (!SCAN_OPTION_NAMES.includes(name)) {
      throw new TypeError(
        `Unknown ${call} option "${name}"; known: ${
          (call === "scan"
            ? SCAN_OPTION_NAMES
            : SCAN_OPTION_NAMES.filter((n) =>
              !(COUNT_REFUSED_OPTIONS as readonly string[]).includes(n)
            ))
            .join(", ")
        }`,
      );
    }
  }
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (
    typeof limit !== "number" || !(limit >= 0) ||
    (Number.isFinite(limit) && !Number.isInteger(limit))
  ) {
    throw new RangeError(
      `Scan limit must be a non-negative integer, got ${
        typeof limit === "string"
          ? JSON.stringify(limit)
          : typeof limit === "bigint"
          ? `${limit}n (a bigint)`
          : String(limit)
      }`,
    );
  }
  if (options.reverse !== undefined && typeof options.reverse !== "boolean") {
    throw new TypeError(
      `Scan reverse must be a boolean, got ${String(options.reverse)}`,
    );
  }
  let start = options.start === undefined
    ? undefined
    : boundToBinary(options.start, "start");
  let end = options.end === undefined
    ? undefined
    : boundToBinary(options.end, "end");
  if (options.prefix !== undefined) {
    const prefix = boundToBinary(options.prefix, "prefix");
    if (start === undefined || start < prefix) start = prefix;
    const upper = prefixSuccessor(prefix);
    if (upper !== undefined && (end === undefined || end > upper)) end = upper;
  }
  const range: { start?: string; end?: string; reverse: boolean } = {
    reverse: options.reverse === true,
  };
  if (start !== undefined) range.start = start;
  if (end !== undefined) range.end = end;
  return { range, limit };
}

/**
 * What a scan must let go of when it ends: the view it pinned (a scan of
 * the store, from the start), or its hold on a snapshot's view (once it
 * has started).
 */
interface HoldBox {
  letGo: (() => void) | undefined;
}

/**
 * Lets go of what scans dropped without being finished or broken out of
 * (their iterator garbage collected) hold, so that forgetting a scan
 * cannot pin memtable versions and table files forever: a snapshot's
 * scan kept the snapshot's view after its release, its tables open and
 * on disk, until the store closed.
 */
const abandonedScans = new FinalizationRegistry<HoldBox>((box) => {
  const letGo = box.letGo;
  box.letGo = undefined;
  letGo?.();
});

/**
 * A copy of the current value of `c` (a scan's source) for the caller.
 * From a table block that the scan takes a second value from, the block is
 * copied once, from this value to its end, and this value and the block's
 * next ones are views of the copy: a view costs a third of a copy of 100
 * bytes, and a copy of a 4 KiB block little more than one of 100 bytes
 * (scans of 100 over a million keys 1.07x-1.14x). The copy is the scan's
 * own, as each value copied alone is: nothing a caller does to it reaches
 * the cache.
 */
function valueCopy(c: EntryCursor): Uint8Array {
  const at = c.valueAt;
  const n = c.valueLength;
  const uses = c.blockUses;
  if (uses > 0) {
    const copy = c.blockCopy;
    // Empty: the caller detached its buffer, transferring a value taken from
    // it (never empty otherwise: the block's restart array is in it too).
    if (copy === undefined || copy.length === 0) {
      const block = c.block;
      const fresh = c.blockCopy = resultPool.copy(block, at, block.length);
      c.blockCopyBuffer = fresh.buffer;
      c.blockCopyBase = fresh.byteOffset - at;
    }
    // A view of the scan's own copy is as much the caller's as the copy.
    return new Uint8Array(c.blockCopyBuffer, c.blockCopyBase + at, n);
  }
  if (uses === 0) c.blockUses = 1;
  const words = c.blockWords;
  if (words !== undefined) return resultPool.copyWords(c.block, words, at, n);
  return resultPool.copy(c.block, at, at + n);
}

/**
 * Iterates a view's merged entries; releases the view at the end if `own`.
 *
 * A hand-written async iterator rather than an async generator: each entry
 * is one already-resolved promise, without a generator's suspend and resume
 * (which cost more than the entry itself on a scan served from memory).
 */
class ScanIterator<T extends Entry | Uint8Array> implements Scan<T> {
  #entries: MergeCursor | undefined;
  /** What the scan lets go of as it ends (see HoldBox). */
  readonly #hold: HoldBox = { letGo: undefined };
  #starting: Promise<void> | undefined;
  #n = 0;
  #done = false;
  /** Entries next() read ahead; those from #aheadAt on are still to come. */
  readonly #ahead: T[] = [];
  #aheadAt = 0;
  /** How many entries next() read ahead last time. */
  #aheadSize = 2;
  /** Reading ahead failed with #aheadError, still to be thrown. */
  #aheadFailed = false;
  #aheadError: unknown = undefined;
  /** Reading ahead reached the scan's end: it ends once #ahead is drained. */
  #aheadEnded = false;
  /**
   * Value lengths of the entries read ahead (see #detached). (Not a typed
   * array, nor #aheadAfter one made with the scan: a fresh typed array
   * costs about 0.7 µs here, a tenth of a scan of one entry.)
   */
  readonly #aheadLengths: number[] = [];
  /** The key the batch read ahead comes after, and #n then. */
  #aheadAfter: Uint8Array | undefined;
  #aheadAfterLength = 0;
  #aheadN0 = 0;
  /** The view the merge reads, once open. */
  #view: View | undefined;

  constructor(
    private readonly pinned: View | Promise<View>,
    private readonly range: { start?: string; end?: string; reverse: boolean },
    private readonly limit: number,
    private readonly own: boolean,
    private readonly keysOnly: boolean,
    /** A turn of the event loop to wait for first, when one is due. */
    private readonly turn: () => Promise<void> | undefined,
    /** Whether the store is closed (or closing): then it reads nothing. */
    private readonly closed: () => boolean,
  ) {
    if (own) {
      this.#hold.letGo = () =>
        void Promise.resolve(pinned).then((view) => view.release());
    }
    // The iterator is its own unregister token: one that finishes lets go
    // of its registration (see #finish).
    abandonedScans.register(this, this.#hold, this);
  }

  next(): Promise<IteratorResult<T, undefined>> {
    try {
      if (this.#aheadAt < this.#ahead.length) return this.#nextAhead();
      const settled = this.#settleAhead();
      if (settled !== undefined) return Promise.resolve(settled);
      if (this.#done) return Promise.resolve({ done: true, value: undefined });
      // Once the merge has handed out an entry (the first comes one at a
      // time: see #readAhead), the next ones are read ahead.
      if (this.#entries !== undefined && this.#n > 0) return this.#readAhead();
    } catch (error) {
      return Promise.reject(error);
    }
    let result: IteratorResult<T, undefined> | undefined;
    try {
      result = this.#advance();
    } catch (error) {
      return Promise.reject(error);
    }
    if (result === undefined) {
      return this.#starting!.then(() => this.next(), (error) => {
        this.#finish();
        throw error;
      });
    }
    const turn = this.turn();
    return turn ? turn.then(() => result) : Promise.resolve(result);
  }

  /** The next entry read ahead (see #readAhead). Throws as next() rejects. */
  #nextAhead(): Promise<IteratorResult<T, undefined>> {
    this.#dropIfClosed();
    const value = this.#ahead[this.#aheadAt]!;
    if (this.#detached(value, this.#aheadAt)) {
      this.#reread();
      return this.next();
    }
    this.#aheadAt++;
    // The last entry of a scan read ahead to its end: nothing more can need
    // reading again, so the view goes now, not at the next call.
    if (this.#aheadEnded && this.#aheadAt === this.#ahead.length) {
      this.#finish();
    }
    return Promise.resolve({ done: false, value });
  }

  /**
   * Whether entry `i` read ahead lost its bytes: the caller transferred the
   * buffer of an entry handed out before it, which its copies share (keys
   * are never empty; a value's length was noted when it was read).
   */
  #detached(entry: T, i: number): boolean {
    if (this.keysOnly) return (entry as Uint8Array).length === 0;
    const e = entry as Entry;
    const n = this.#aheadLengths[i];
    // An empty value detached still has length 0: its buffer has none.
    return e.key.length === 0 || e.value.length !== n ||
      (n === 0 && e.value.buffer.byteLength === 0);
  }

  /**
   * Once the store is closed, drops what was read ahead and throws
   * StoreClosedError, as for a scan that had not read ahead.
   */
  #dropIfClosed(): void {
    if (!this.closed()) return;
    this.#drop();
    throw new StoreClosedError();
  }

  /**
   * Reads again, into fresh copies, the entries read ahead that were not
   * handed out yet: a new merge over the scan's view (the same entries)
   * from just past the entry before them, the ones of the batch handed out
   * already passed over. Throws, having ended the scan, if that fails.
   */
  #reread(): void {
    try {
      this.#rereadNow();
    } catch (error) {
      this.#drop();
      throw error;
    }
  }

  #rereadNow(): void {
    // Entries are read ahead only while the scan holds its view (it ends
    // once they are handed out).
    assert(!this.#done && this.#view !== undefined, "re-read of an ended scan");
    const view = this.#view;
    const handedOut = this.#aheadAt;
    this.#entries!.close();
    const range = { ...this.range };
    const after = bytesToBinary(this.#aheadAfter!, 0, this.#aheadAfterLength);
    if (range.reverse) range.end = after;
    else range.start = after + "\u0000";
    const entries = this.#entries = mergedEntries(view, view.seq, range);
    this.#n = this.#aheadN0;
    for (let i = 0; i < handedOut; i++) this.#nextLive(entries);
    this.#clearAhead();
    this.#aheadSize = 2;
  }

  /** Forgets what next() read ahead, and the error or end it met. */
  #clearAhead(): void {
    this.#ahead.length = 0;
    this.#aheadAt = 0;
    this.#aheadFailed = false;
    this.#aheadError = undefined;
    this.#aheadEnded = false;
  }

  /**
   * next() once the merge is open: reads the next few entries in one go
   * (4, then twice as many each time, up to READ_AHEAD_MAX) and hands out
   * the first, the rest at the next calls: entries read in a tight loop
   * cost less than one per call (seeks of 100 read with `for await`
   * 1.10x-1.13x). A scan broken off early has copied at most READ_AHEAD_MAX - 1
   * entries for nothing. An error reading ahead comes once the entries
   * read before it have been handed out, as it would without reading ahead.
   * The scan ends (lets go of its view) once they all have been; until
   * then they can be read again, should a caller detach their copies (see
   * #reread).
   */
  #readAhead(): Promise<IteratorResult<T, undefined>> {
    this.#dropIfClosed();
    const ahead = this.#ahead;
    ahead.length = 0;
    this.#aheadAt = 0;
    if (this.#n >= this.limit) {
      return Promise.resolve(this.#finish());
    }
    // Where the batch starts from: just past the merge's current entry,
    // the last one handed out (its key kept as bytes, made a string only
    // if the batch must be read again).
    const top = this.#entries!.top;
    const n = top.keyLength;
    let after = this.#aheadAfter;
    if (after === undefined || after.length < n) {
      after = this.#aheadAfter = bufferPool.alloc(Math.max(2 * n, 32));
    }
    const key = top.key;
    for (let i = 0; i < n; i++) after[i] = key[i]!;
    this.#aheadAfterLength = n;
    this.#aheadN0 = this.#n;
    this.#aheadSize = Math.min(READ_AHEAD_MAX, 2 * this.#aheadSize);
    let turn: Promise<void> | undefined;
    try {
      turn = this.#fill(ahead, this.#aheadSize, true);
    } catch (error) {
      if (ahead.length === 0) {
        this.#finish();
        return Promise.reject(error);
      }
      this.#aheadFailed = true;
      this.#aheadError = error;
    }
    if (!this.keysOnly) {
      const lengths = this.#aheadLengths;
      for (let i = 0; i < ahead.length; i++) {
        lengths[i] = (ahead[i] as Entry).value.length;
      }
    }
    const result: IteratorResult<T, undefined> = ahead.length > 0
      ? { done: false, value: ahead[this.#aheadAt++]! }
      : { done: true, value: undefined };
    // Its only entry was the scan's last: see #nextAhead.
    if (this.#aheadEnded && this.#aheadAt === ahead.length) this.#finish();
    return turn ? turn.then(() => result) : Promise.resolve(result);
  }

  /**
   * Moves entries next() read ahead into `out`, up to `max` of them; throws
   * (ending the scan) if the store closed meanwhile.
   */
  #takeAhead(out: T[], max: number): void {
    if (this.#aheadAt >= this.#ahead.length) return;
    this.#dropIfClosed();
    while (out.length < max && this.#aheadAt < this.#ahead.length) {
      const entry = this.#ahead[this.#aheadAt]!;
      if (this.#detached(entry, this.#aheadAt)) {
        this.#reread();
        return;
      }
      out.push(entry);
      this.#aheadAt++;
    }
  }

  /**
   * Once what next() read ahead is all handed out: ends the scan if reading
   * ahead reached its end (returning the end) or an error (thrown), or
   * the store closed meanwhile (StoreClosedError, as for a scan that had
   * not read ahead); undefined otherwise.
   */
  #settleAhead(): IteratorResult<T, undefined> | undefined {
    if (!this.#aheadFailed && !this.#aheadEnded) return undefined;
    this.#dropIfClosed();
    if (this.#aheadFailed) {
      const error = this.#aheadError;
      this.#drop();
      throw error;
    }
    return this.#finish();
  }

  nextv(size: number): Promise<T[]> {
    if (!Number.isSafeInteger(size) || size < 1) {
      return Promise.reject(
        new RangeError(`nextv() needs a positive integer size, got ${size}`),
      );
    }
    return this.#collect(size);
  }

  all(): Promise<T[]> {
    return this.#collect(Number.POSITIVE_INFINITY);
  }

  /**
   * Up to `max` next entries, read as next() reads them, one await each
   * turn. Once the merge is open, a turn's entries come straight from it
   * (#fill), without a result object or the checks of next() per entry.
   */
  async #collect(max: number): Promise<T[]> {
    const out: T[] = [];
    for (;;) {
      // What next() read ahead comes first (at each step: a next() made
      // meanwhile, while this call awaited, may have read some), then what
      // it failed on, or the end it reached.
      this.#takeAhead(out, max);
      if (out.length >= max) return out;
      const settled = this.#settleAhead();
      if (settled !== undefined) return out;
      if (this.#done) return out;
      if (this.#entries !== undefined) {
        if (this.closed()) {
          this.#finish();
          throw new StoreClosedError();
        }
        let turn: Promise<void> | undefined;
        try {
          turn = this.#fill(out, max);
        } catch (error) {
          this.#finish();
          throw error;
        }
        if (turn) await turn;
        continue;
      }
      const result = this.#advance();
      if (result === undefined) {
        try {
          await this.#starting;
        } catch (error) {
          this.#finish();
          throw error;
        }
        continue;
      }
      if (result.done) return out;
      out.push(result.value);
      const turn = this.turn();
      if (turn) await turn;
    }
  }

  /**
   * Adds the next entries to `out`, up to `max` of them, until the scan
   * ends or a turn of the event loop is due (returned, to be awaited).
   * REQUIRES: the merge is open and the scan not done.
   */
  #fill(
    out: T[],
    max: number,
    endLater = false,
  ): Promise<void> | undefined {
    const e = this.#entries!;
    while (out.length < max) {
      if (this.#n >= this.limit || !this.#nextLive(e)) {
        if (endLater) this.#aheadEnded = true;
        else this.#finish();
        return undefined;
      }
      out.push(this.#entryOf(e.top));
      const turn = this.turn();
      if (turn) return turn;
    }
    return undefined;
  }

  /**
   * The next result, read in this turn; undefined when the scan must first
   * wait for #starting (its view, or the writes issued before it). Throws,
   * having ended the scan, what next() rejects with.
   */
  #advance(): IteratorResult<T, undefined> | undefined {
    if (this.#done) return { done: true, value: undefined };
    if (this.closed()) {
      // Its tables are closed, or about to be.
      this.#finish();
      throw new StoreClosedError();
    }
    try {
      if (this.#entries === undefined) {
        const pinned = this.pinned;
        if (
          this.#starting !== undefined || !(pinned instanceof View) ||
          pinned.settled !== undefined
        ) {
          this.#starting ??= this.#start();
          return undefined;
        }
        // Pinned already, with no write to wait for: the first entry comes
        // in this turn, without the two promise turns of #start.
        this.#takeHold(pinned);
        this.#open(pinned);
      }
      return this.#step();
    } catch (error) {
      this.#finish();
      throw error;
    }
  }

  /** Takes the view once pinned, waits for the writes before the scan. */
  async #start(): Promise<void> {
    const view = await this.pinned;
    this.#takeHold(view);
    if (view.settled) await view.settled.catch(() => {});
    this.#open(view);
  }

  /** Starts the merge of the view's sources, unless the scan has ended. */
  #open(view: View): void {
    if (this.#done) return;
    this.#view = view;
    this.#entries = mergedEntries(view, view.seq, this.range);
  }

  /** Takes the scan's hold of `view` (see HoldBox). */
  #takeHold(view: View): void {
    if (!this.own) {
      // A snapshot's view: hold it, so that releasing the snapshot while
      // this scan goes on unpins nothing the scan still reads.
      const letGo = view.hold();
      if (letGo === undefined) throw new RangeError("Snapshot was released");
      // Returned before it started: nothing to read.
      if (this.#done) return letGo();
      this.#hold.letGo = letGo;
    } else if (this.#hold.letGo) {
      // Pinned now: released at once when the scan ends.
      this.#hold.letGo = () => view.release();
    }
  }

  #step(): IteratorResult<T, undefined> {
    const e = this.#entries!;
    if (this.#n >= this.limit || !this.#nextLive(e)) return this.#finish();
    return { done: false, value: this.#entryOf(e.top) };
  }

  /** Moves `e` to its next entry that is not a tombstone, counting it. */
  #nextLive(e: MergeCursor): boolean {
    while (e.next()) {
      if (e.top.valueLength >= 0) {
        this.#n++;
        return true;
      }
    }
    return false;
  }

  /** What the scan returns for `c`'s entry: copies of its key (and value). */
  #entryOf(c: EntryCursor): T {
    const key = resultPool.copy(c.key, 0, c.keyLength);
    return (this.keysOnly ? key : { key, value: valueCopy(c) }) as T;
  }

  /**
   * Ends the scan and drops what next() read ahead: broken off, failed, or
   * its store closed. (A scan that reaches its end or its limit while
   * reading ahead still hands out what it read: see #finish.)
   */
  #drop(): IteratorResult<T, undefined> {
    this.#clearAhead();
    return this.#finish();
  }

  #finish(): IteratorResult<T, undefined> {
    if (!this.#done) {
      this.#done = true;
      abandonedScans.unregister(this);
      this.#entries?.close();
      const letGo = this.#hold.letGo;
      this.#hold.letGo = undefined;
      letGo?.();
    }
    return { done: true, value: undefined };
  }

  return(): Promise<IteratorResult<T, undefined>> {
    return Promise.resolve(this.#drop());
  }

  throw(error: unknown): Promise<IteratorResult<T, undefined>> {
    this.#drop();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#drop();
    return Promise.resolve();
  }
}
