/**
 * kv's single-node storage engine. Other layers import only this file.
 *
 * @module
 */
export {
  type BatchOp,
  type Bytes,
  type Entry,
  type LevelStats,
  type Scan,
  type ScanOptions,
  type Snapshot,
  Store,
  type StoreStats,
} from "./store.ts";
export { openStore, type StoreOptions } from "./open.ts";
export {
  CorruptionError,
  LockedError,
  StoreClosedError,
  StoreFailedError,
} from "./errors.ts";
export {
  type Env,
  type FileLock,
  joinPath,
  type ReadableFile,
  type Timer,
  type WritableFile,
} from "./env.ts";
export { denoEnv } from "./env_deno.ts";
export { SYNC_MODES, type SyncMode } from "./log_writer.ts";
export { type RecoveryCut, type RecoveryReport } from "./recovery.ts";
export { ZERO_FILLED } from "./wal.ts";
export * as limits from "./limits.ts";
export { type CheckReport, checkStore } from "./check.ts";
