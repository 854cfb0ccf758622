/**
 * `kv check`: verifies a closed data directory without changing it — every
 * checksum of the manifest, every table block and every live WAL record;
 * that each table the manifest names exists with its recorded size and
 * holds what its properties and the manifest say; that deeper levels do
 * not overlap; and that WAL sequence numbers follow the manifest's.
 */
import { type Env, joinPath, type ReadableFile } from "./env.ts";
import { CorruptionError, LockedError } from "./errors.ts";
import { LOCK_FILE_NAME, MANIFEST_FILE, NUMBERED_FILE } from "./format.ts";
import { firstOverlap, readCurrent, readManifest } from "./manifest.ts";
import { listSegments, missingLogSegments } from "./recovery.ts";
import {
  BlockCache,
  propsMatchRecord,
  type TableMeta,
  tableName,
  TableReader,
} from "./sstable/mod.ts";
import { decodePayload, SegmentReader } from "./wal.ts";

/** What a check found. */
export interface CheckReport {
  /** Damage or inconsistency: the directory would not open, or lie. */
  problems: string[];
  /** Worth knowing, not damage (a torn WAL tail, stray files). */
  notes: string[];
  manifest: string | undefined;
  tables: number;
  tableEntries: number;
  blocks: number;
  walSegments: number;
  walRecords: number;
  /**
   * Torn tails noted (a manifest's last edit, a log's last records): they
   * fail their checksums but were never acknowledged, and open cuts them.
   */
  tornTails: number;
}

/** Whether `name` is a file only a kv data directory holds. */
export function isStoreFile(name: string): boolean {
  if (name === "CURRENT" || MANIFEST_FILE.test(name)) return true;
  const m = NUMBERED_FILE.exec(name);
  return m !== null && m[3] === undefined;
}

/**
 * Checks the data directory `dir`; takes its lock while it reads. An empty
 * directory is reported as holding no store yet; one holding files but none
 * of a store's is an error. Neither gets a LOCK file.
 */
