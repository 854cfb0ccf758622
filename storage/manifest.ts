/**
 * The manifest: an append-only, checksummed log of version edits (tables
 * added and removed per level, next file number, last sequence, oldest live
 * WAL segment), named by the CURRENT file. Format: docs/format/manifest.md.
 *
 * Invariants:
 * - An edit is part of the store's state once its frame is fsynced; a torn
 *   final frame was never committed and is ignored (and cut off).
 * - CURRENT is replaced only by write temp, fsync, rename, fsync dir, and
 *   only after the manifest it names is durable.
 */
import {
  bytesToBinary,
  crc32c,
  getFixed32,
  getFixed64,
  getVarint32,
  maskCrc,
  putBinary,
  putFixed32,
  putFixed64,
  putVarint32,
  unmaskCrc,
  varint32Length,
  type VarintResult,
} from "../util/mod.ts";
import {
  type Env,
  joinPath,
  removeLeftover,
  type WritableFile,
} from "./env.ts";
import { CorruptionError } from "./errors.ts";
import {
  CURRENT_FILE_NAME,
  EditTag,
  MANIFEST_HEADER_BYTES,
  MANIFEST_PREFIX,
  TEMP_SUFFIX,
} from "./format.ts";
import {
  damageSearchBudget,
  MANIFEST_BYTES_MAX,
  MANIFEST_EDIT_BYTES_MAX,
} from "./limits.ts";
import type { TableMeta } from "./sstable/mod.ts";

/** Number of levels a version can hold. */
export const LEVELS = 7;

/** A change to the store's set of tables and counters. */
export interface VersionEdit {
  nextFile?: number;
  lastSeq?: number;
  /** WAL segments numbered below this are fully in tables. */
  logNumber?: number;
  /**
   * WAL segments the store made (created, directory synced), recorded
   * before any write goes to them: open finds a lost one by them.
   */
  addedLogs?: number[];
  added: Array<{ level: number; meta: TableMeta }>;
  removed: Array<{ level: number; fileNumber: number }>;
}

/** The state a manifest describes. */
export interface ManifestState {
  nextFile: number;
  lastSeq: number;
  logNumber: number;
  /**
   * WAL segments numbered `logNumber` or above that the store made, in
   * order (ADD_LOG): each must be on disk. Empty in a manifest written
   * before ADD_LOG, whose open checks only the `logNumber` segment.
   */
  logs: number[];
  /** Tables per level; level 0 oldest first, other levels by key. */
  levels: TableMeta[][];
}

/** An empty state. */
export function emptyState(): ManifestState {
  return {
    nextFile: 1,
    lastSeq: 0,
    logNumber: 0,
    logs: [],
    levels: Array.from({ length: LEVELS }, () => []),
  };
}

/** File name of manifest `n`. */
export function manifestName(n: number): string {
  return MANIFEST_PREFIX + String(n).padStart(6, "0");
}

function tableBytes(m: TableMeta): number {
  return 1 + 8 * 7 + varint32Length(m.smallest.length) + m.smallest.length +
    varint32Length(m.largest.length) + m.largest.length;
}

/** Encodes an edit's payload. */
export function encodeEdit(edit: VersionEdit): Uint8Array {
  let n = 0;
  if (edit.nextFile !== undefined) n += 9;
  if (edit.lastSeq !== undefined) n += 9;
  if (edit.logNumber !== undefined) n += 9;
  n += (edit.addedLogs?.length ?? 0) * 9;
  for (const { meta } of edit.added) n += 1 + tableBytes(meta);
  n += edit.removed.length * 10;
  const out = new Uint8Array(n);
  let at = 0;
  const fixed = (tag: number, value: number) => {
    out[at] = tag;
    putFixed64(out, at + 1, value);
    at += 9;
  };
  if (edit.nextFile !== undefined) fixed(EditTag.NEXT_FILE, edit.nextFile);
  if (edit.lastSeq !== undefined) fixed(EditTag.LAST_SEQUENCE, edit.lastSeq);
  if (edit.logNumber !== undefined) fixed(EditTag.LOG_NUMBER, edit.logNumber);
  for (const n of edit.addedLogs ?? []) fixed(EditTag.ADD_LOG, n);
  for (const { level, meta } of edit.added) {
    out[at++] = EditTag.ADD_TABLE;
    out[at++] = level;
    for (
      const v of [
        meta.fileNumber,
        meta.size,
        meta.entries,
        meta.tombstones,
        meta.minSeq,
        meta.maxSeq,
      ]
    ) {
      putFixed64(out, at, v);
      at += 8;
    }
    // Reserved (0): room for a future field without a format change.
    putFixed64(out, at, 0);
    at += 8;
    at = putVarint32(out, at, meta.smallest.length);
    at = putBinary(out, at, meta.smallest);
    at = putVarint32(out, at, meta.largest.length);
    at = putBinary(out, at, meta.largest);
  }
  for (const { level, fileNumber } of edit.removed) {
    out[at++] = EditTag.REMOVE_TABLE;
    out[at++] = level;
    putFixed64(out, at, fileNumber);
    at += 8;
  }
  return out;
}

