/**
 * Opening a store: take the lock, read the manifest named by CURRENT, open
 * and verify its tables, replay the live WAL segments into a memtable,
 * start a fresh manifest, and remove files nothing needs.
 */
import { type Env, joinPath, parentDir, type WritableFile } from "./env.ts";
import { denoEnv } from "./env_deno.ts";
import { CorruptionError, LockedError } from "./errors.ts";
import {
  LOCK_FILE_NAME,
  MANIFEST_FILE,
  NUMBERED_FILE as NUMBERED,
  SSTABLE_SUFFIX,
} from "./format.ts";
import {
  BLOCK_BYTES_DEFAULT,
  BLOCK_CACHE_BYTES_DEFAULT,
  BLOOM_BITS_PER_KEY_DEFAULT,
  IDLE_MERGE_MS_DEFAULT,
  L0_MERGE_TRIGGER,
  L1_BYTES_DEFAULT,
  MANIFEST_BYTES_MAX,
  MANIFEST_ROTATE_BYTES,
  MEMTABLE_BYTES_DEFAULT,
  MEMTABLE_BYTES_MAX,
  MEMTABLE_BYTES_MIN,
  TABLE_BYTES_TARGET,
} from "./limits.ts";
import { SYNC_MODES, type SyncMode } from "./log_writer.ts";
import {
  emptyState,
  firstOverlap,
  type ManifestState,
  ManifestWriter,
  readCurrent,
  readManifest,
} from "./manifest.ts";
import { Memtable } from "./memtable.ts";
import {
  listSegments,
  missingLogSegments,
  moveToLost,
  recoverWal,
  segmentName,
} from "./recovery.ts";
import {
  BlockCache,
  type FilterStats,
  openTables,
  propsMatchRecord,
  type TableMeta,
  tableName,
  type TableReader,
  UNKNOWN_TABLE_VERSION,
} from "./sstable/mod.ts";
import { InlineRunner } from "./jobs.ts";
import { Store } from "./store.ts";
import { WorkerRunner } from "./worker_runner.ts";

/** Options of {@linkcode openStore}. */
export interface StoreOptions {
  /** When writes are acknowledged; default "always" (fsync before ack). */
  sync?: SyncMode;
  /** Keep the valid prefix of a corrupt log instead of refusing to open. */
  repair?: boolean;
  /** Filesystem and clock; default the real ones. */
  env?: Env;
  /** Memtable size that triggers a flush; default 4 MiB. */
  memtableBytes?: number;
  /** Target data block size of new tables; default 4096. */
  blockBytes?: number;
  /** Bloom filter bits per key in new tables (0 = none); default 10. */
  bloomBitsPerKey?: number;
  /** Block cache capacity; default 64 MiB. */
  blockCacheBytes?: number;
  /** Level-0 tables that trigger a merge into level 1; default 8. */
  l0MergeTrigger?: number;
  /**
   * Milliseconds without a write after which level 0, holding two or more
   * tables but fewer than `l0MergeTrigger`, is merged down anyway (0:
   * never); default 1000.
   */
  idleMergeMs?: number;
  /**
   * Level 1's size target, past which its tables are merged down into
   * level 2; each deeper level's target is 10 times the one above. Default
   * 64 MiB.
   */
  l1Bytes?: number;
  /** Size at which flushes and merges cut a new table; default 2 MiB. */
  tableBytes?: number;
  /**
   * Manifest size at which a fresh one (a snapshot) replaces it; default
   * 4 MiB. Small values make tests exercise manifest rotation.
   */
  manifestRotateBytes?: number;
  /**
   * Where flushes and merges run: "worker" (worker threads, using the
   * machine's other cores; the default with the real filesystem) or
   * "inline" (on the store's own thread; the only choice with another Env).
   */
  background?: "worker" | "inline";
}

