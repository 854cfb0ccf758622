/**
 * The store: a WAL for durability in front of a versioned memtable.
 *
 * Invariants:
 * - Sequence numbers are assigned when an operation is issued; operations
 *   reach the memtable in that order, and only once acknowledged by the
 *   log under the active sync mode. Reads never see unacknowledged writes.
 * - A read issued after a write to the same key (a scan: after any write)
 *   waits for that write to settle, so concurrent operations behave as if
 *   applied one at a time in issue order.
 * - After a failed write or fsync the store rejects writes (fail-stop).
 */
import {
  binaryToBytes,
  bytesToBinary,
  prefixSuccessor,
  textToBinary,
} from "../util/mod.ts";
import { type Env, type FileLock, joinPath } from "./env.ts";
import { denoEnv } from "./env_deno.ts";
import { LockedError, StoreClosedError } from "./errors.ts";
import { BatchOpKind, LOCK_FILE_NAME } from "./format.ts";
import {
  BATCH_BYTES_MAX,
  BATCH_OPS_MAX,
  KEY_BYTES_MAX,
  VALUE_BYTES_MAX,
} from "./limits.ts";
import {
  LogWriter,
  type LogWriterStats,
  SYNC_MODES,
  type SyncMode,
} from "./log_writer.ts";
import { Memtable, type Version } from "./memtable.ts";
import { recoverWal, type RecoveryReport, segmentName } from "./recovery.ts";
import { encodedRecordBytes, type WalOp } from "./wal.ts";

const RESOLVED = Promise.resolve();

/** Keys and values are bytes; strings are UTF-8 encoded. */
export type Bytes = string | Uint8Array;

/** Options of {@linkcode openStore}. */
export interface StoreOptions {
  /** When writes are acknowledged; default "always" (fsync before ack). */
  sync?: SyncMode;
  /** Keep the valid prefix of a corrupt log instead of refusing to open. */
  repair?: boolean;
  /** Filesystem and clock; default the real ones. */
  env?: Env;
}

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

/** A key and its value, as returned by scans. Both are fresh copies. */
export interface Entry {
  key: Uint8Array;
  value: Uint8Array;
}

/** Counters and state reported by {@linkcode Store.stats}. */
export interface StoreStats {
  numKeys: number;
  lastSequence: number;
  memtableBytes: number;
  walSegments: number;
  walBytes: number;
  syncMode: SyncMode;
  wal: LogWriterStats;
  failure: string | undefined;
  recovery: RecoveryReport;
}

function keyToBinary(key: Bytes): string {
  let binary: string;
  if (typeof key === "string") binary = textToBinary(key);
  else if (key instanceof Uint8Array) binary = bytesToBinary(key);
  else throw new TypeError("Key must be a string or a Uint8Array");
  if (binary.length === 0) throw new RangeError("Key must not be empty");
  if (binary.length > KEY_BYTES_MAX) {
    throw new RangeError(
      `Key is ${binary.length} bytes; the limit is ${KEY_BYTES_MAX} (KEY_BYTES_MAX)`,
    );
  }
  return binary;
}

function boundToBinary(bound: Bytes, what: string): string {
  if (typeof bound === "string") return textToBinary(bound);
  if (bound instanceof Uint8Array) return bytesToBinary(bound);
  throw new TypeError(`Scan ${what} must be a string or a Uint8Array`);
}

function valueToBinary(value: Bytes): string {
  let binary: string;
  if (typeof value === "string") {
    // A UTF-8 encoding is at most 3 bytes per UTF-16 unit: check before
    // encoding a string far over the limit.
    if (value.length > VALUE_BYTES_MAX) throw valueTooLarge(value.length);
    binary = textToBinary(value);
  } else if (value instanceof Uint8Array) {
    if (value.length > VALUE_BYTES_MAX) throw valueTooLarge(value.length);
    binary = bytesToBinary(value);
  } else throw new TypeError("Value must be a string or a Uint8Array");
  if (binary.length > VALUE_BYTES_MAX) throw valueTooLarge(binary.length);
  return binary;
}

function valueTooLarge(bytes: number): RangeError {
  return new RangeError(
    `Value is at least ${bytes} bytes; the limit is ${VALUE_BYTES_MAX} (VALUE_BYTES_MAX)`,
  );
}

/**
 * Opens (creating if needed) the store in `dir`, taking its lock and
 * replaying its write-ahead log.
 *
 * @example
 * ```ts
 * const store = await openStore("./data");
 * await store.put("greeting", "hello");
 * new TextDecoder().decode(await store.get("greeting")); // "hello"
 * await store.close();
 * ```
 */