const scratch: VarintResult = { value: 0, offset: 0 };

/** Decodes an edit payload; throws CorruptionError on any bad field. */
export function decodeEdit(
  payload: Uint8Array,
  file: string,
  offset: number,
): VersionEdit {
  const bad = (why: string) =>
    new CorruptionError(
      `Corrupt manifest "${file}" at offset ${offset}: ${why}`,
      file,
      offset,
    );
  const edit: VersionEdit = { added: [], removed: [] };
  const end = payload.length;
  let at = 0;
  const u64 = () => {
    if (end - at < 8) throw bad("truncated field");
    const v = getFixed64(payload, at);
    if (v < 0) throw bad("number out of range");
    at += 8;
    return v;
  };
  const level = () => {
    if (at >= end) throw bad("truncated field");
    const l = payload[at++]!;
    if (l >= LEVELS) throw bad(`level ${l} out of range`);
    return l;
  };
  const key = () => {
    if (!getVarint32(payload, at, end, scratch)) throw bad("bad key length");
    const n = scratch.value;
    at = scratch.offset;
    if (n > end - at) throw bad("key runs past the edit");
    const k = bytesToBinary(payload, at, at + n);
    at += n;
    return k;
  };
  while (at < end) {
    const tag = payload[at++]!;
    switch (tag) {
      case EditTag.NEXT_FILE:
        edit.nextFile = u64();
        break;
      case EditTag.LAST_SEQUENCE:
        edit.lastSeq = u64();
        break;
      case EditTag.LOG_NUMBER:
        edit.logNumber = u64();
        break;
      case EditTag.ADD_LOG:
        (edit.addedLogs ??= []).push(u64());
        break;
      case EditTag.ADD_TABLE: {
        const l = level();
        const [fileNumber, size, entries, tombstones, minSeq, maxSeq] = [
          u64(),
          u64(),
          u64(),
          u64(),
          u64(),
          u64(),
        ];
        u64(); // reserved
        const smallest = key();
        const largest = key();
        edit.added.push({
          level: l,
          meta: {
            fileNumber: fileNumber!,
            size: size!,
            entries: entries!,
            tombstones: tombstones!,
            minSeq: minSeq!,
            maxSeq: maxSeq!,
            smallest,
            largest,
          },
        });
        break;
      }
      case EditTag.REMOVE_TABLE: {
        const l = level();
        edit.removed.push({ level: l, fileNumber: u64() });
        break;
      }
      default:
        throw bad(`unknown edit tag ${tag}`);
    }
  }
  return edit;
}

/**
 * Applies an edit to a state, in place. Throws CorruptionError when the edit
 * does not fit the state (removing an absent table, adding a present one).
 */
