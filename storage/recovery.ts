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
import { type Env, joinPath } from "./env.ts";
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
  const file = await env.openReadable(path);
  const bytes = file.size - damage.offset;
  // Nothing is cut without a copy in lost/: what --repair drops, and a torn
  // tail too (never acknowledged if it is one, but a bit flipped in the
  // last record reads the same way), unless it is all zeros (the space a
  // crash leaves after the last record).
  let dropped: Uint8Array | undefined;
  if (bytes > 0) {
    dropped = new Uint8Array(bytes);
    await file.read(damage.offset, dropped);
    if (!damage.certain && dropped.every((b) => b === 0)) dropped = undefined;
  }
  file.close();
  let lost: string | undefined;
  if (dropped) {
    lost = `${name}.${damage.offset}.${env.now()}`;
    await env.mkdirAll(joinPath(dir, "lost"));
    await writeLost(env, dir, lost, dropped);
  }
  const later = found.slice(damage.segment + 1).map((s) => s.name);
  if (damage.certain) {
    await env.mkdirAll(joinPath(dir, "lost"));
    for (const l of later) await moveToLost(env, dir, l);
    await env.syncDir(joinPath(dir, "lost"));
    await env.syncDir(dir);
    report.repaired.push({
      file: name,
      offset: damage.offset,
      bytes,
      reason: damage.reason,
      ...(lost === undefined ? {} : { lost }),
    });
  } else {
    // A torn tail is the last segment's (see recoverWal): nothing after it.
    if (lost !== undefined) {
      await env.syncDir(joinPath(dir, "lost"));
      await env.syncDir(dir);
    }
    if (bytes > 0) {
      report.truncated.push({
        file: name,
        offset: damage.offset,
        bytes,
        reason: damage.reason,
        ...(lost === undefined ? {} : { lost }),
      });
    }
  }
  report.removedSegments.push(...later);
  if (bytes > 0) await env.truncate(path, damage.offset);
  if (later.length > 0) await env.syncDir(dir);
}

async function writeLost(
  env: Env,
  dir: string,
  name: string,
  bytes: Uint8Array,
): Promise<void> {
  const file = await env.openWritable(joinPath(joinPath(dir, "lost"), name));
  try {
    file.append(bytes);
    await file.syncData();
  } finally {
    file.close();
  }
}
