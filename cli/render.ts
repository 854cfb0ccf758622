/**
 * Rendering of values, keys and statistics for the REPL and one-shot
 * commands. Pure functions.
 */
import {
  CorruptionError,
  type Store,
  type StoreStats,
  ZERO_FILLED,
} from "../storage/mod.ts";
import { USAGE } from "./command.ts";

// ignoreBOM: a leading U+FEFF is part of the bytes, not a marker to drop.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** True when text has a space, control character, quote or backslash. */
function needsQuotes(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x22 || c === 0x5c) return true;
  }
  return false;
}

/**
 * Bytes as text: UTF-8 as is when it is valid and has no space, control
 * character, quote or backslash, otherwise a double-quoted string that the
 * REPL parser reads back: printable characters of valid UTF-8 as they are,
 * escapes for quotes, backslashes, controls and (in invalid UTF-8) bytes
 * outside ASCII (\xHH).
 */
export function renderBytes(bytes: Uint8Array): string {
  let text: string | undefined;
  try {
    text = strict.decode(bytes);
  } catch {
    text = undefined;
  }
  if (text !== undefined && text.length > 0 && !needsQuotes(text)) return text;
  let out = '"';
  if (text !== undefined) {
    // Valid UTF-8: printable characters as they are (a value of Cyrillic
    // words keeps them), only quotes, backslashes and controls escaped.
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (
        (cp >= 0x20 && cp < 0x7f && cp !== 0x22 && cp !== 0x5c) || cp >= 0xa0
      ) {
        out += ch;
      } else {
        out += escapeBytes(encoder.encode(ch));
      }
    }
    return out + '"';
  }
  return out + escapeBytes(bytes) + '"';
}

const encoder = new TextEncoder();

/** Bytes inside a quoted string: ASCII as is, escapes for the rest. */
function escapeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += "\\\\";
    else if (b === 0x0a) out += "\\n";
    else if (b === 0x0d) out += "\\r";
    else if (b === 0x09) out += "\\t";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "\\x" + b.toString(16).padStart(2, "0");
  }
  return out;
}

/**
 * A value as the REPL prints it after GET: exactly as stored when it is
 * valid UTF-8 with no control character but tab, and does not start with
 * `"` or `Error:`; otherwise quoted with escapes. So a response is one
 * line, a stored `Error: key not found` cannot pass for a missing key, and
 * a value cannot send escape sequences to the terminal.
 */
export function renderValue(bytes: Uint8Array): string {
  let text: string | undefined;
  try {
    text = strict.decode(bytes);
  } catch {
    text = undefined;
  }
  if (
    text !== undefined &&
    // deno-lint-ignore no-control-regex
    !/[\x00-\x08\x0a-\x1f\x7f]/.test(text) &&
    !text.startsWith('"') && !text.startsWith("Error:")
  ) {
    return text;
  }
  return renderBytes(bytes);
}

/**
 * The STATS response: "Statistics:" then indented "name: value" lines.
 * `numKeys` is the exact count (the store's own figure is an estimate once
 * data is in tables).
 */
export function renderStats(
  stats: StoreStats,
  numKeys: number,
  exact = true,
  /** Why the count is not exact when counting failed. */
  countFailed?: string,
): string[] {
  const r = stats.recovery;
  const truncatedBytes = r.truncated.reduce((n, c) => n + c.bytes, 0);
  const repairedBytes = r.repaired.reduce((n, c) => n + c.bytes, 0);
  const lines: Array<[string, string | number]> = [
    ["num_keys", numKeys],
    [
      "num_keys_exact",
      exact
        ? "yes"
        : countFailed !== undefined
        ? `no (an upper bound: counting failed: ${countFailed})`
        : "no (an upper bound; COUNT gives the exact number)",
    ],
    ["last_sequence", stats.lastSequence],
    ["memtable_bytes", stats.memtableBytes],
    ["immutable_memtables", stats.immutableMemtables],
  ];
  stats.levels.forEach((l, i) => {
    if (l.tables > 0 || i < 2) {
      lines.push([`level${i}_tables`, l.tables], [`level${i}_bytes`, l.bytes]);
    }
  });
  lines.push(
    ["flushes", stats.flushes],
    ["write_stalls", stats.writeStalls],
    ["merges", stats.merges],
    ["moves", stats.moves],
    ["idle_merges", stats.idleMerges],
    ["wal_segments", stats.walSegments],
    ["wal_bytes", stats.walBytes],
    ["sync_mode", stats.syncMode],
    ["wal_records_written", stats.wal.records],
    ["wal_writes", stats.wal.writes],
    ["wal_syncs", stats.wal.syncs],
    ["group_commit_max", stats.wal.groupMax],
    ["block_cache_hits", stats.blockCache.hits],
    ["block_cache_misses", stats.blockCache.misses],
    ["block_cache_bytes", stats.blockCache.bytes],
    ["bloom_negatives", stats.bloom.negatives],
    ["bloom_false_positives", stats.bloom.falsePositives],
    ["state", stats.failure ? `read-only: ${stats.failure}` : "ok"],
    ["recovery_records", r.records],
    ["recovery_truncated_bytes", truncatedBytes],
    ["recovery_repaired_bytes", repairedBytes],
    ["recovery_ms", r.durationMs],
    ["recovery", describeRecovery(stats)],
  );
  return ["Statistics:", ...lines.map(([k, v]) => `  ${k}: ${v}`)];
}

