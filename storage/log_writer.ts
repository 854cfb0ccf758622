/**
 * Appends records to the active WAL segment and decides when they are
 * acknowledged, by sync mode:
 *
 * - `always`: group commit. Records queued while a write+fsync is in flight
 *   wait for it, then go out together in one write and one fsync. A commit
 *   is acknowledged only after an fsync that started after its bytes were
 *   written.
 * - `interval`: acknowledged once written to the OS; an fsync runs at most
 *   SYNC_INTERVAL_MS after the first write it covers.
 * - `none`: acknowledged once queued in memory; queued bytes go to the OS
 *   when the event loop turns (or the buffer fills), fsync only at close.
 *
 * Invariants:
 * - Commits are acknowledged (onDurable) in the order they were appended.
 * - After a failed write or fsync nothing more is acknowledged: every queued
 *   commit fails and so does every later append (fail-stop).
 */
import { assert, Spares } from "../util/mod.ts";
import type { Env, Timer, WritableFile } from "./env.ts";
import { StoreFailedError } from "./errors.ts";
import {
  BATCH_BYTES_MAX,
  LOG_CHUNK_BYTES,
  LOG_QUEUED_BYTES_MAX,
  LOG_SPARE_CHUNKS_MAX,
  SYNC_INTERVAL_MS,
  UNSYNCED_BUFFER_BYTES_MAX,
  WAL_PREALLOCATE_BYTES,
  WAL_TEAR_BLOCK_BYTES,
} from "./limits.ts";
import { encodedRecordBytes, encodeRecord, type WalOp } from "./wal.ts";

/** When a write counts as acknowledged; see the module comment. */
export type SyncMode = "always" | "interval" | "none";

/** The sync modes, for flag parsing. */
export const SYNC_MODES: readonly SyncMode[] = ["always", "interval", "none"];

/** A queued commit: told once whether it became durable or failed. */
export interface Commit {
  onDurable(): void;
  onFailed(error: Error): void;
}

/** Counters a store reports in its stats. */
export interface LogWriterStats {
  records: number;
  writes: number;
  syncs: number;
  /** Largest number of commits one fsync covered. */
  groupMax: number;
}

/**
 * Written chunks of LOG_CHUNK_BYTES, for the records that follow, in this
 * writer or the next segment's. A segment's records queue in memory until
 * the segment before it is synced (often the whole memtable's worth of
 * them under `--sync none`): in one buffer grown by doubling, each segment
 * wrote about twice its size into fresh memory, at a page fault per 4 KiB.
 */
export const spareLogChunks: Spares<Uint8Array> = new Spares(
  LOG_SPARE_CHUNKS_MAX,
);

function newChunk(need: number): Uint8Array {
  if (need > LOG_CHUNK_BYTES) return new Uint8Array(need);
  return spareLogChunks.take() ?? new Uint8Array(LOG_CHUNK_BYTES);
}

/** Writer of the active WAL segment. */
export class LogWriter {
  /** Full chunks queued before #buf, each as a view of its used bytes. */
  #full: Uint8Array[] = [];
  /** The chunk records are encoded into; its first #used bytes queued. */
  #buf: Uint8Array | undefined;
  #used = 0;
  /** Bytes queued in all. */
  #length = 0;
  #queued: Commit[] = [];
  /** True while a drain runs; cleared synchronously as it ends. */
  #inflight = false;
  #draining: Promise<void> = Promise.resolve();
  #scheduled = false;
  #timer: Timer | undefined;
  #failure: StoreFailedError | undefined;
  #unsynced = false;
  #bytes: number;
  /** The file's size with its preallocated space, as far as it is known. */
  #fileBytes: number;
  readonly stats: LogWriterStats = {
    records: 0,
    writes: 0,
    syncs: 0,
    groupMax: 0,
  };

  /** The segment file, once open; records queue in memory until then. */
  #file: WritableFile | undefined;
  #ready: Promise<void>;

