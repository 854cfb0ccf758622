/**
 * A simulated filesystem implementing {@linkcode Env}, for crash testing:
 * it remembers, per file, what was made durable by syncData and, per
 * directory, which creates, renames and removes were made durable by
 * syncDir. powerCut() returns the filesystem a machine would find after
 * losing power: synced content plus a seeded choice of each file's unsynced
 * tail (none, a prefix, or a torn, garbage-filled version), and directory
 * changes since the last syncDir undone.
 *
 * The fault model is documented in docs/testing.md.
 */
import { Prng } from "../util/mod.ts";
import {
  type Env,
  type FileLock,
  macrotask,
  type ReadableFile,
  type Timer,
  type WritableFile,
} from "./env.ts";

/** One file's bytes: everything written, and what of it is durable. */
interface Inode {
  /** Content; bytes past `length` are zero. */
  data: Uint8Array;
  length: number;
  /** Content as of the last syncData (durable). */
  synced: Uint8Array;
  /**
   * Bytes written since the last syncData: [dirtyFrom, dirtyTo), or empty
   * (dirtyFrom ≥ dirtyTo). Appends are sequential, so one range holds them.
   */
  dirtyFrom: number;
  dirtyTo: number;
  /** Whether the size changed since the last syncData other than by writes. */
  resized: boolean;
}

function newInode(content: Uint8Array): Inode {
  const data = new Uint8Array(Math.max(256, content.length));
  data.set(content);
  return {
    data,
    length: content.length,
    synced: content.slice(),
    dirtyFrom: 0,
    dirtyTo: 0,
    resized: false,
  };
}

/** Sets `inode`'s length, growing its buffer, zero-filling new space. */
function resize(inode: Inode, length: number): void {
  if (length > inode.data.length) {
    let size = inode.data.length * 2;
    while (size < length) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(inode.data.subarray(0, inode.length));
    inode.data = grown;
  } else if (length < inode.length) {
    inode.data.fill(0, length, inode.length);
  }
  inode.length = length;
}

function markSynced(inode: Inode): void {
  inode.synced = inode.data.slice(0, inode.length);
  inode.dirtyFrom = inode.dirtyTo = 0;
  inode.resized = false;
}

/** Error thrown once the simulated power is cut, or by an injected fault. */
export class SimulatedFault extends Error {
  override name = "SimulatedFault";
}

/** A missing file, as the real filesystem reports it (`code` ENOENT). */
class NoSuchFile extends Error {
  override name = "NotFound";
  readonly code = "ENOENT";
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The simulated filesystem. */
export class MemEnv implements Env {
  /** Live directory entries: dir → name → inode. */
  #dirs = new Map<string, Map<string, Inode>>();
  /** Durable directory entries (as of each dir's last syncDir). */
  #durableDirs = new Map<string, Map<string, Inode>>();
  #locks = new Set<string>();
  /** File operations so far; the count a crash point refers to. */
  ops = 0;
  /** After this many operations every operation fails (power is cut). */
  cutAfter = Number.POSITIVE_INFINITY;
  /** Fails just operation number `failAt` (1-based) of the given kind. */
  failAt: {
    kind: "write" | "sync" | "rename" | "open" | "read";
    n: number;
    code: string;
  } | undefined;
  #counts = { write: 0, sync: 0, rename: 0, open: 0, read: 0 };

  #step(kind: "write" | "sync" | "rename" | "open" | "read" | "other"): void {
    this.ops++;
    if (this.ops > this.cutAfter) {
      throw new SimulatedFault(`EIO: power cut (operation ${this.ops})`);
    }
    if (kind === "other") return;
    const n = ++this.#counts[kind];
    if (this.failAt && this.failAt.kind === kind && this.failAt.n === n) {
      throw new SimulatedFault(
        `${this.failAt.code}: injected fault (${kind} ${n})`,
      );
    }
  }

