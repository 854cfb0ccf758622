/**
 * Writing sorted entries out as tables (flushes and merges), and deciding
 * what to merge next (leveled compaction, as in LevelDB). Picking is a pure
 * function of the tables' shapes; doing is writeTables().
 *
 * The tree: level 0 holds flushed tables, which may overlap (newest last);
 * each level from 1 holds tables sorted by key that do not overlap, and
 * has a size target LEVEL_SIZE_RATIO times the one above it. A merge takes
 * level 0 (when it holds `l0Trigger` tables) or one table of a level over
 * its target, with the tables of the next level that overlap it, and writes
 * the next level's replacement for them: so a merge rewrites a bounded
 * slice of the tree, not all of it.
 */
import type { Env } from "./env.ts";
import { LEVEL_SIZE_RATIO, TABLE_BYTES_TARGET } from "./limits.ts";
import type { TableSource } from "./merge.ts";
import {
  type TableMeta,
  type TableOptions,
  TableWriter,
} from "./sstable/mod.ts";

/** Entries a flush or merge writes between yields to the event loop. */
const YIELD_EVERY_ENTRIES = 2048;

/** What the picker needs to know of a table. */
export interface TableShape {
  fileNumber: number;
  smallest: string;
  largest: string;
  /** File size in bytes. */
  size: number;
}

/** When levels are merged. */
export interface CompactionPolicy {
  /** Level-0 tables that make level 0 due. */
  l0Trigger: number;
  /** Level 1's size target in bytes; each deeper one's is 10 times more. */
  l1Bytes: number;
}

/** One merge: tables of `level` and the overlapping ones of `level + 1`. */
export interface Compaction {
  level: number;
  /** Tables taken from `level` (all of level 0, or one table). */
  inputs: TableShape[];
  /** Tables of `level + 1` overlapping the inputs, in key order. */
  overlaps: TableShape[];
  /**
   * Nothing to rewrite: the inputs overlap nothing in `level + 1` (nor,
   * for level 0, each other), so they move down as they are.
   */
  move: boolean;
  /**
   * No deeper level holds a table overlapping the merged key range, so a
   * tombstone there hides nothing and can be left out.
   */
  dropTombstones: boolean;
}

/** Size target of `level` (1 or deeper). */
export function levelTargetBytes(level: number, l1Bytes: number): number {
  return l1Bytes * LEVEL_SIZE_RATIO ** (level - 1);
}

/**
 * How far each level is past its trigger (1 = due): level 0 by table
 * count, deeper levels by bytes against their targets. The last level has
 * nowhere to go and scores 0.
 */
export function levelScores(
  levels: ReadonlyArray<readonly TableShape[]>,
  policy: CompactionPolicy,
): number[] {
  return levels.map((tables, level) => {
    if (level === levels.length - 1) return 0;
    if (level === 0) return tables.length / policy.l0Trigger;
    let bytes = 0;
    for (const t of tables) bytes += t.size;
    return bytes / levelTargetBytes(level, policy.l1Bytes);
  });
}

function overlapping(
  tables: readonly TableShape[],
  lo: string,
  hi: string,
): TableShape[] {
  return tables.filter((t) => t.largest >= lo && t.smallest <= hi);
}

function rangeOf(tables: readonly TableShape[]): [string, string] {
  let lo = tables[0]!.smallest;
  let hi = tables[0]!.largest;
  for (const t of tables) {
    if (t.smallest < lo) lo = t.smallest;
    if (t.largest > hi) hi = t.largest;
  }
  return [lo, hi];
}

/** Whether no two of `tables` share a key. */
export function isDisjoint(tables: readonly TableShape[]): boolean {
  const sorted = [...tables].sort((a, b) => a.smallest < b.smallest ? -1 : 1);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.smallest <= sorted[i - 1]!.largest) return false;
  }
  return true;
}