  /**
   * A writer for the segment at `path`. `file` may still be opening (the
   * next segment opens only after the previous one is synced and closed, so
   * that segments never interleave); records queue until it is ready.
   * `onFailure` hears the fail-stop error once.
   */
  constructor(
    private readonly env: Env,
    readonly path: string,
    file: WritableFile | Promise<WritableFile>,
    readonly mode: SyncMode,
    initialBytes: number,
    private readonly onFailure: (error: StoreFailedError) => void = () => {},
  ) {
    this.#bytes = initialBytes;
    this.#fileBytes = initialBytes;
    if (file instanceof Promise) {
      this.#ready = file.then(
        (f) => {
          this.#file = f;
          this.#startDrain();
          if (this.mode === "none") this.#writeQueued();
        },
        (error) => this.#fail(error, "open"),
      );
    } else {
      this.#file = file;
      this.#ready = Promise.resolve();
    }
  }

  /**
   * Settles once the segment file is open (for a new segment, once its
   * directory entry is synced too) or opening it failed.
   */
  get opened(): Promise<void> {
    return this.#ready;
  }

  /** Bytes queued in memory, not yet handed to the OS. */
  get queuedBytes(): number {
    return this.#length;
  }

  /** Bytes in the segment, counting queued ones. */
  get bytes(): number {
    return this.#bytes + this.#length;
  }

  /**
   * Seals the log after a failure elsewhere: later appends fail too. Under
   * `none`, queued records were already acknowledged: they still go to the
   * file, now if it is open, else once it opens, and sync() and close()
   * write and fsync them before they throw `error`. (They were dropped when
   * the file was not open yet: a new segment's file opens only once the
   * one before it is synced, and a flush failing meanwhile lost them.)
   */
  failWith(error: StoreFailedError): void {
    if (this.#failure || this.#sealed) return;
    if (this.mode !== "none") {
      this.#fail(error, "write");
      return;
    }
    this.#sealed = error;
    this.#writeQueued();
  }

  /** A failure elsewhere that sealed the log (see failWith). */
  #sealed: StoreFailedError | undefined;

  /** Why the log stopped accepting writes, if it did. */
  get failure(): StoreFailedError | undefined {
    return this.#failure ?? this.#sealed;
  }

  /**
   * Queues one record holding `ops` (sequence numbers from `seq`), `need`
   * bytes encoded (as encodedRecordBytes computes, when the caller has it). `commit`
   * hears onDurable, in append order, once the record is acknowledged under
   * the sync mode, or onFailed. Under `none` there is no commit: the record
   * counts as acknowledged on return, and append throws if the log failed.
   */
  append(
    seq: number,
    ops: readonly WalOp[],
    commit: Commit | undefined,
    need: number = encodedRecordBytes(ops),
  ): void {
    const refused = this.#failure ?? this.#sealed;
    if (refused) {
      if (!commit) throw refused;
      commit.onFailed(refused);
      return;
    }
    // The store checks LOG_QUEUED_BYTES_MAX before it takes a sequence
    // number; past it here, refusing one record would leave a gap.
    assert(
      this.#length + need <= LOG_QUEUED_BYTES_MAX + BATCH_BYTES_MAX,
      "log queue over its bound",
    );
    const buf = this.#reserve(need);
    const end = encodeRecord(buf, this.#used, seq, this.env.now(), ops);
    assert(end === this.#used + need, "encoded size must match its estimate");
    this.#used = end;
    this.#length += need;
    this.stats.records++;
    if (this.mode === "none") {
      if (this.#length >= UNSYNCED_BUFFER_BYTES_MAX) this.#writeQueued();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        this.#timer = this.env.setTimer(0, () => {
          this.#scheduled = false;
          this.#timer = undefined;
          this.#writeQueued();
        });
      }
      return;
    }
    assert(commit !== undefined, "a commit is needed unless the mode is none");
    this.#queued.push(commit);
    if (!this.#scheduled && !this.#inflight) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#startDrain();
      });
    }
  }

  /** The chunk with room for `need` more bytes at #used. */
  #reserve(need: number): Uint8Array {
    const buf = this.#buf;
    if (buf !== undefined && this.#used + need <= buf.length) return buf;
    if (buf !== undefined && this.#used > 0) {
      this.#full.push(buf.subarray(0, this.#used));
    } else if (buf !== undefined) {
      keepChunk(buf);
    }
    this.#used = 0;
    return this.#buf = newChunk(need);
  }

  /** Hands the queued bytes to the OS; false (and fail-stop) on error. */
  #writeQueued(): boolean {
    if (this.#length === 0 || this.#failure) return !this.#failure;
    if (!this.#file) return true;
    try {
      // Grown in whole blocks, keeping a whole block of space past the
      // block every write ends in: recovery tells a write torn within its
      // first block by the zeros after that block (recordAfterDamage).
      const end = this.#bytes + this.#length;
      if (end + WAL_TEAR_BLOCK_BYTES > this.#fileBytes) {
        this.#fileBytes = Math.ceil(
          (end + WAL_PREALLOCATE_BYTES) / WAL_TEAR_BLOCK_BYTES,
        ) * WAL_TEAR_BLOCK_BYTES;
        this.#file.preallocate(this.#fileBytes);
      }
      for (const chunk of this.#full) this.#file.append(chunk);
      if (this.#used > 0) this.#file.append(this.#buf!.subarray(0, this.#used));
    } catch (error) {
      this.#fail(error, "write");
      return false;
    }
    for (const chunk of this.#full) keepChunk(chunk);
    this.#full.length = 0;
    this.#used = 0;
    // A record's own big chunk is not kept for the ones after it.
    if (this.#buf !== undefined && this.#buf.length !== LOG_CHUNK_BYTES) {
      this.#buf = undefined;
    }
    this.#bytes += this.#length;
    this.#length = 0;
    this.#unsynced = true;
    this.stats.writes++;
    return true;
  }

  #startDrain(): void {
    if (this.#inflight || this.#queued.length === 0 || !this.#file) return;
    this.#inflight = true;
    this.#draining = this.mode === "always"
      ? this.#drainAlways()
      : this.#drainInterval();
  }

  async #drainAlways(): Promise<void> {
    // #inflight is cleared in the same job as the last acknowledgement (no
    // await in between), so a writer woken by it starts a new drain.
    try {
      while (this.#queued.length > 0 && !this.#failure) {
        const group = this.#queued;
        this.#queued = [];
        if (!this.#writeQueued()) {
          for (const c of group) c.onFailed(this.#failure!);
          return;
        }
        try {
          await this.#file!.syncData();
        } catch (error) {
          this.#fail(error, "sync");
          for (const c of group) c.onFailed(this.#failure!);
          return;
        }
        this.#unsynced = false;
        this.stats.syncs++;
        if (group.length > this.stats.groupMax) {
          this.stats.groupMax = group.length;
        }
        for (const c of group) c.onDurable();
      }
    } finally {
      this.#inflight = false;
    }
  }

  // deno-lint-ignore require-await
  async #drainInterval(): Promise<void> {
    this.#inflight = false;
    const group = this.#queued;
    this.#queued = [];
    if (!this.#writeQueued()) {
      for (const c of group) c.onFailed(this.#failure!);
      return;
    }
    for (const c of group) c.onDurable();
    if (!this.#timer) {
      this.#timer = this.env.setTimer(SYNC_INTERVAL_MS, () => {
        this.#timer = undefined;
        void this.sync().catch(() => {});
      });
    }
  }

  /**
   * Writes everything queued and fsyncs it. Under `always` this waits for
   * the group commits in flight. Throws the fail-stop error if any failed,
   * or, once that is done, the error that sealed the log.
   */
  async sync(): Promise<void> {
    await this.#syncAll();
    if (this.#sealed) throw this.#sealed;
  }

  async #syncAll(): Promise<void> {
    await this.#ready;
    for (;;) {
      while (this.#inflight || this.#queued.length > 0) {
        this.#startDrain();
        await this.#draining;
      }
      if (this.#failure) throw this.#failure;
      if (!this.#writeQueued()) throw this.#failure!;
      // An fsync another caller started (the interval timer, a freeze's
      // close, store.sync()) covers only what was written before it: wait
      // for it, then look again. Returning at once, while it ran, acked
      // bytes not yet durable, and let a frozen segment count as closed
      // before it was synced.
      if (this.#syncing) {
        await this.#syncing.catch(() => {});
        continue;
      }
      if (!this.#unsynced) return;
      this.#unsynced = false;
      const syncing = this.#syncing = this.#file!.syncData();
      try {
        await syncing;
      } catch (error) {
        this.#fail(error, "sync");
        throw this.#failure!;
      } finally {
        this.#syncing = undefined;
      }
      this.stats.syncs++;
      return;
    }
  }

  /** The fsync sync() has in flight, if any. */
  #syncing: Promise<void> | undefined;

  #fail(error: unknown, what: "open" | "write" | "sync"): void {
    if (this.#failure) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.#failure = error instanceof StoreFailedError
      ? error
      : new StoreFailedError(
        `Cannot ${what} the write-ahead log "${this.path}": ${reason}; ` +
          "the store accepts no more writes until it is reopened",
      );
    this.#length = 0;
    this.#full.length = 0;
    this.#used = 0;
    const queued = this.#queued;
    this.#queued = [];
    for (const c of queued) c.onFailed(this.#failure);
    this.onFailure(this.#failure);
  }

  /**
   * Flushes and fsyncs everything (all modes), cuts the preallocated space
   * (durably: recovery reads damage at the end of a segment a later one
   * follows as corruption, and zero-filled space as damage), then closes
   * the file.
   */
  async close(): Promise<void> {
    try {
      await this.sync();
      if (this.#fileBytes > this.#bytes) {
        try {
          this.#file!.trim();
        } catch (error) {
          this.#fail(error, "write");
          throw this.#failure!;
        }
        this.#fileBytes = this.#bytes;
        this.#unsynced = true;
        await this.sync();
      }
      // Everything is written: the chunk serves the next segment's writer.
      if (this.#length === 0 && !this.#failure && this.#buf !== undefined) {
        keepChunk(this.#buf);
        this.#buf = undefined;
      }
    } finally {
      this.#timer?.cancel();
      this.#timer = undefined;
      this.#file?.close();
    }
  }
}

/** Keeps a written chunk (a view of it) for reuse, if it is a whole one. */
function keepChunk(chunk: Uint8Array): void {
  const whole = chunk.buffer as ArrayBuffer;
  if (whole.byteLength === LOG_CHUNK_BYTES && chunk.byteOffset === 0) {
    spareLogChunks.give(new Uint8Array(whole));
  }
}