  #dir(dir: string): Map<string, Inode> {
    const d = this.#dirs.get(dir);
    if (!d) throw new SimulatedFault(`ENOENT: no directory "${dir}"`);
    return d;
  }

  #inode(path: string): Inode {
    const inode = this.#dir(dirOf(path)).get(baseOf(path));
    if (!inode) throw new NoSuchFile(`ENOENT: no file "${path}"`);
    return inode;
  }

  mkdirAll(dir: string): Promise<void> {
    try {
      this.#step("other");
    } catch (error) {
      return Promise.reject(error);
    }
    // Directories themselves are durable at once: the model covers entries.
    // Their ancestors exist too (empty of files, as far as the model goes).
    for (let d = dir;; d = dirOf(d)) {
      if (!this.#dirs.has(d)) {
        this.#dirs.set(d, new Map());
        this.#durableDirs.set(d, new Map());
      }
      if (d === "/" || !d.startsWith("/")) break;
    }
    return Promise.resolve();
  }

  list(dir: string): Promise<string[]> {
    try {
      this.#step("other");
      return Promise.resolve([...this.#dir(dir).keys()]);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  openWritable(path: string): Promise<WritableFile> {
    this.#step("open");
    const d = this.#dir(dirOf(path));
    let inode = d.get(baseOf(path));
    if (!inode) {
      inode = newInode(new Uint8Array(0));
      d.set(baseOf(path), inode);
    }
    const node = inode;
    let end = node.length;
    return Promise.resolve({
      path,
      append: (bytes: Uint8Array) => {
        this.#step("write");
        if (end + bytes.length > node.length) resize(node, end + bytes.length);
        node.data.set(bytes, end);
        if (node.dirtyFrom >= node.dirtyTo) node.dirtyFrom = end;
        end += bytes.length;
        node.dirtyTo = Math.max(node.dirtyTo, end);
      },
      preallocate: (length: number) => {
        this.#step("other");
        if (length <= node.length) return;
        resize(node, length);
        node.resized = true;
      },
      trim: () => {
        this.#step("other");
        if (end === node.length) return;
        resize(node, end);
        node.resized = true;
      },
      syncData: () => {
        try {
          this.#step("sync");
        } catch (error) {
          return Promise.reject(error);
        }
        markSynced(node);
        return Promise.resolve();
      },
      close() {},
    });
  }

  openReadable(path: string): Promise<ReadableFile> {
    try {
      this.#step("open");
      const inode = this.#inode(path);
      const size = inode.length;
      const read = (offset: number, buf: Uint8Array) => {
        this.#step("read");
        const n = Math.max(0, Math.min(buf.length, size - offset));
        buf.set(inode.data.subarray(offset, offset + n));
        return n;
      };
      return Promise.resolve({
        path,
        size,
        read: (offset: number, buf: Uint8Array) => {
          try {
            return Promise.resolve(read(offset, buf));
          } catch (error) {
            return Promise.reject(error);
          }
        },
        readSync: read,
        close() {},
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  truncate(path: string, length: number): Promise<void> {
    try {
      this.#step("write");
      const inode = this.#inode(path);
      resize(inode, Math.min(inode.length, length));
      this.#step("sync");
      markSynced(inode);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  rename(from: string, to: string): Promise<void> {
    try {
      this.#step("rename");
      const inode = this.#inode(from);
      this.#dir(dirOf(from)).delete(baseOf(from));
      this.#dir(dirOf(to)).set(baseOf(to), inode);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  remove(path: string): Promise<void> {
    try {
      this.#step("other");
      this.#inode(path);
      this.#dir(dirOf(path)).delete(baseOf(path));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  syncDir(dir: string): Promise<void> {
    try {
      this.#step("sync");
      this.#durableDirs.set(dir, new Map(this.#dir(dir)));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  tryLock(path: string): Promise<FileLock | undefined> {
    if (this.#locks.has(path)) return Promise.resolve(undefined);
    this.#locks.add(path);
    return Promise.resolve({ release: () => this.#locks.delete(path) });
  }

  now(): number {
    return Date.now();
  }

  setTimer(ms: number, fn: () => void, unref = false): Timer {
    const id = setTimeout(fn, ms);
    if (unref) Deno.unrefTimer(id);
    return { cancel: () => clearTimeout(id) };
  }

  yieldNow(): Promise<void> {
    return macrotask();
  }

  /**
   * The filesystem after a power cut: each durable directory entry, with
   * its file's synced content plus, chosen by `rng`, nothing more, a prefix
   * of the unsynced tail, or that prefix with a garbage-filled end. No lock
   * survives. This environment is left as it was.
   */
  powerCut(rng: Prng): MemEnv {
    const after = new MemEnv();
    const copies = new Map<Inode, Inode>();
    for (const [dir, entries] of this.#durableDirs) {
      const d = new Map<string, Inode>();
      for (const [name, inode] of entries) {
        let copy = copies.get(inode);
        if (!copy) {
          copy = survivor(inode, rng);
          copies.set(inode, copy);
        }
        d.set(name, copy);
      }
      after.#dirs.set(dir, d);
      after.#durableDirs.set(dir, new Map(d));
    }
    return after;
  }
}

/** Sector and block sizes of the simulated disk and filesystem. */
const SECTOR_BYTES = 512;
const BLOCK_BYTES = 4096;

/**
 * What one file holds after a power cut: its synced content; with a size
 * change since (preallocation, a trim), either size; and of the bytes
 * written since, none, a prefix, or a torn, garbage-ended prefix. Or, when
 * they start inside the synced size (writes into preallocated space) and
 * inside a block already written, any of the sectors of that block and
 * nothing after it: a
 * filesystem shows later, never-written blocks only once all the write is
 * durable, but a disk may keep some sectors of an overwritten block and
 * not others.
 */
function survivor(inode: Inode, rng: Prng): Inode {
  const synced = inode.synced;
  let length = synced.length;
  if (inode.resized && rng.int(2) === 1) length = inode.length;
  const from = inode.dirtyFrom;
  const unsynced = inode.dirtyTo - from;
  let keep = 0;
  let torn = false;
  let sectors: [number, number] | undefined;
  if (unsynced > 0) {
    const choice = rng.int(4);
    // (A write starting at a block's start starts in a block never
    // written: shown whole or not at all, as the blocks after it.)
    if (choice === 3 && from < synced.length && from % BLOCK_BYTES !== 0) {
      const blockEnd = (Math.floor(from / BLOCK_BYTES) + 1) * BLOCK_BYTES;
      sectors = [from, Math.min(inode.dirtyTo, blockEnd, synced.length)];
    } else if (choice > 0) {
      keep = rng.int(unsynced + 1);
      torn = choice === 2;
    }
  }
  // Written bytes that survive are inside the file, whatever its size did.
  length = Math.max(length, keep > 0 ? from + keep : 0);
  const content = new Uint8Array(length);
  content.set(synced.subarray(0, Math.min(length, synced.length)));
  if (keep > 0) {
    content.set(inode.data.subarray(from, from + keep), from);
    if (torn) {
      // A torn write: the last sector-ish piece is garbage.
      for (let i = from + rng.int(keep); i < from + keep; i++) {
        content[i] = rng.nextU32() & 0xff;
      }
    }
  }
  if (sectors) {
    const [start, end] = sectors;
    for (let s = start; s < end;) {
      const next = Math.min(
        end,
        (Math.floor(s / SECTOR_BYTES) + 1) * SECTOR_BYTES,
      );
      if (rng.int(2) === 1) content.set(inode.data.subarray(s, next), s);
      s = next;
    }
  }
  return newInode(content);
}