export async function openStore(
  dir: string,
  options: StoreOptions = {},
): Promise<Store> {
  const env = options.env ?? denoEnv;
  const mode = options.sync ?? "always";
  if (!SYNC_MODES.includes(mode)) {
    throw new TypeError(
      `Unknown sync mode "${mode}": use ${SYNC_MODES.join(", ")}`,
    );
  }
  await env.mkdirAll(dir);
  const lock = await env.tryLock(joinPath(dir, LOCK_FILE_NAME));
  if (!lock) {
    throw new LockedError(
      `data directory "${dir}" is in use by another process`,
    );
  }
  try {
    const memtable = new Memtable();
    const names = await env.list(dir);
    const { report, segments } = await recoverWal(
      env,
      dir,
      names,
      options.repair ?? false,
      (record) => {
        let seq = record.seq;
        for (const op of record.ops) {
          memtable.apply(seq++, op.key, op.value, op.expiry);
        }
      },
    );
    let last = segments[segments.length - 1];
    if (!last) {
      last = { number: 1, name: segmentName(1), size: 0 };
      segments.push(last);
    }
    const file = await env.openWritable(joinPath(dir, last.name));
    if (last.size === 0) await env.syncDir(dir);
    const log = new LogWriter(env, file, mode, last.size);
    const olderBytes = segments.slice(0, -1).reduce((n, s) => n + s.size, 0);
    return new Store(
      dir,
      lock,
      memtable,
      log,
      report,
      segments.length,
      olderBytes,
    );
  } catch (error) {
    lock.release();
    throw error;
  }
}

/** A kv store. Create one with {@linkcode openStore}. */
export class Store {
  #lastApplied: number;
  #nextSeq: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Latest unsettled write per key, for issue-order reads. */
  #pendingByKey = new Map<string, Promise<void>>();
  #pendingWrites = 0;
  #lastWrite: Promise<void> = Promise.resolve();

  /** @internal Use {@linkcode openStore}. */
  constructor(
    readonly dir: string,
    private readonly lock: FileLock,
    private readonly memtable: Memtable,
    private readonly log: LogWriter,
    /** What recovery did when this store opened. */
    readonly recovery: RecoveryReport,
    private readonly walSegments: number,
    private readonly olderWalBytes: number,
  ) {
    this.#lastApplied = recovery.lastSeq;
    this.#nextSeq = recovery.lastSeq + 1;
  }

  #checkWritable(): void {
    if (this.#closed) throw new StoreClosedError();
    if (this.log.failure) throw this.log.failure;
  }