export async function checkStore(env: Env, dir: string): Promise<CheckReport> {
  let names: string[];
  try {
    names = await env.list(dir);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") {
      throw new Error(`data directory "${dir}" does not exist`);
    }
    throw new Error(`data directory "${dir}": ${describe(error)}`);
  }
  if (names.length === 0) {
    // What a crash before a new store's first file leaves: nothing to check.
    const report = emptyReport();
    report.notes.push("empty directory: no store yet");
    return report;
  }
  if (!names.some((n) => n === LOCK_FILE_NAME || isStoreFile(n))) {
    throw new Error(
      `"${dir}" is not a kv data directory (no CURRENT, manifest, log or table file)`,
    );
  }
  const lock = await env.tryLock(joinPath(dir, LOCK_FILE_NAME));
  if (!lock) {
    throw new LockedError(
      `data directory "${dir}" is in use by another process`,
    );
  }
  try {
    return await check(env, dir, names);
  } finally {
    lock.release();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A report of nothing checked yet. */
function emptyReport(): CheckReport {
  return {
    problems: [],
    notes: [],
    manifest: undefined,
    tables: 0,
    tableEntries: 0,
    blocks: 0,
    walSegments: 0,
    walRecords: 0,
    tornTails: 0,
  };
}

/** Checks `dir`, whose file names are `names`. */
async function check(
  env: Env,
  dir: string,
  names: string[],
): Promise<CheckReport> {
  const report = emptyReport();
  let current: string | undefined;
  try {
    current = await readCurrent(env, dir);
  } catch (error) {
    report.problems.push(describe(error));
    return report;
  }
  // undefined while the state is unknown (no readable manifest): then the
  // log's first sequence number is not checked, and no file is called
  // unneeded (an open refuses such a directory; it removes nothing).
  let lastSeq: number | undefined = 0;
  let logNumber = 0;
  let logs: readonly number[] = [];
  const named = new Set<string>();
  if (current === undefined) {
    if (names.some((n) => n.endsWith(".sst"))) {
      report.problems.push(`"${dir}" holds tables but no CURRENT file`);
      lastSeq = undefined;
    } else {
      report.notes.push("no manifest yet (a store that has never flushed)");
    }
  } else {
    report.manifest = current;
    named.add(current);
    try {
      const read = await readManifest(env, dir, current);
      if (read.tornBytes > 0) {
        report.tornTails++;
        report.notes.push(
          `${current}: torn final edit of ${read.tornBytes} bytes (never committed; ignored at open)`,
        );
      }
      lastSeq = read.state.lastSeq;
      logNumber = read.state.logNumber;
      logs = read.state.logs;
      for (let level = 0; level < read.state.levels.length; level++) {
        const metas = read.state.levels[level]!;
        for (const meta of metas) {
          named.add(tableName(meta.fileNumber));
          await checkTable(env, dir, level, meta, names, report);
        }
        const i = level > 0 ? firstOverlap(metas) : -1;
        if (i >= 0) {
          report.problems.push(
            `level ${level}: tables ${
              tableName(metas[i - 1]!.fileNumber)
            } and ${
              tableName(metas[i]!.fileNumber)
            } overlap (an open refuses the store)`,
          );
        }
      }
    } catch (error) {
      report.problems.push(describe(error));
      lastSeq = undefined;
    }
  }
  const stateKnown = lastSeq !== undefined;
  await checkWal(env, dir, names, { logNumber, logs }, lastSeq, named, report);
  for (const name of names) {
    if (
      stateKnown && isStoreFile(name) && name !== "CURRENT" && !named.has(name)
    ) {
      report.notes.push(
        `${name}: not needed by the manifest (removed at the next open)`,
      );
    } else if (
      name === "CURRENT.tmp" || NUMBERED_FILE.exec(name)?.[3] !== undefined
    ) {
      report.notes.push(
        `${name}: left by a write a crash interrupted (removed at the next open)`,
      );
    }
  }
  return report;
}

async function checkTable(
  env: Env,
  dir: string,
  level: number,
  meta: TableMeta,
  names: string[],
  report: CheckReport,
): Promise<void> {
  const name = tableName(meta.fileNumber);
  if (!names.includes(name)) {
    report.problems.push(
      `${name}: named by the manifest (level ${level}) but missing`,
    );
    return;
  }
  let table: TableReader | undefined;
  try {
    table = await TableReader.open(
      env,
      dir,
      meta.fileNumber,
      new BlockCache(0),
      {
        negatives: 0,
        falsePositives: 0,
      },
    );
    if (table.size !== meta.size) {
      report.problems.push(
        `${name}: ${table.size} bytes, the manifest recorded ${meta.size}`,
      );
    }
    const p = table.props;
    if (!propsMatchRecord(p, meta)) {
      report.problems.push(
        `${name}: not the table the manifest recorded: its properties (entries, tombstones, sequence numbers, key range) differ (an open refuses the store)`,
      );
    }
    let entries = 0;
    let tombstones = 0;
    let last: string | undefined;
    for (const block of table.scanBlocks()) {
      report.blocks++;
      for (let i = 0; i < block.keys.length; i++) {
        const key = block.keys[i]!;
        const seq = block.seqs[i]!;
        if (last !== undefined && key <= last) {
          report.problems.push(`${name}: keys out of order across blocks`);
        }
        if (key < p.smallest || key > p.largest) {
          report.problems.push(
            `${name}: a key outside the table's recorded range`,
          );
        }
        if (seq < p.minSeq || seq > p.maxSeq) {
          report.problems.push(
            `${name}: sequence number ${seq} outside ${p.minSeq}..${p.maxSeq}`,
          );
        }
        if (block.values[i] === undefined) tombstones++;
        entries++;
        last = key;
      }
    }
    if (entries !== p.entries || tombstones !== p.tombstones) {
      report.problems.push(
        `${name}: holds ${entries} entries (${tombstones} deletes), its properties say ${p.entries} (${p.tombstones})`,
      );
    }
    report.tables++;
    report.tableEntries += entries;
  } catch (error) {
    report.problems.push(
      error instanceof CorruptionError
        ? error.message
        : `${name}: ${describe(error)}`,
    );
  } finally {
    table?.close();
  }
}

async function checkWal(
  env: Env,
  dir: string,
  names: string[],
  needs: { logNumber: number; logs: readonly number[] },
  lastSeq: number | undefined,
  named: Set<string>,
  report: CheckReport,
): Promise<void> {
  const live = listSegments(names).filter((s) => s.number >= needs.logNumber);
  // The last sequence number before the next record, when known: not after
  // a damaged segment (whose later records are not read), so that the
  // segment after it is not blamed for the damage again.
  let seq = lastSeq;
  const missing = lastSeq === undefined ? [] : missingLogSegments(names, needs);
  for (const name of missing) {
    report.problems.push(
      `${name}: missing, and the manifest needs it for writes that are in no table (an open refuses the store; --repair opens it without them)`,
    );
    // The next segment's first sequence number follows a gap: not blamed.
    seq = undefined;
  }
  for (let i = 0; i < live.length; i++) {
    const { name } = live[i]!;
    named.add(name);
    report.walSegments++;
    const path = joinPath(dir, name);
    let file: ReadableFile;
    try {
      file = await env.openReadable(path);
    } catch (error) {
      // Unreadable (a directory by that name, say): open fails on it too.
      report.problems.push(`${name}: ${(error as Error).message}`);
      seq = undefined;
      continue;
    }
    try {
      const reader = new SegmentReader(file);
      for (;;) {
        const r = await reader.next();
        if (r.kind === "end") break;
        if (r.kind === "damaged") {
          // Recovery's rule: a torn tail only in the last segment (a
          // segment is made once the one before it is synced whole), and
          // only when no valid record follows it.
          const later = live[i + 1]?.name;
          const after = later === undefined
            ? await reader.recordAfterDamage(r.offset)
            : undefined;
          if (later === undefined && after === undefined) {
            report.tornTails++;
            report.notes.push(
              `${name}: torn tail of ${
                file.size - r.offset
              } bytes at offset ${r.offset} (${r.reason}; cut at the next open)`,
            );
            return;
          }
          report.problems.push(
            later !== undefined
              ? `${name}: ${r.reason} at offset ${r.offset}, and a later segment (${later}) exists, so this one was synced whole: not a torn write`
              : after === -1
              ? `${name}: ${r.reason} at offset ${r.offset}, and the data after it is too much like records to rule out valid ones`
              : `${name}: ${r.reason} at offset ${r.offset}, with valid records after it`,
          );
          seq = undefined;
          break;
        }
        const record = decodePayload(r.type, r.payload);
        if (typeof record === "string") {
          report.problems.push(
            `${name}: record at offset ${r.offset} does not decode: ${record}`,
          );
          seq = undefined;
          break;
        }
        if (seq !== undefined && record.seq !== seq + 1) {
          report.problems.push(
            `${name}: sequence number ${record.seq} at offset ${r.offset} does not follow ${seq}`,
          );
          seq = undefined;
          break;
        }
        seq = record.seq + record.ops.length - 1;
        report.walRecords++;
      }
    } finally {
      file.close();
    }
  }
}