/**
 * Largest store (by its own upper-bound estimate) whose STATS counts keys
 * exactly: counting is a merged scan of every table.
 */
export const STATS_EXACT_COUNT_MAX = 1_000_000;

/** The STATS lines for `store`: an exact key count when it is cheap enough. */
export async function statsLines(store: Store): Promise<string[]> {
  const estimate = store.stats();
  let exact = estimate.numKeysExact ||
    estimate.numKeys <= STATS_EXACT_COUNT_MAX;
  let n = estimate.numKeys;
  let failed: string | undefined;
  if (exact) {
    try {
      n = await store.count();
    } catch (error) {
      // One damaged block makes the count fail, not the rest of the
      // statistics (the recovery report among them): the estimate stands.
      if (!(error instanceof CorruptionError)) throw error;
      exact = false;
      failed = error.message;
    }
  }
  return renderStats(store.stats(), n, exact, failed);
}

/** One sentence on what the last open's recovery did. */
export function describeRecovery(stats: StoreStats): string {
  const r = stats.recovery;
  const parts = [
    r.manifest === undefined
      ? "new store (no manifest)"
      : `opened ${r.manifest} with ${r.tables} table(s)`,
    `replayed ${r.records} records (${r.ops} ops) from ${r.segments} WAL segment(s)`,
  ];
  for (const c of r.truncated) {
    const copy = c.lost === undefined
      ? ""
      : c.lostBytes === undefined
      ? `; copy in lost/${c.lost}`
      : `; its first ${c.lostBytes} bytes (the rest zeros) copied to lost/${c.lost}`;
    parts.push(
      c.reason === ZERO_FILLED && c.lost === undefined
        // What a crash, or a failed write or fsync (after which close cuts
        // nothing), leaves: the active segment's preallocated space.
        ? `cut ${c.bytes} bytes of zero-filled space after the last record of ${c.file} (the log's preallocated space, left by a crash or a failed write: the store did not close cleanly)`
        : `cut a torn tail of ${c.bytes} bytes at offset ${c.offset} of ${c.file} (${c.reason})${copy}`,
    );
  }
  for (const c of r.repaired) {
    parts.push(
      `repair dropped ${c.bytes} bytes at offset ${c.offset} of ${c.file} (${c.reason}); copy in lost/`,
    );
  }
  if (r.removedFiles.length > 0) {
    parts.push(`removed ${r.removedFiles.length} obsolete file(s)`);
  }
  if (r.removedSegments.length > 0) {
    parts.push(`set aside later segments ${r.removedSegments.join(", ")}`);
  }
  for (const s of r.missingSegments) {
    parts.push(
      `repair opened without missing WAL segment ${s} (writes it held that were in no table are lost)`,
    );
  }
  return parts.join("; ");
}

/** The HELP response. */
export function renderHelp(): string[] {
  return [
    "Commands (case-insensitive):",
    ...Object.values(USAGE).map((u) => `  ${u}`),
    'Keys with spaces or bytes: "a key", "\\x00\\xff"; the PUT value is the rest of the line.',
  ];
}
