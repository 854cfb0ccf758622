/**
 * Writing sorted entries out as tables (flushes and merges), and deciding
 * when level 0 is merged. Picking is a pure function of the version;
 * doing is writeTables().
 */
import type { Env } from "./env.ts";
import { L0_MERGE_TRIGGER, TABLE_BYTES_TARGET } from "./limits.ts";
import type { SourceEntry } from "./merge.ts";
import {
  type TableMeta,
  type TableOptions,
  TableWriter,
} from "./sstable/mod.ts";

/** Entries a flush or merge writes between yields to the event loop. */
const YIELD_EVERY_ENTRIES = 2048;

/** Level-0 tables and level-1 tables, as counts and sizes. */
export interface LevelShape {
  l0Tables: number;
}

/**
 * Whether level 0 should be merged (with all of level 1) into level 1.
 * A simple full merge: level 0 stays short, so a read checks few tables.
 */
export function shouldMergeL0(
  shape: LevelShape,
  trigger = L0_MERGE_TRIGGER,
): boolean {
  return shape.l0Tables >= trigger;
}

/**
 * Writes `entries` (strictly increasing keys) into tables of about
 * TABLE_BYTES_TARGET each, numbered by `nextFile()`. With `dropTombstones`
 * (writing the bottom level) deletes are left out. Returns the tables'
 * metadata, in key order; none when nothing was written.
 */
export async function writeTables(
  env: Env,
  dir: string,
  entries: Iterator<SourceEntry>,
  nextFile: () => number,
  options: TableOptions,
  dropTombstones: boolean,
  yieldNow: () => Promise<void> = () => Promise.resolve(),
): Promise<TableMeta[]> {
  const out: TableMeta[] = [];
  let writer: TableWriter | undefined;
  let sinceYield = 0;
  try {
    for (let r = entries.next(); !r.done; r = entries.next()) {
      const e = r.value;
      // Let the event loop serve requests during a long flush or merge.
      if (++sinceYield === YIELD_EVERY_ENTRIES) {
        sinceYield = 0;
        await yieldNow();
      }
      if (dropTombstones && e.value === undefined) continue;
      if (!writer) {
        writer = await TableWriter.create(env, dir, nextFile(), options);
      }
      writer.add(e.key, e.seq, e.value, e.expiry);
      if (writer.estimatedBytes >= TABLE_BYTES_TARGET) {
        const w = writer;
        writer = undefined;
        out.push(await w.finish());
      }
    }
    if (writer) {
      const w = writer;
      writer = undefined;
      out.push(await w.finish());
    }
  } catch (error) {
    await writer?.abandon();
    throw error;
  }
  return out;
}
