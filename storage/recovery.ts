/**
 * Recovery: replays the WAL segments of a data directory, in order, into a
 * callback, and decides what to do with damage.
 *
 * - Damage after which no valid record follows (in that segment or a later
 *   one) is a torn tail from a crash mid-append: it was never acknowledged,
 *   so it is cut off and reported, a copy going to `lost/` (a bit flipped
 *   in the last record reads the same way) unless it is only zero-filled
 *   space.
 * - Damage with valid records after it, or a record whose checksum is good
 *   but whose contents are wrong or whose sequence number does not follow
 *   the previous one (or, first, the manifest's last sequence), is
 *   corruption: open
 *   fails with a CorruptionError naming the file and offset, unless `repair`
 *   is set, in which case the longest valid prefix is kept, the dropped
 *   bytes are copied to `lost/`, and the report says what went.
 */
import { type Env, joinPath, type ReadableFile } from "./env.ts";
import { CorruptionError } from "./errors.ts";
import { WAL_SEGMENT_SUFFIX } from "./format.ts";
import { decodePayload, SegmentReader, type WalRecord } from "./wal.ts";

/** One cut made by recovery. */
export interface RecoveryCut {
  file: string;
  offset: number;
  bytes: number;
  reason: string;
  /**
   * The name under `lost/` of a copy of the bytes cut (a torn tail's
   * other than zero-filled space, and what --repair drops).
   */
  lost?: string;
  /**
   * How many of the bytes cut the copy holds, from the first: a torn
   * tail's are copied up to the 4 KiB block of its last non-zero byte
   * (zeros after it are the log's preallocated space).
   */
  lostBytes?: number;
}

/** What the last open found and did. */
export interface RecoveryReport {
  /** WAL segments read (replayed, up to any damage). */
  segments: number;
  records: number;
  ops: number;
  lastSeq: number;
  /** Torn tails cut off (never acknowledged). */
  truncated: RecoveryCut[];
  /** Corrupt data dropped by --repair; copies are in `lost/`. */
  repaired: RecoveryCut[];
  /** Later segments removed because of a cut before them. */
  removedSegments: string[];
  /**
   * The segment the manifest needs that was missing, when --repair opened
   * the store without it (its writes are lost).
   */
  missingSegments: string[];
  /** The manifest the store opened from (none for a new store). */
  manifest: string | undefined;
  /** Tables the manifest named, all opened and verified. */
  tables: number;
  /** Files no manifest or log needed, removed at open. */
  removedFiles: string[];
  durationMs: number;
}

/** A WAL segment file of the data directory. */
export interface Segment {
  number: number;
  name: string;
  /** Size after recovery (valid bytes). */
  size: number;
}

const SEGMENT_NAME = /^(\d{6}|[1-9]\d{6,})\.log$/;

/** WAL segment file name for a segment number. */
export function segmentName(n: number): string {
  return String(n).padStart(6, "0") + WAL_SEGMENT_SUFFIX;
}

/** The segments among `names`, ascending by number. */
export function listSegments(names: string[]): Array<{
  number: number;
  name: string;
}> {
  const out: Array<{ number: number; name: string }> = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m) out.push({ number: Number(m[1]), name });
  }
  return out.sort((a, b) => a.number - b.number);
}

/**
 * The WAL segments the manifest's state needs that are not among `names`:
 * the one its `logNumber` says is the oldest still needed, and every one
 * it recorded the store making since (`logs`). The store creates a
 * segment, syncs its directory entry and records it (ADD_LOG) before any
 * write goes to it, and before any edit names it as the log number, so a
 * missing one was lost or deleted, with any writes it held that are in no
 * table: sequence numbers cannot show that when it was the last, or when
 * every segment after it is empty. A log number of 0 names none (a store
 * that has never flushed). In file-number order.
 */
export function missingLogSegments(
  names: string[],
  state: { logNumber: number; logs: readonly number[] },
): string[] {
  const present = new Set(listSegments(names).map((s) => s.number));
  const needed = new Set(state.logs.filter((n) => n >= state.logNumber));
  if (state.logNumber !== 0) needed.add(state.logNumber);
  return [...needed].filter((n) => !present.has(n)).sort((a, b) => a - b)
    .map(segmentName);
}