  /** Sets `key` to `value`. Resolves once durable under the sync mode. */
  put(key: Bytes, value: Bytes): Promise<void> {
    try {
      this.#checkWritable();
      const op: WalOp = {
        kind: BatchOpKind.PUT,
        key: keyToBinary(key),
        value: valueToBinary(value),
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
      if (ops.length === 0) return Promise.resolve();
      if (ops.length > BATCH_OPS_MAX) {
        throw new RangeError(
          `Batch has ${ops.length} operations; the limit is ${BATCH_OPS_MAX} (BATCH_OPS_MAX)`,
        );
      }
      const walOps = ops.map((op, i): WalOp => {
        if (op?.type === "put") {
          return {
            kind: BatchOpKind.PUT,
            key: keyToBinary(op.key),
            value: valueToBinary(op.value),
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
        throw new TypeError(
          `Batch operation ${i} must have type "put" or "delete"`,
        );
      });
      const bytes = encodedRecordBytes(walOps);
      if (bytes > BATCH_BYTES_MAX) {
        throw new RangeError(
          `Batch encodes to ${bytes} bytes; the limit is ${BATCH_BYTES_MAX} (BATCH_BYTES_MAX)`,
        );
      }
      return this.#write(walOps);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #write(ops: WalOp[]): Promise<void> {
    const seq = this.#nextSeq;
    this.#nextSeq += ops.length;
    if (this.log.mode === "none") {
      // Acknowledged once queued: apply now, no promise bookkeeping.
      this.log.append(seq, ops, undefined);
      this.#applyOps(seq, ops);
      return RESOLVED;
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    for (const op of ops) this.#pendingByKey.set(op.key, promise);
    this.#pendingWrites++;
    this.#lastWrite = promise;
    const settle = () => {
      this.#pendingWrites--;
      for (const op of ops) {
        if (this.#pendingByKey.get(op.key) === promise) {
          this.#pendingByKey.delete(op.key);
        }
      }
    };
    this.log.append(seq, ops, {
      onDurable: () => {
        let s = seq;
        for (const op of ops) {
          this.memtable.apply(s++, op.key, op.value, op.expiry);
        }
        this.#lastApplied = s - 1;
        settle();
        resolve();
      },
      onFailed: (error) => {
        settle();
        reject(error);
      },
    });
    return promise;
  }

  #applyOps(seq: number, ops: WalOp[]): void {
    for (const op of ops) {
      this.memtable.apply(seq++, op.key, op.value, op.expiry);
    }
    this.#lastApplied = seq - 1;
  }

  /** The value of `key`, or undefined when absent. */
  get(key: Bytes): Promise<Uint8Array | undefined> {
    // Not an async function: the common case (no write of this key in
    // flight) resolves at once, without async-function machinery.
    let k: string;
    try {
      if (this.#closed) throw new StoreClosedError();
      k = keyToBinary(key);
    } catch (error) {
      return Promise.reject(error);
    }
    const pending = this.#pendingWrites > 0
      ? this.#pendingByKey.get(k)
      : undefined;
    if (!pending) return Promise.resolve(this.#copyOut(this.memtable.get(k)));
    return this.#getAfter(k, pending);
  }

  /**
   * Reads `k` as of the current call: waits for the write issued before it,
   * then reads at the sequence number current now, keeping that version.
   */
  async #getAfter(
    k: string,
    pending: Promise<void>,
  ): Promise<Uint8Array | undefined> {
    const seq = this.#nextSeq - 1;
    this.memtable.addReader(seq);
    try {
      await pending.catch(() => {});
      return this.#copyOut(this.memtable.get(k, seq));
    } finally {
      this.memtable.removeReader(seq);
    }
  }

  #copyOut(version: Version | undefined): Uint8Array | undefined {
    const value = version?.value;
    return value === undefined ? undefined : binaryToBytes(value);
  }

  /** Whether `key` is present. */
  async has(key: Bytes): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  #range(options: ScanOptions): { start?: string; end?: string } {
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
      if (upper !== undefined && (end === undefined || end > upper)) {
        end = upper;
      }
    }
    const range: { start?: string; end?: string } = {};
    if (start !== undefined) range.start = start;
    if (end !== undefined) range.end = end;
    return range;
  }

  /**
   * Entries in bytewise key order (descending with `reverse`), from `start`
   * (inclusive) to `end` (exclusive), within `prefix`, at most `limit`.
   *
   * The scan sees one point-in-time view, taken when scan() is called: it
   * includes every write issued before the call and none issued after. Read
   * it to the end or break out of the loop to release the view.
   */
  scan(options: ScanOptions = {}): AsyncGenerator<Entry> {
    if (this.#closed) throw new StoreClosedError();
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (
      typeof limit !== "number" || !(limit >= 0) ||
      (Number.isFinite(limit) && !Number.isInteger(limit))
    ) {
      throw new RangeError(
        `Scan limit must be a non-negative integer, got ${limit}`,
      );
    }
    const range = this.#range(options);
    const seq = this.#nextSeq - 1;
    const settled = this.#pendingWrites > 0 ? this.#lastWrite : undefined;
    this.memtable.addReader(seq);
    return this.#iterate(seq, range, options.reverse === true, limit, settled);
  }

  async *#iterate(
    seq: number,
    range: { start?: string; end?: string },
    reverse: boolean,
    limit: number,
    settled: Promise<void> | undefined,
  ): AsyncGenerator<Entry> {
    try {
      if (settled) await settled.catch(() => {});
      let n = 0;
      if (n >= limit) return;
      for (
        const [key, version] of this.memtable.entries(seq, {
          ...range,
          reverse,
        })
      ) {
        if (version.value === undefined) continue;
        yield { key: binaryToBytes(key), value: binaryToBytes(version.value) };
        if (++n >= limit) return;
      }
    } finally {
      this.memtable.removeReader(seq);
    }
  }

  /** Number of keys, in all or within a prefix or range. */
  async count(
    options: Omit<ScanOptions, "limit" | "reverse"> = {},
  ): Promise<number> {
    if (this.#closed) throw new StoreClosedError();
    const whole = options.start === undefined && options.end === undefined &&
      options.prefix === undefined;
    // Without writes in flight the live-key counter is exact; otherwise
    // count a view as of this call.
    if (whole && this.#pendingWrites === 0) return this.memtable.liveKeys;
    let n = 0;
    for await (const _ of this.scan(options)) n++;
    return n;
  }

  /** Counters and state; see {@linkcode StoreStats}. */
  stats(): StoreStats {
    return {
      numKeys: this.memtable.liveKeys,
      lastSequence: this.#lastApplied,
      memtableBytes: this.memtable.bytes,
      walSegments: this.walSegments,
      walBytes: this.olderWalBytes + this.log.bytes,
      syncMode: this.log.mode,
      wal: { ...this.log.stats },
      failure: this.log.failure?.message,
      recovery: this.recovery,
    };
  }

  /** Makes every acknowledged write durable now, whatever the sync mode. */
  async sync(): Promise<void> {
    if (this.#closed) throw new StoreClosedError();
    await this.log.sync();
  }

  /**
   * Waits for queued writes, fsyncs the log and releases the directory.
   * Safe to call twice.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      this.#closing = this.log.close().finally(() => this.lock.release());
    }
    return this.#closing;
  }
}