export function applyEdit(
  state: ManifestState,
  edit: VersionEdit,
  file: string,
  offset: number,
): void {
  const bad = (why: string) =>
    new CorruptionError(
      `Inconsistent manifest "${file}" at offset ${offset}: ${why}`,
      file,
      offset,
    );
  for (const { level, fileNumber } of edit.removed) {
    const list = state.levels[level]!;
    const i = list.findIndex((t) => t.fileNumber === fileNumber);
    if (i < 0) throw bad(`removes table ${fileNumber}, not in level ${level}`);
    list.splice(i, 1);
  }
  if (edit.added.length > 0) {
    // A big edit (a snapshot's) checks for a repeated table against a set
    // and sorts each level once: table by table, a snapshot of n tables
    // took time in n squared (seconds to open a store of ten thousand).
    // A small one (a flush's, a merge's) looks through the levels.
    let numbers: Set<number> | undefined;
    if (edit.added.length > 16) {
      numbers = new Set();
      for (const list of state.levels) {
        for (const t of list) numbers.add(t.fileNumber);
      }
    }
    const touched = new Set<number>();
    for (const { level, meta } of edit.added) {
      const n = meta.fileNumber;
      if (
        numbers
          ? numbers.has(n)
          : state.levels.some((l) => l.some((t) => t.fileNumber === n))
      ) {
        throw bad(`adds table ${n} twice`);
      }
      numbers?.add(n);
      state.levels[level]!.push(meta);
      touched.add(level);
    }
    for (const level of touched) {
      if (level > 0) {
        state.levels[level]!.sort((a, b) => a.smallest < b.smallest ? -1 : 1);
      }
    }
  }
  // The file counter never goes back: a number once handed out stays used.
  if (edit.nextFile !== undefined) {
    state.nextFile = Math.max(state.nextFile, edit.nextFile);
  }
  if (edit.lastSeq !== undefined) state.lastSeq = edit.lastSeq;
  for (const n of edit.addedLogs ?? []) {
    if (state.logs.length > 0 && n <= state.logs.at(-1)!) {
      throw bad(`adds WAL segment ${n} after segment ${state.logs.at(-1)}`);
    }
    state.logs.push(n);
  }
  if (edit.logNumber !== undefined) {
    state.logNumber = edit.logNumber;
    // Segments below it are in tables: no longer needed.
    const logNumber = edit.logNumber;
    if (state.logs.length > 0 && state.logs[0]! < logNumber) {
      state.logs = state.logs.filter((n) => n >= logNumber);
    }
  }
}

/**
 * Where tables of a level above 0 (sorted by smallest key) overlap: the
 * index of the first table whose range meets its predecessor's, or -1.
 * Reads find a key in such a level by one binary search, so overlapping
 * tables would answer with either: open refuses them, `kv check` reports.
 */
export function firstOverlap(metas: readonly TableMeta[]): number {
  for (let i = 1; i < metas.length; i++) {
    if (metas[i - 1]!.largest >= metas[i]!.smallest) return i;
  }
  return -1;
}

/**
 * Most payload bytes of one edit of a snapshot. A snapshot of many tables
 * is written as several edits: one, bounded by MANIFEST_EDIT_BYTES_MAX,
 * made a store of a few hundred tables with 64 KiB keys (or of a few
 * hundred thousand with 100-byte keys) unable to start a manifest, and so
 * to open.
 */
export const SNAPSHOT_EDIT_BYTES = 1024 * 1024;

/**
 * The edits that recreate `state` from empty (a manifest's first records):
 * the counters and the first tables, then the other tables, each edit
 * within SNAPSHOT_EDIT_BYTES (or one table, whatever its size).
 */
export function snapshotEdits(state: ManifestState): VersionEdit[] {
  let edit: VersionEdit = {
    nextFile: state.nextFile,
    lastSeq: state.lastSeq,
    logNumber: state.logNumber,
    added: [],
    removed: [],
  };
  if (state.logs.length > 0) edit.addedLogs = [...state.logs];
  const edits = [edit];
  let bytes = 27 + state.logs.length * 9;
  state.levels.forEach((list, level) => {
    for (const meta of list) {
      const n = 1 + tableBytes(meta);
      if (edit.added.length > 0 && bytes + n > SNAPSHOT_EDIT_BYTES) {
        edits.push(edit = { added: [], removed: [] });
        bytes = 0;
      }
      edit.added.push({ level, meta });
      bytes += n;
    }
  });
  return edits;
}

/**
 * The edit a manifest's snapshot ends with: NEXT_FILE alone, at the value
 * the snapshot set (applying it changes nothing). Fsynced with the
 * snapshot before CURRENT names the manifest, it puts a valid frame after
 * every snapshot edit: a snapshot edit damaged later is then read as
 * damage ("valid edits follow"), never as a torn final frame, which read
 * a snapshot's damaged last edit as never committed and lost its tables.
 */