interface Damage {
  segment: number;
  offset: number;
  reason: string;
  /** Known to be corruption, not a torn tail. */
  certain: boolean;
  /**
   * Why it is corruption: a valid record follows, the record's contents,
   * or a later segment exists.
   */
  evidence: "follows" | "contents" | "undecided" | "later segment";
}

/**
 * Replays every segment into `apply`; returns the report and the surviving
 * segments. Throws CorruptionError on corruption unless `repair` is set.
 */
export async function recoverWal(
  env: Env,
  dir: string,
  names: string[],
  repair: boolean,
  startSeq: number,
  apply: (record: WalRecord) => void,
): Promise<{ report: RecoveryReport; segments: Segment[] }> {
  const started = env.now();
  const found = listSegments(names);
  const report: RecoveryReport = {
    segments: found.length,
    records: 0,
    ops: 0,
    lastSeq: startSeq,
    truncated: [],
    repaired: [],
    removedSegments: [],
    missingSegments: [],
    manifest: undefined,
    tables: 0,
    removedFiles: [],
    durationMs: 0,
  };
  const segments: Segment[] = [];
  let damage: Damage | undefined;
  for (let i = 0; i < found.length && !damage; i++) {
    const { number, name } = found[i]!;
    const file = await env.openReadable(joinPath(dir, name));
    try {
      const reader = new SegmentReader(file);
      let size = 0;
      for (;;) {
        const r = await reader.next();
        if (r.kind === "end") break;
        if (r.kind === "damaged") {
          damage = {
            segment: i,
            offset: r.offset,
            reason: r.reason,
            certain: false,
            evidence: "follows",
          };
          break;
        }
        const record = decodePayload(r.type, r.payload);
        let problem = typeof record === "string" ? record : undefined;
        if (typeof record !== "string" && record.seq !== report.lastSeq + 1) {
          problem =
            `sequence number ${record.seq} does not follow ${report.lastSeq}`;
        }
        if (problem !== undefined || typeof record === "string") {
          damage = {
            segment: i,
            offset: r.offset,
            reason: problem!,
            certain: true,
            evidence: "contents",
          };
          break;
        }
        apply(record);
        report.records++;
        report.ops += record.ops.length;
        report.lastSeq = record.seq + record.ops.length - 1;
        size = r.end;
      }
      segments.push({ number, name, size: damage ? damage.offset : size });
      if (damage && !damage.certain) {
        const after = await reader.recordAfterDamage(damage.offset);
        if (after !== undefined) damage.certain = true;
        if (after === -1) damage.evidence = "undecided";
      }
    } finally {
      file.close();
    }
  }
  if (damage) {
    if (!damage.certain && damage.segment < found.length - 1) {
      // A segment is made only once the one before it is synced whole (see
      // Store's freeze): a later one on disk, even empty, means this one
      // was complete, and its end damaged since. Cut as a torn tail, an
      // acknowledged write went without a word.
      damage.certain = true;
      damage.evidence = "later segment";
    }
    await cut(env, dir, found, damage, repair, report);
  }
  // Segments read: not those a repair set aside unread.
  report.segments = segments.length;
  report.durationMs = env.now() - started;
  return { report, segments };
}

/**
 * Moves file `name` of `dir` into `dir/lost/` as `name.<ms>` (so nothing
 * earlier is overwritten). The caller syncs both directories.
 */
export async function moveToLost(
  env: Env,
  dir: string,
  name: string,
): Promise<void> {
  await env.mkdirAll(joinPath(dir, "lost"));
  await env.rename(
    joinPath(dir, name),
    joinPath(joinPath(dir, "lost"), `${name}.${env.now()}`),
  );
}

