/**
 * The storage layer's only door to the outside world: files, directories,
 * locks and time. `env_deno.ts` implements it on the real filesystem; a
 * simulated implementation can drop unsynced bytes or inject errors, which
 * is what makes crash testing possible. Nothing in storage/ calls `Deno.*`
 * for files, `Date.now` or `setTimeout` except through an Env.
 */
import { dirname } from "node:path";
import { setImmediate } from "node:timers";

/**
 * A file opened for appending. Writes land in the OS page cache. Appends go
 * after the bytes appended so far (at open: the file's size), which is not
 * the file's end while preallocated space follows them.
 */
export interface WritableFile {
  /** Path the file was opened with. */
  readonly path: string;
  /**
   * Appends every byte of `bytes` after the bytes appended so far,
   * synchronously. Throws on failure; some prefix of the bytes may then
   * have been written.
   */
  append(bytes: Uint8Array): void;
  /**
   * Grows the file with zero-filled (sparse) space to `length` bytes, if it
   * is shorter, without moving where appends go. An fdatasync after an
   * append into that space need not commit a new file size, which makes it
   * faster than one after an append at the end. Durable after syncData.
   */
  preallocate(length: number): void;
  /**
   * Cuts the file to the bytes appended so far, dropping preallocated
   * space. Durable after syncData.
   */
  trim(): void;
  /** Makes everything appended so far durable (fdatasync). */
  syncData(): Promise<void>;
  /** Closes the handle without syncing. */
  close(): void;
}

/** A file opened for reading at explicit offsets. */
export interface ReadableFile {
  /** Path the file was opened with. */
  readonly path: string;
  /** Size of the file in bytes at open. */
  readonly size: number;
  /**
   * Reads up to `buf.length` bytes at `offset` into `buf`; returns how many
   * were read, fewer only at the end of the file.
   * REQUIRES: no other read on this handle is in flight.
   */
  read(offset: number, buf: Uint8Array): Promise<number>;
  /**
   * Like read(), synchronously: for table blocks, which are small and
   * usually in the OS page cache, where an async round trip costs more
   * than the read.
   */
  readSync(offset: number, buf: Uint8Array): number;
  /** Closes the handle. */
  close(): void;
}

/** An exclusive lock on a data directory, held until released. */
export interface FileLock {
  release(): void;
}

/** A timer handle from {@linkcode Env.setTimer}. */
export interface Timer {
  cancel(): void;
}

/** Filesystem, lock and clock operations the storage layer uses. */
export interface Env {
  /** Creates `dir` and its parents if missing. */
  mkdirAll(dir: string): Promise<void>;
  /** Names of the entries in `dir`. */
  list(dir: string): Promise<string[]>;
  /** Opens `path` for appending, creating it empty if missing. */
  openWritable(path: string): Promise<WritableFile>;
  /** Opens an existing file for reading. */
  openReadable(path: string): Promise<ReadableFile>;
  /** Cuts `path` to `length` bytes and makes that durable. */
  truncate(path: string, length: number): Promise<void>;
  /** Atomically renames `from` to `to` (durable after syncDir). */
  rename(from: string, to: string): Promise<void>;
  /**
   * Removes a file (durable after syncDir). A missing file rejects with an
   * error whose `code` is "ENOENT".
   */
  remove(path: string): Promise<void>;
  /** Makes creates, renames and removes in `dir` durable. */
  syncDir(dir: string): Promise<void>;
  /**
   * Takes an exclusive lock on `path` (created if missing) without waiting.
   * Returns undefined when another holder has it.
   */
  tryLock(path: string): Promise<FileLock | undefined>;
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /**
   * Calls `fn` once after `ms` milliseconds. With `unref`, the pending
   * timer does not keep the program from exiting (work that may as well
   * not happen, such as an idle merge of a store left open).
   */
  setTimer(ms: number, fn: () => void, unref?: boolean): Timer;
  /**
   * Resolves after one turn of the event loop, so that IO callbacks and
   * timers run: long background work calls it between slices. (A zero
   * timer would do, but timers nested this way are clamped to 4 ms.)
   */
  yieldNow(): Promise<void>;
}

/** The directory holding `path` ("." for a bare name, "/" for "/"). */
export function parentDir(path: string): string {
  return dirname(path);
}

/** Joins a directory and a file name with "/". */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Resolves after one turn of the event loop: `setImmediate` runs after the
 * loop's poll for I/O, so finished I/O ops, worker messages and due timers
 * are handled first; about 2 µs here. The usual Env.yieldNow. (A zero
 * timer is clamped to 1-4 ms. A MessageChannel message, used before, cost
 * 15-100 µs per turn and, in a process with a Node-API addon loaded, such
 * as classic-level's, let finished async ops wait some 260 turns: a store's
 * flushes and merges then stalled under a loop of reads.)
 */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Removes what a crash may have left at `path` before the caller creates
 * it afresh: a missing file is fine, any other failure is thrown. (Ignored,
 * it left the old bytes in a file the caller then appended to: a table or
 * manifest written after garbage, or a CURRENT of two lines.)
 */
export async function removeLeftover(env: Env, path: string): Promise<void> {
  try {
    await env.remove(path);
  } catch (error) {
    if ((error as { code?: unknown } | null)?.code !== "ENOENT") throw error;
  }
}