export function snapshotEnd(state: ManifestState): VersionEdit {
  return { nextFile: state.nextFile, added: [], removed: [] };
}

/** Throws unless a manifest of `bytes` is one a reader accepts. */
function checkManifestBytes(bytes: number): void {
  if (bytes > MANIFEST_BYTES_MAX) {
    throw new RangeError(
      `The manifest would be ${bytes} bytes, past the ${MANIFEST_BYTES_MAX} a reader accepts (MANIFEST_BYTES_MAX): the store holds too many tables (raise tableBytes)`,
    );
  }
}

/** Frames an edit payload: masked crc32c of (length, payload), length. */
export function frameEdit(payload: Uint8Array): Uint8Array {
  if (payload.length > MANIFEST_EDIT_BYTES_MAX) {
    throw new RangeError(
      `Version edit is ${payload.length} bytes; the limit is ${MANIFEST_EDIT_BYTES_MAX} (MANIFEST_EDIT_BYTES_MAX)`,
    );
  }
  const out = new Uint8Array(MANIFEST_HEADER_BYTES + payload.length);
  putFixed32(out, 4, payload.length);
  out.set(payload, MANIFEST_HEADER_BYTES);
  putFixed32(out, 0, maskCrc(crc32c(out, 4)));
  return out;
}

/** What reading a manifest found. */
export interface ManifestRead {
  state: ManifestState;
  /** Bytes of committed edits (the manifest is cut to this). */
  validBytes: number;
  /** Bytes of a torn final frame that was cut off, if any. */
  tornBytes: number;
  edits: number;
}

/**
 * Reads manifest `name` whole and replays its edits. A torn final frame
 * (nothing valid after it) is reported in tornBytes; damage followed by a
 * valid frame, or an edit that does not decode or apply, is corruption.
 */
export async function readManifest(
  env: Env,
  dir: string,
  name: string,
): Promise<ManifestRead> {
  const path = joinPath(dir, name);
  if (!(await env.list(dir)).includes(name)) {
    throw new CorruptionError(
      `Manifest "${path}" named by CURRENT is missing`,
      path,
      0,
    );
  }
  const file = await env.openReadable(path);
  let bytes: Uint8Array;
  try {
    if (file.size > MANIFEST_BYTES_MAX) {
      throw new CorruptionError(
        `Manifest "${path}" is ${file.size} bytes, over the ${MANIFEST_BYTES_MAX} limit (MANIFEST_BYTES_MAX)`,
        path,
        0,
      );
    }
    bytes = new Uint8Array(file.size);
    if ((await file.read(0, bytes)) !== bytes.length) {
      throw new CorruptionError(`Short read of manifest "${path}"`, path, 0);
    }
  } finally {
    file.close();
  }
  const state = emptyState();
  let at = 0;
  let edits = 0;
  while (at < bytes.length) {
    const frame = frameAt(bytes, at);
    if (frame === undefined) {
      // Within a budget, as the WAL's search (see damageSearchBudget).
      const budget = { bytes: damageSearchBudget(bytes.length - at) };
      for (let later = at + 1; later < bytes.length; later++) {
        const found = frameAt(bytes, later, budget);
        if (found !== undefined || budget.bytes < 0) {
          throw new CorruptionError(
            `Corrupt manifest "${path}" at offset ${at}: bad frame, and ${
              found
                ? "valid edits follow"
                : "what follows is too much like edits to tell a torn write from damage"
            }`,
            path,
            at,
          );
        }
      }
      break;
    }
    applyEdit(
      state,
      decodeEdit(bytes.subarray(frame.start, frame.end), path, at),
      path,
      at,
    );
    edits++;
    at = frame.end;
  }
  if (edits === 0) {
    throw new CorruptionError(
      `Manifest "${path}" holds no valid edit`,
      path,
      0,
    );
  }
  return { state, validBytes: at, tornBytes: bytes.length - at, edits };
}