/** Cuts the log at the damage: a torn tail, or corruption under repair. */
async function cut(
  env: Env,
  dir: string,
  found: Array<{ name: string }>,
  damage: Damage,
  repair: boolean,
  report: RecoveryReport,
): Promise<void> {
  const name = found[damage.segment]!.name;
  const path = joinPath(dir, name);
  if (damage.certain && !repair) {
    throw new CorruptionError(
      `Cannot open the write-ahead log "${path}": ${damage.reason} at offset ${damage.offset}` +
        (damage.evidence === "follows"
          ? ", and valid records follow, so this is not a torn write. "
          : damage.evidence === "undecided"
          ? ", and the data after it is too much like records to tell a torn write from damage. "
          : damage.evidence === "later segment"
          ? `, and a later segment (${
            found[damage.segment + 1]!.name
          }) exists, so this segment was synced whole before: not a torn write. `
          : " in a record whose checksum is valid. ") +
        "Run with --repair to keep the records before it (the rest is copied to lost/)",
      path,
      damage.offset,
    );
  }
  const later = found.slice(damage.segment + 1).map((s) => s.name);
  const file = await env.openReadable(path);
  const bytes = file.size - damage.offset;
  // Nothing is cut without a copy in lost/, durable before the cut: what
  // --repair drops, and a torn tail too (never acknowledged if it is one,
  // but a bit flipped in the last record reads the same way) up to its
  // last non-zero byte (the zeros of preallocated space after a crash are
  // left out; a tail of nothing else is not copied).
  let lost: string | undefined;
  let copied: number;
  try {
    copied = damage.certain
      ? bytes
      : await nonZeroExtent(file, damage.offset, bytes);
    try {
      if (copied > 0) {
        lost = `${name}.${damage.offset}.${env.now()}`;
        await copyToLost(env, dir, lost, file, damage.offset, copied);
      }
      for (const l of later) await moveToLost(env, dir, l);
      if (copied > 0 || later.length > 0) {
        await env.syncDir(joinPath(dir, "lost"));
        await env.syncDir(dir);
      }
    } catch (error) {
      const lostDir = joinPath(dir, "lost");
      throw new Error(
        `Cannot set aside in "${lostDir}" what recovery cuts from "${path}" at offset ${damage.offset} (${damage.reason}): ${
          (error as Error).message
        }. Nothing was cut: make "${lostDir}" a directory kv can write (move aside whatever is there) and open again`,
        { cause: error },
      );
    }
  } finally {
    file.close();
  }
  const copy = lost === undefined
    ? {}
    : copied < bytes
    ? { lost, lostBytes: copied }
    : { lost };
  if (damage.certain) {
    report.repaired.push({
      file: name,
      offset: damage.offset,
      bytes,
      reason: damage.reason,
      ...copy,
    });
  } else if (bytes > 0) {
    // A torn tail is the last segment's (see recoverWal): nothing after it.
    report.truncated.push({
      file: name,
      offset: damage.offset,
      bytes,
      reason: damage.reason,
      ...copy,
    });
  }
  report.removedSegments.push(...later);
  if (bytes > 0) await env.truncate(path, damage.offset);
  if (later.length > 0) await env.syncDir(dir);
}

/** Bytes a copy to lost/ reads at a time. */
const LOST_CHUNK_BYTES = 1 << 20;

/**
 * How many of `file`'s `n` bytes from `from` a torn tail's copy keeps: up
 * to the end of the 4 KiB block (counted from `from`) of the last non-zero
 * byte, or 0 when all are zeros. Read backwards a chunk at a time, so the
 * preallocated zeros at a segment's end cost one chunk.
 */
async function nonZeroExtent(
  file: ReadableFile,
  from: number,
  n: number,
): Promise<number> {
  const buf = new Uint8Array(Math.min(n, LOST_CHUNK_BYTES));
  for (let end = n; end > 0;) {
    const start = Math.max(0, end - buf.length);
    const chunk = buf.subarray(0, end - start);
    await file.read(from + start, chunk);
    for (let i = chunk.length - 1; i >= 0; i--) {
      if (chunk[i] !== 0) {
        return Math.min(n, Math.ceil((start + i + 1) / 4096) * 4096);
      }
    }
    end = start;
  }
  return 0;
}

/**
 * Copies `n` bytes of `file` from `from` to `lost/<name>` of `dir` (made if
 * missing), a chunk at a time, and syncs the copy. The caller syncs the
 * directories.
 */
async function copyToLost(
  env: Env,
  dir: string,
  name: string,
  file: ReadableFile,
  from: number,
  n: number,
): Promise<void> {
  await env.mkdirAll(joinPath(dir, "lost"));
  const out = await env.openWritable(joinPath(joinPath(dir, "lost"), name));
  try {
    const buf = new Uint8Array(Math.min(n, LOST_CHUNK_BYTES));
    for (let at = 0; at < n; at += buf.length) {
      const chunk = buf.subarray(0, Math.min(buf.length, n - at));
      await file.read(from + at, chunk);
      out.append(chunk); // synchronous: the chunk is free again after it
    }
    await out.syncData();
  } finally {
    out.close();
  }
}