function checkInt(
  name: string,
  value: number,
  min: number,
  max: number,
): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${name} must be an integer from ${min} to ${max}, got ${
        // A string "4096" printed bare read as a valid number refused.
        typeof value === "string" ? JSON.stringify(value) : String(value)}`,
    );
  }
  return value;
}

/**
 * The lock files this process holds, per Env, so that a second open of a
 * directory from the same process is told so rather than blamed on
 * another process (for the same spelling of the path).
 */
const heldLocks = new WeakMap<Env, Set<string>>();

/**
 * The options openStore knows: any other is a mistake (a misspelling). A
 * record of every key, so that the compiler keeps it complete.
 */
const OPTION_NAMES: Readonly<Record<keyof StoreOptions, true>> = {
  sync: true,
  repair: true,
  env: true,
  memtableBytes: true,
  blockBytes: true,
  bloomBitsPerKey: true,
  blockCacheBytes: true,
  l0MergeTrigger: true,
  idleMergeMs: true,
  l1Bytes: true,
  tableBytes: true,
  manifestRotateBytes: true,
  background: true,
};

/** Throws a TypeError for options that are not an object of known names. */
function checkOptions(options: StoreOptions): void {
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw new TypeError("Store options must be an object");
  }
  for (const name of Object.keys(options)) {
    if (!Object.hasOwn(OPTION_NAMES, name)) {
      throw new TypeError(
        `Unknown store option "${name}"; known: ${
          Object.keys(OPTION_NAMES).join(", ")
        }`,
      );
    }
  }
  if (options.repair !== undefined && typeof options.repair !== "boolean") {
    throw new TypeError("Store option repair must be true or false");
  }
}

/**
 * A table that fails to open (its footer, index, filter or properties
 * damaged) keeps the store from opening: `error` with what to do about it.
 */
function tableAdvice(error: CorruptionError): CorruptionError {
  return new CorruptionError(
    `${error.message}. The store cannot open without this table: restore the file from a backup if there is one ("kv check" lists every damaged file; --repair mends logs and manifests, not tables)`,
    error.file,
    error.offset,
  );
}

/**
 * Opens (creating if needed) the store in `dir`: takes its lock, reads its
 * manifest and tables, and replays its write-ahead log.
 *
 * @example
 * ```ts
 * const store = await openStore("./data");
 * await store.put("greeting", "hello");
 * new TextDecoder().decode(await store.get("greeting")); // "hello"
 * await store.close();
 * ```
 */
export async function openStore(
  dir: string,
  options: StoreOptions = {},
): Promise<Store> {
  if (typeof dir !== "string" || dir === "") {
    throw new TypeError(
      `openStore needs the data directory's path, got ${
        typeof dir === "string" ? "an empty string" : typeof dir
      }`,
    );
  }
  checkOptions(options);
  const env = options.env ?? denoEnv;
  const background = options.background ??
    (env === denoEnv ? "worker" : "inline");
  if (background !== "worker" && background !== "inline") {
    throw new TypeError(
      `Unknown background mode "${background}": use worker or inline`,
    );
  }
  if (background === "worker" && env !== denoEnv) {
    throw new TypeError(
      'background "worker" needs the real filesystem: use "inline" with a custom env',
    );
  }
  const mode = options.sync ?? "always";
  if (!SYNC_MODES.includes(mode)) {
    throw new TypeError(
      `Unknown sync mode "${mode}": use ${SYNC_MODES.join(", ")}`,
    );
  }
  const memtableBytes = checkInt(
    "memtableBytes",
    options.memtableBytes ?? MEMTABLE_BYTES_DEFAULT,
    MEMTABLE_BYTES_MIN,
    MEMTABLE_BYTES_MAX,
  );
  const blockBytes = checkInt(
    "blockBytes",
    options.blockBytes ?? BLOCK_BYTES_DEFAULT,
    64,
    1024 * 1024,
  );
  const bloomBitsPerKey = checkInt(
    "bloomBitsPerKey",
    options.bloomBitsPerKey ?? BLOOM_BITS_PER_KEY_DEFAULT,
    0,
    40,
  );
  const cacheBytes = checkInt(
    "blockCacheBytes",
    options.blockCacheBytes ?? BLOCK_CACHE_BYTES_DEFAULT,
    0,
    16 * 1024 * 1024 * 1024,
  );
  const manifestRotateBytes = checkInt(
    "manifestRotateBytes",
    options.manifestRotateBytes ?? MANIFEST_ROTATE_BYTES,
    64,
    MANIFEST_BYTES_MAX / 2,
  );
  const l0MergeTrigger = checkInt(
    "l0MergeTrigger",
    options.l0MergeTrigger ?? L0_MERGE_TRIGGER,
    2,
    1000,
  );
  const idleMergeMs = checkInt(
    "idleMergeMs",
    options.idleMergeMs ?? IDLE_MERGE_MS_DEFAULT,
    0,
    24 * 60 * 60 * 1000,
  );
  const l1Bytes = checkInt(
    "l1Bytes",
    options.l1Bytes ?? L1_BYTES_DEFAULT,
    1024,
    64 * 1024 * 1024 * 1024,
  );
  const tableBytes = checkInt(
    "tableBytes",
    options.tableBytes ?? TABLE_BYTES_TARGET,
    1024,
    1024 * 1024 * 1024,
  );
  // The directories this open creates: their entries in their parents are
  // made durable before the store acknowledges any write (a power cut could
  // otherwise lose a new store's whole directory, and every write in it).
  const created: string[] = [];
  for (let d = dir;;) {
    if (await env.list(d).then(() => true, () => false)) break;
    created.push(d);
    const parent = parentDir(d);
    if (parent === d) break;
    d = parent;
  }
  try {
    await env.mkdirAll(dir);
  } catch (error) {
    // Deno's own message names mkdir and an errno, not what is wrong.
    const name = (error as Error).name;
    if (name === "AlreadyExists" || name === "NotADirectory") {
      throw new Error(
        name === "AlreadyExists"
          ? `Cannot open a store in "${dir}": it exists and is not a directory (a file, or a symbolic link to nothing)`
          : `Cannot open a store in "${dir}": a file stands where a directory on its path should be`,
        { cause: error },
      );
    }
    throw error;
  }
  for (const d of created.reverse()) {
    const parent = parentDir(d);
    if (parent !== d) await env.syncDir(parent);
  }
  const lockPath = joinPath(dir, LOCK_FILE_NAME);
  const taken = await env.tryLock(lockPath);
  let held = heldLocks.get(env);
  if (!taken) {
    throw new LockedError(
      held?.has(lockPath)
        ? `data directory "${dir}" is already open in this process`
        : `data directory "${dir}" is in use by another process`,
    );
  }
  if (!held) heldLocks.set(env, held = new Set());
  held.add(lockPath);
  const heldHere = held;
  const lock = {
    release() {
      heldHere.delete(lockPath);
      taken.release();
    },
  };
  const opened: TableReader[] = [];
  let file: WritableFile | undefined;
  try {
    const started = env.now();
    const names = await env.list(dir);
    const current = await readCurrent(env, dir);
    // A manifest without CURRENT is a crash while the first one was being
    // installed (nothing was flushed yet): open as new, replaying the log.
    // Tables without CURRENT are not: treating that as a new store would
    // delete every table as unused.
    if (!current && names.some((n) => n.endsWith(".sst"))) {
      const path = joinPath(dir, "CURRENT");
      throw new CorruptionError(
        `Cannot open "${dir}": CURRENT is missing but the directory holds tables; ` +
          `restore CURRENT (a line naming the newest MANIFEST-NNNNNN) to open it`,
        path,
        0,
      );
    }
    const manifestRead = current
      ? await readManifest(env, dir, current)
      : undefined;
    const state: ManifestState = manifestRead?.state ?? emptyState();
    // A manifest whose last edit failed its checksum was read as if that
    // edit were a torn write. If the state before it does not fit the
    // directory (a missing table, a WAL that does not follow), the edit was
    // committed and then damaged: say so, naming the manifest.
    const blameManifest = (
      error: unknown,
      logDoesNotFollow: boolean,
    ): unknown => {
      if (
        !(error instanceof CorruptionError) || !manifestRead ||
        manifestRead.tornBytes === 0
      ) {
        return error;
      }
      const path = joinPath(dir, current!);
      // The log's own advice (keep its records before the damage) would
      // misdescribe what --repair does here: the log is whole. Repair helps
      // only when the log is what does not follow: it cannot bring back a
      // table the lost edit's merge deleted.
      const why = error.message.replace(/\s*Run with --repair.*$/, "");
      return new CorruptionError(
        `Corrupt manifest "${path}": its last edit (at offset ${manifestRead.validBytes}) ` +
          `fails its checksum, and the state before it does not match the directory (${why}). ` +
          (logDoesNotFollow
            ? "--repair opens the state before that edit and moves the tables and log records " +
              "written after it to lost/"
            : "--repair cannot open it: the state before that edit names tables no longer there"),
        path,
        manifestRead.validBytes,
      );
    };
    // Never reuse a file number, even one a crash left unrecorded.
    let maxNumber = 0;
    for (const name of names) {
      const m = NUMBERED.exec(name) ?? MANIFEST_FILE.exec(name);
      if (m) maxNumber = Math.max(maxNumber, Number(m[1]));
    }
    state.nextFile = Math.max(state.nextFile, maxNumber + 1);
    const cache = new BlockCache(cacheBytes);
    const filterStats: FilterStats = { negatives: 0, falsePositives: 0 };
    const tables: TableReader[][] = state.levels.map(() => []);
    const wanted: Array<{ level: number; meta: TableMeta }> = [];
    for (let level = 0; level < state.levels.length; level++) {
      const metas = state.levels[level]!;
      const i = level > 0 ? firstOverlap(metas) : -1;
      if (i >= 0) {
        const path = joinPath(dir, current!);
        throw new CorruptionError(
          `Inconsistent manifest "${path}": level ${level} tables ${
            tableName(metas[i - 1]!.fileNumber)
          } and ${tableName(metas[i]!.fileNumber)} overlap`,
          path,
          0,
        );
      }
      for (const meta of metas) wanted.push({ level, meta });
    }
    // Side by side (openTables): a store of 550 tables took half as long
    // again to open one table after another. Only the tables listed before
    // the first missing one open: the first that fails to open, or else the
    // missing one, is the error, in the manifest's order.
    const missing = wanted.findIndex(({ meta }) =>
      !names.includes(tableName(meta.fileNumber))
    );
    const listed = missing < 0 ? wanted : wanted.slice(0, missing);
    const readers = await openTables(
      env,
      dir,
      listed.map(({ meta }) => meta.fileNumber),
      cache,
      filterStats,
    ).catch((error) => {
      // A table of an unknown format version is not damaged: a newer kv
      // wrote it, and its message says so.
      throw error instanceof CorruptionError &&
          !error.message.includes(UNKNOWN_TABLE_VERSION)
        ? tableAdvice(error)
        : error;
    });
    opened.push(...readers);
    if (missing >= 0) {
      const path = joinPath(dir, tableName(wanted[missing]!.meta.fileNumber));
      throw blameManifest(
        new CorruptionError(
          `Table "${path}" named by manifest "${current}" is missing`,
          path,
          0,
        ),
        false,
      );
    }
    for (const [i, { level, meta }] of wanted.entries()) {
      const reader = readers[i]!;
      if (reader.size !== meta.size) {
        const path = joinPath(dir, tableName(meta.fileNumber));
        throw new CorruptionError(
          `Table "${path}" is ${reader.size} bytes; manifest "${current}" recorded ${meta.size}`,
          path,
          0,
        );
      }
      // The properties block is read anyway: checked against the record.
      if (!propsMatchRecord(reader.props, meta)) {
        const path = joinPath(dir, tableName(meta.fileNumber));
        throw new CorruptionError(
          `Table "${path}" is not the table manifest "${current}" recorded: its properties (entries, tombstones, sequence numbers, key range) differ`,
          path,
          0,
        );
      }
      tables[level]!.push(reader);
    }
    const mem = new Memtable();
    const live = names.filter((n) => {
      const s = listSegments([n])[0];
      return s !== undefined && s.number >= state.logNumber;
    });
    const lostSegments = missingLogSegments(names, state);
    if (lostSegments.length > 0 && !options.repair) {
      // After a damaged last manifest edit, the segments its flush covered
      // (then deleted) are what the state before it needs: the manifest is
      // blamed.
      const path = joinPath(dir, lostSegments[0]!);
      const more = lostSegments.length > 1
        ? ` (and ${lostSegments.slice(1).join(", ")})`
        : "";
      throw blameManifest(
        new CorruptionError(
          `WAL segment "${path}"${more} is missing: manifest "${current}" needs it for writes that are in no table. Run with --repair to open the store without them (they are lost)`,
          path,
          0,
        ),
        true,
      );
    }
    const { report, segments } = await recoverWal(
      env,
      dir,
      live,
      options.repair ?? false,
      state.lastSeq,
      (record) => {
        let seq = record.seq;
        for (const op of record.ops) {
          mem.apply(seq++, op.key, op.value, op.expiry);
        }
      },
    ).catch((error) => {
      throw blameManifest(error, true);
    });
    report.missingSegments.push(...lostSegments);
    let last = segments.at(-1);
    if (!last) {
      const number = state.nextFile++;
      last = { number, name: segmentName(number), size: 0 };
    }
    // No segment before the first one left is needed (nor on disk): the
    // new manifest says so, so that the next open does not look for one
    // that --repair did without, nor one a new store never had.
    state.logNumber = (segments[0] ?? last).number;
    // And the segments it needs are those left, and the one appended to.
    state.logs = segments.map((s) => s.number);
    if (state.logs.at(-1) !== last.number) state.logs.push(last.number);
    // The segments replayed may hold bytes a process before this one wrote
    // and never fsynced (it was killed, or failed, before its fsync): the
    // writes that follow, and the next segment, must not become durable
    // before them. (A freeze before any append to the inherited segment
    // closed it without an fsync; a power cut then tore a segment that a
    // later one followed, which open refuses as damage, and --repair set
    // the later segment, with acknowledged writes, aside.)
    for (const s of segments) {
      if (s.number === last.number) continue;
      const older = await env.openWritable(joinPath(dir, s.name));
      try {
        await older.syncData();
      } finally {
        older.close();
      }
    }
    file = await env.openWritable(joinPath(dir, last.name));
    // (A segment made just now holds nothing to sync.)
    if (segments.length > 0) await file.syncData();
    const manifest = await ManifestWriter.create(
      env,
      dir,
      state.nextFile++,
      state,
    );
    // The new manifest is durable and CURRENT names it: clear out the rest.
    const keep = new Set<string>([manifest.name, "CURRENT", LOCK_FILE_NAME]);
    for (const level of state.levels) {
      for (const t of level) keep.add(tableName(t.fileNumber));
    }
    for (const s of segments) keep.add(s.name);
    keep.add(last.name);
    let movedToLost = false;
    for (const name of names) {
      const obsolete = (NUMBERED.test(name) || MANIFEST_FILE.test(name) ||
        name === "CURRENT.tmp") &&
        !keep.has(name);
      if (!obsolete) continue;
      if (options.repair && name.endsWith(SSTABLE_SUFFIX)) {
        // A complete table no manifest names: under repair, kept in lost/
        // rather than deleted. A manifest whose last edit was damaged (and
        // read as a torn write) no longer names the table a flush wrote,
        // and the repair of the log that flush covered then dropped the
        // only other copy of its data.
        const file = await env.openReadable(joinPath(dir, name));
        const bytes = file.size;
        file.close();
        await moveToLost(env, dir, name);
        movedToLost = true;
        report.repaired.push({
          file: name,
          offset: 0,
          bytes,
          reason:
            "a table no manifest names, moved to lost/: the keys it held read as they were before it",
        });
        continue;
      }
      // Only what is gone is reported: a segment recovery moved to lost/
      // is not, nor a directory named like a table (which stays).
      const removed = await env.remove(joinPath(dir, name)).then(
        () => true,
        () => false,
      );
      if (removed) report.removedFiles.push(name);
    }
    if (movedToLost) await env.syncDir(joinPath(dir, "lost"));
    await env.syncDir(dir);
    report.manifest = current;
    report.tables = opened.length;
    report.durationMs = env.now() - started;
    return new Store({
      env,
      dir,
      lock,
      mode,
      memtableBytes,
      compaction: { l0Trigger: l0MergeTrigger, l1Bytes },
      idleMergeMs,
      manifestRotateBytes,
      tableOptions: { blockBytes, bloomBitsPerKey, tableBytes },
      cache,
      filterStats,
      state,
      manifest,
      tables,
      mem,
      segment: last.number,
      olderSegments: segments.filter((s) => s.number !== last.number).map((s) =>
        s.number
      ),
      segmentBytes: last.size,
      file,
      recovery: report,
      // Flushes and merges on the process's two background threads.
      runner: background === "worker"
        ? new WorkerRunner()
        : new InlineRunner(env),
    });
  } catch (error) {
    file?.close();
    for (const r of opened) r.close();
    lock.release();
    throw error;
  }
}
