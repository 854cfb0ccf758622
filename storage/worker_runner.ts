/**
 * Runs background jobs (storage/jobs.ts) in worker threads, so that the
 * CPU work of flushes and merges — encoding blocks, checksums, filters,
 * merging — happens on other cores than the store's reads and writes.
 *
 * Flushes and merges run on two threads (processFlushWorker and
 * processMergeWorker below), which every store's runner in the process
 * shares by default, as LevelDB's and RocksDB's default Env share their
 * background threads: a store opened after another finds them started
 * and their compiled code warm (a cold thread took 100-240 ms over its
 * first flushes). Jobs of different stores take turns on them. Apart, a flush does not wait for a merge's turns:
 * during a load of random keys the store's thread was idle half the time,
 * its writes stalled on flushes that shared one thread with the merges, and
 * a second thread made fills of a million random keys 1.10x faster (see
 * docs/benchmarks.md). On a machine with one core, one thread runs both.
 *
 * A thread starts with its first job and is stopped once no job has run
 * for WORKER_IDLE_MS, so that a store left open keeps a program from exiting
 * no longer than that (a running worker keeps the process alive), or for
 * WORKER_CLOSED_IDLE_MS once every store's runner on it is closed.
 */
import { CorruptionError } from "./errors.ts";
import { type Job, type JobRunner, recycleEntryBuffer } from "./jobs.ts";
import type { TableMeta } from "./sstable/mod.ts";

/** How long an idle worker is kept for the next job. */
export const WORKER_IDLE_MS = 1000;

/**
 * How long an idle worker is kept once every runner on it is closed: long
 * enough for the next store a program opens (a benchmark's next fresh
 * store) to find it warm, short enough that a program that closed its
 * stores exits promptly.
 */
export const WORKER_CLOSED_IDLE_MS = 250;

/** What the worker posts back for job `id`. */
export type JobReply =
  | {
    id: number;
    metas: TableMeta[];
    /** A flush's entries buffer, handed back for reuse. */
    entries?: ArrayBuffer;
  }
  | {
    id: number;
    error: { name: string; message: string; file?: string; offset?: number };
  };

interface Waiter {
  resolve: (metas: TableMeta[]) => void;
  reject: (e: Error) => void;
}

/** One worker thread and the jobs waiting on it, whoever posted them. */
export class JobWorker {
  #worker: Worker | undefined;
  #pending = new Map<number, Waiter>();
  #nextId = 1;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Runners attached and not yet closed. */
  #runners = 0;

  /** A runner starts using this worker. */
  attach(): void {
    this.#runners++;
  }

  /** A runner is closed: with none left and nothing running, stop soon. */
  detach(): void {
    this.#runners--;
    if (this.#pending.size === 0 && this.#worker !== undefined) {
      this.#armIdleStop();
    }
  }

  /** Posts `job`; returns the number it goes by (see forget) and its result. */
  run(job: Job): { id: number; done: Promise<TableMeta[]> } {
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    const worker = this.#worker ?? this.#start();
    const id = this.#nextId++;
    const { promise, resolve, reject } = Promise.withResolvers<TableMeta[]>();
    this.#pending.set(id, { resolve, reject });
    // A flush's entries move to the worker without a copy.
    const transfer = job.kind === "flush" ? [job.entries.buffer] : [];
    worker.postMessage({ id, job }, transfer as ArrayBuffer[]);
    return { id, done: promise };
  }

  /** Starts the thread ahead of a job (see WorkerRunner.prepare). */
  prepare(): void {
    if (this.#worker === undefined) this.#start();
    // Idle, it would stop before the job comes: keep it another while.
    if (this.#pending.size === 0) this.#armIdleStop();
  }

  /** Whether the thread is up. */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * Fails job `id` now with `error` (its runner was closed); the thread
   * runs it to its end all the same, its reply ignored.
   */
  forget(id: number, error: Error): void {
    const waiter = this.#pending.get(id);
    if (!waiter) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#armIdleStop();
    waiter.reject(error);
  }

  #start(): Worker {
    const worker = new Worker(
      new URL("./job_worker.ts", import.meta.url).href,
      { type: "module" },
    );
    worker.onmessage = (event: MessageEvent<JobReply>) =>
      this.#settle(event.data);
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      this.#stop(new Error(`The background worker failed: ${event.message}`));
    };
    worker.onmessageerror = () => {
      this.#stop(new Error("The background worker sent an unreadable reply"));
    };
    this.#worker = worker;
    return worker;
  }

