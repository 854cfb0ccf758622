/**
 * The real {@linkcode Env}: the only storage file that touches files (via
 * `Deno.*`, and `node:fs` for positioned reads, which Deno's own API lacks),
 * reads the wall clock or sets timers.
 */
import * as fs from "node:fs";
import {
  type Env,
  type FileLock,
  macrotask,
  type ReadableFile,
  type Timer,
  type WritableFile,
} from "./env.ts";

/**
 * Opened without O_APPEND, positioned at the end at open: writes go at the
 * handle's offset, which preallocation (ftruncate) does not move.
 */
class DenoWritableFile implements WritableFile {
  /** Where the next append goes: the bytes appended so far. */
  #end: number;
  /** The file's size (appended bytes plus preallocated space). */
  #size: number;

  constructor(
    readonly path: string,
    private readonly file: Deno.FsFile,
    size: number,
  ) {
    this.#end = size;
    this.#size = size;
  }

  append(bytes: Uint8Array): void {
    let done = 0;
    try {
      while (done < bytes.length) {
        const n = this.file.writeSync(bytes.subarray(done));
        if (n <= 0) {
          throw new Error(`Cannot append to "${this.path}": wrote 0 bytes`);
        }
        done += n;
      }
    } finally {
      this.#end += done;
      if (this.#end > this.#size) this.#size = this.#end;
    }
  }

  preallocate(length: number): void {
    if (length <= this.#size) return;
    this.file.truncateSync(length);
    this.#size = length;
  }

  trim(): void {
    if (this.#size === this.#end) return;
    this.file.truncateSync(this.#end);
    this.#size = this.#end;
  }

  syncData(): Promise<void> {
    return this.file.syncData();
  }

  close(): void {
    this.file.close();
  }
}

/**
 * A file read at explicit offsets with pread (node:fs with a position),
 * so reads need no seek and concurrent reads on one handle are safe.
 */
class DenoReadableFile implements ReadableFile {
  constructor(
    readonly path: string,
    readonly size: number,
    private readonly fd: number,
  ) {}

  read(offset: number, buf: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      const step = (done: number) => {
        if (done >= buf.length) return resolve(done);
        fs.read(
          this.fd,
          buf,
          done,
          buf.length - done,
          offset + done,
          (error, n) => {
            if (error) reject(error);
            else if (n === 0) resolve(done);
            else step(done + n);
          },
        );
      };
      step(0);
    });
  }

  readSync(offset: number, buf: Uint8Array): number {
    let done = 0;
    while (done < buf.length) {
      const n = fs.readSync(
        this.fd,
        buf,
        done,
        buf.length - done,
        offset + done,
      );
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** The real filesystem and clock. */
export const denoEnv: Env = {
  async mkdirAll(dir) {
    await Deno.mkdir(dir, { recursive: true });
  },
  async list(dir) {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    return names;
  },
  async openWritable(path) {
    const file = await Deno.open(path, { create: true, write: true });
    try {
      const size = await file.seek(0, Deno.SeekMode.End);
      return new DenoWritableFile(path, file, size);
    } catch (error) {
      file.close();
      throw error;
    }
  },
  async openReadable(path) {
    const fd = await new Promise<number>((resolve, reject) =>
      fs.open(path, "r", (error, fd) => error ? reject(error) : resolve(fd))
    );
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) {
        // Reading it would fail with a bare EISDIR that names no file.
        throw new Error(
          `"${path}" is ${
            stat.isDirectory() ? "a directory" : "not a regular file"
          }, where kv keeps a file`,
        );
      }
      return new DenoReadableFile(path, stat.size, fd);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  },
  async truncate(path, length) {
    const file = await Deno.open(path, { write: true });
    try {
      await file.truncate(length);
      await file.syncData();
    } finally {
      file.close();
    }
  },
  async rename(from, to) {
    await Deno.rename(from, to);
  },
  async remove(path) {
    await Deno.remove(path);
  },
  async syncDir(dir) {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  },
  async tryLock(path): Promise<FileLock | undefined> {
    const file = await Deno.open(path, { create: true, write: true });
    let locked = false;
    try {
      locked = await file.tryLock(true);
    } finally {
      if (!locked) file.close();
    }
    if (!locked) return undefined;
    return {
      release() {
        file.close();
      },
    };
  },
  now() {
    return Date.now();
  },
  yieldNow(): Promise<void> {
    return macrotask();
  },
  setTimer(ms, fn, unref = false): Timer {
    const id = setTimeout(fn, ms);
    if (unref) Deno.unrefTimer(id);
    return { cancel: () => clearTimeout(id) };
  },
};
