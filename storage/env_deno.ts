/**
 * The real {@linkcode Env}: the only storage file that calls `Deno.*` for
 * files, reads the wall clock or sets timers.
 */
import type {
  Env,
  FileLock,
  ReadableFile,
  Timer,
  WritableFile,
} from "./env.ts";

class DenoWritableFile implements WritableFile {
  constructor(readonly path: string, private readonly file: Deno.FsFile) {}

  append(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      const n = this.file.writeSync(bytes.subarray(done));
      if (n <= 0) {
        throw new Error(`Cannot append to "${this.path}": wrote 0 bytes`);
      }
      done += n;
    }
  }

  syncData(): Promise<void> {
    return this.file.syncData();
  }

  close(): void {
    this.file.close();
  }
}

class DenoReadableFile implements ReadableFile {
  constructor(
    readonly path: string,
    readonly size: number,
    private readonly file: Deno.FsFile,
  ) {}

  async read(offset: number, buf: Uint8Array): Promise<number> {
    await this.file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) {
      const n = await this.file.read(buf.subarray(done));
      if (n === null) break;
      done += n;
    }
    return done;
  }

  readSync(offset: number, buf: Uint8Array): number {
    this.file.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) {
      const n = this.file.readSync(buf.subarray(done));
      if (n === null) break;
      done += n;
    }
    return done;
  }

  close(): void {
    this.file.close();
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
    const file = await Deno.open(path, {
      create: true,
      append: true,
      read: false,
    });
    return new DenoWritableFile(path, file);
  },
  async openReadable(path) {
    const file = await Deno.open(path, { read: true });
    const { size } = await file.stat();
    return new DenoReadableFile(path, size, file);
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
  setTimer(ms, fn): Timer {
    const id = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(id) };
  },
};