  /** Stops the thread now, failing every job it was running. */
  terminate(): void {
    this.#stop(new Error("The background worker was stopped"));
  }

  /** Terminates the thread, failing every job it was running. */
  #stop(error: Error): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#worker?.terminate();
    this.#worker = undefined;
    const waiters = [...this.#pending.values()];
    this.#pending.clear();
    for (const w of waiters) w.reject(error);
  }

  /**
   * Stops the thread if it gets no job within WORKER_IDLE_MS (or
   * WORKER_CLOSED_IDLE_MS, when no runner is open).
   */
  #armIdleStop(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const idleMs = this.#runners > 0 ? WORKER_IDLE_MS : WORKER_CLOSED_IDLE_MS;
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#pending.size === 0) {
        this.#worker?.terminate();
        this.#worker = undefined;
      }
    }, idleMs);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #settle(reply: JobReply): void {
    const waiter = this.#pending.get(reply.id);
    if (!waiter) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#armIdleStop();
    if ("metas" in reply) {
      if (reply.entries !== undefined) recycleEntryBuffer(reply.entries);
      waiter.resolve(reply.metas);
      return;
    }
    waiter.reject(jobError(reply.error));
  }
}

/** The error a job failed with, rebuilt from what the worker posted. */
function jobError(
  e: { name: string; message: string; file?: string; offset?: number },
): Error {
  const { name, message, file, offset } = e;
  if (name === "CorruptionError" && file !== undefined) {
    return new CorruptionError(message, file, offset ?? 0);
  }
  // The classes callers tell apart keep their class; others their name.
  const Class = name === "RangeError"
    ? RangeError
    : name === "TypeError"
    ? TypeError
    : Error;
  const error = new Class(message);
  error.name = name;
  return error;
}

/** The thread every store's runner flushes on unless given its own. */
const processFlushWorker = new JobWorker();

/**
 * The thread every store's runner merges on unless given its own: the
 * flush thread on a machine with one core (where a second busy thread
 * would only take turns with the first).
 */
const processMergeWorker = navigator.hardwareConcurrency >= 2
  ? new JobWorker()
  : processFlushWorker;

/** A job posted to a worker, while it runs. */
interface Posted {
  worker: JobWorker;
  id: number;
}

/**
 * A store's {@linkcode JobRunner} on {@linkcode JobWorker}s: flushes on
 * one, merges on another (by default the two the process shares; given
 * one worker, both on it).
 */
export class WorkerRunner implements JobRunner {
  #closed = false;
  /** This runner's jobs not yet settled. */
  #posted = new Set<Posted>();
  readonly #workers: JobWorker[];

  constructor(
    private readonly flushes: JobWorker = processFlushWorker,
    private readonly merges: JobWorker = flushes === processFlushWorker
      ? processMergeWorker
      : flushes,
  ) {
    this.#workers = flushes === merges ? [flushes] : [flushes, merges];
    for (const w of this.#workers) w.attach();
  }

  run(job: Job): Promise<TableMeta[]> {
    if (this.#closed) {
      return Promise.reject(new Error("The background worker was stopped"));
    }
    const worker = job.kind === "flush" ? this.flushes : this.merges;
    const { id, done } = worker.run(job);
    const posted = { worker, id };
    this.#posted.add(posted);
    const settled = () => this.#posted.delete(posted);
    done.then(settled, settled);
    return done;
  }

  /**
   * Starts the thread ahead of the first job (a store about to flush its
   * first memtable), so that the flush does not wait for it to start and
   * load its modules; stopped again if no job comes within WORKER_IDLE_MS.
   */
  prepare(): void {
    if (!this.#closed) this.flushes.prepare();
  }

  /** @internal Whether the flush thread is up (for tests). */
  get started(): boolean {
    return this.flushes.started;
  }

  /**
   * Stops the runner: its jobs still running fail at once. (The store
   * closes its runner only once its jobs have settled: a job failed here
   * would still run to its end on its shared thread.)
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = new Error("The background worker was stopped");
    for (const { worker, id } of [...this.#posted]) worker.forget(id, error);
    for (const w of this.#workers) w.detach();
  }
}