/**
 * The next merge, or undefined when no level is due. The level furthest
 * past its trigger goes first (the shallower one on a tie). Level 0 at its
 * stop size scores 3 (L0_STOP_FACTOR), so it goes before any level less far
 * past its target; putting it first always starved the deeper levels when
 * writes outran merges (level 1 grew to eight times its target while
 * loading 10 million keys, and every level-0 merge rewrote all of it). From a level
 * of 1 or more it takes the first table starting after `pointers[level]`
 * (the largest key of that level's last merge), wrapping around, so that
 * merges rotate through the key space.
 */
export function pickCompaction(
  levels: ReadonlyArray<readonly TableShape[]>,
  policy: CompactionPolicy,
  pointers: ReadonlyArray<string | undefined> = [],
): Compaction | undefined {
  const scores = levelScores(levels, policy);
  let level = -1;
  for (let l = 0; l < scores.length; l++) {
    if (scores[l]! >= 1 && (level < 0 || scores[l]! > scores[level]!)) {
      level = l;
    }
  }
  if (level < 0) return undefined;
  const tables = levels[level]!;
  let inputs: TableShape[];
  if (level === 0) {
    inputs = [...tables];
  } else {
    const after = pointers[level];
    const next = after === undefined
      ? undefined
      : tables.find((t) => t.smallest > after);
    inputs = [next ?? tables[0]!];
  }
  const [lo, hi] = rangeOf(inputs);
  const overlaps = overlapping(levels[level + 1]!, lo, hi);
  const [allLo, allHi] = rangeOf([...inputs, ...overlaps]);
  const deeper = levels.slice(level + 2).some((l) =>
    overlapping(l, allLo, allHi).length > 0
  );
  return {
    level,
    inputs,
    overlaps,
    move: overlaps.length === 0 && (level > 0 || isDisjoint(inputs)),
    dropTombstones: !deeper,
  };
}

/**
 * Tables a job may have finishing (their fsync, rename and directory fsync
 * in flight) while it writes the next one.
 */
const FINISHING_MAX = 2;

/**
 * Writes `entries` (strictly increasing keys) into tables of about
 * `options.tableBytes` (default TABLE_BYTES_TARGET) each, numbered by
 * `nextFile()`. With `dropTombstones` (writing the bottom level) deletes are
 * left out. Returns the tables' metadata, in key order; none when nothing
 * was written. It returns (or throws) only once every table it started is
 * durable and in place, or abandoned.
 *
 * A full table's fsync runs while the next table is written: a job's thread
 * would otherwise sit idle for each table's fsync (2-3 ms per 2 MiB here).
 */
export async function writeTables(
  env: Env,
  dir: string,
  entries: TableSource,
  nextFile: () => number,
  options: TableOptions,
  dropTombstones: boolean,
  yieldNow: () => Promise<void> = () => Promise.resolve(),
): Promise<TableMeta[]> {
  const finishing: Promise<TableMeta>[] = [];
  const tableBytes = options.tableBytes ?? TABLE_BYTES_TARGET;
  let writer: TableWriter | undefined;
  let sinceYield = 0;
  const finish = async (w: TableWriter) => {
    if (finishing.length >= FINISHING_MAX) {
      try {
        await finishing[finishing.length - FINISHING_MAX];
      } catch (error) {
        // An earlier table failed: this one is given up, not left open.
        await w.abandon();
        throw error;
      }
    }
    const done = w.finish();
    // Seen now, so that a failure is not unhandled until it is awaited.
    done.catch(() => {});
    finishing.push(done);
  };
  try {
    const e = entries;
    while (e.next()) {
      // Let the event loop serve requests during a long flush or merge.
      if (++sinceYield === YIELD_EVERY_ENTRIES) {
        sinceYield = 0;
        await yieldNow();
      }
      if (dropTombstones && e.tombstone) continue;
      if (!writer) {
        writer = await TableWriter.create(env, dir, nextFile(), options);
      }
      e.addTo(writer);
      if (writer.estimatedBytes >= tableBytes) {
        const w = writer;
        writer = undefined;
        await finish(w);
      }
    }
    if (writer) {
      const w = writer;
      writer = undefined;
      await finish(w);
    }
    return await Promise.all(finishing);
  } catch (error) {
    await writer?.abandon();
    await Promise.allSettled(finishing);
    throw error;
  }
}