/** The frame at `at` if it is complete and its checksum verifies. */
function frameAt(
  bytes: Uint8Array,
  at: number,
  budget?: { bytes: number },
): { start: number; end: number } | undefined {
  if (bytes.length - at < MANIFEST_HEADER_BYTES) return undefined;
  const length = getFixed32(bytes, at + 4);
  if (length > MANIFEST_EDIT_BYTES_MAX) return undefined;
  const start = at + MANIFEST_HEADER_BYTES;
  const end = start + length;
  if (end > bytes.length || length === 0) return undefined;
  if (budget && (budget.bytes -= length + 4) < 0) return undefined;
  if (crc32c(bytes, at + 4, end) !== unmaskCrc(getFixed32(bytes, at))) {
    return undefined;
  }
  return { start, end };
}

/** The manifest named by CURRENT, or undefined when there is no CURRENT. */
export async function readCurrent(
  env: Env,
  dir: string,
): Promise<string | undefined> {
  const path = joinPath(dir, CURRENT_FILE_NAME);
  const names = await env.list(dir);
  if (!names.includes(CURRENT_FILE_NAME)) return undefined;
  const file = await env.openReadable(path);
  try {
    const n = Math.min(file.size, 256);
    const buf = new Uint8Array(n);
    await file.read(0, buf);
    const text = new TextDecoder().decode(buf);
    const m = /^(MANIFEST-\d{6,})\n$/.exec(text);
    if (!m) {
      throw new CorruptionError(
        `CURRENT file "${path}" does not name a manifest`,
        path,
        0,
      );
    }
    return m[1]!;
  } finally {
    file.close();
  }
}

/** Points CURRENT at manifest `name`: temp, fsync, rename, fsync dir. */
export async function writeCurrent(
  env: Env,
  dir: string,
  name: string,
): Promise<void> {
  const tmp = joinPath(dir, CURRENT_FILE_NAME + TEMP_SUFFIX);
  await removeLeftover(env, tmp);
  const file = await env.openWritable(tmp);
  try {
    file.append(new TextEncoder().encode(name + "\n"));
    await file.syncData();
  } finally {
    file.close();
  }
  await env.rename(tmp, joinPath(dir, CURRENT_FILE_NAME));
  await env.syncDir(dir);
}

/** Appends edits to the live manifest. */
export class ManifestWriter {
  #bytes: number;

  private constructor(
    readonly name: string,
    private readonly file: WritableFile,
    bytes: number,
    /** Bytes of the snapshot the manifest starts with (0: unknown). */
    readonly snapshotBytes: number,
  ) {
    this.#bytes = bytes;
  }

  /** Bytes in the manifest. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Starts manifest `fileNumber` holding one snapshot of `state`, makes it
   * durable, then points CURRENT at it.
   */
  static async create(
    env: Env,
    dir: string,
    fileNumber: number,
    state: ManifestState,
  ): Promise<ManifestWriter> {
    const name = manifestName(fileNumber);
    const path = joinPath(dir, name);
    // Made before the file, so that a snapshot too big leaves none behind.
    const frames = [
      ...snapshotEdits(state),
      snapshotEnd(state),
    ].map((e) => frameEdit(encodeEdit(e)));
    const bytes = frames.reduce((n, f) => n + f.length, 0);
    checkManifestBytes(bytes);
    await removeLeftover(env, path);
    const file = await env.openWritable(path);
    try {
      for (const frame of frames) file.append(frame);
      await file.syncData();
      await env.syncDir(dir);
      await writeCurrent(env, dir, name);
    } catch (error) {
      file.close();
      throw error;
    }
    return new ManifestWriter(name, file, bytes, bytes);
  }

  /** Reopens the live manifest for appending after recovery. */
  static async reopen(
    env: Env,
    dir: string,
    name: string,
    validBytes: number,
    tornBytes: number,
  ): Promise<ManifestWriter> {
    const path = joinPath(dir, name);
    if (tornBytes > 0) await env.truncate(path, validBytes);
    const file = await env.openWritable(path);
    return new ManifestWriter(name, file, validBytes, 0);
  }

  /**
   * Appends one edit and fsyncs it: the edit is committed on return. An
   * edit that would take the manifest past what a reader accepts is
   * refused, appending nothing.
   */
  async append(edit: VersionEdit): Promise<void> {
    const frame = frameEdit(encodeEdit(edit));
    checkManifestBytes(this.#bytes + frame.length);
    this.file.append(frame);
    await this.file.syncData();
    this.#bytes += frame.length;
  }

  /** Closes the file. */
  close(): void {
    this.file.close();
  }
}
