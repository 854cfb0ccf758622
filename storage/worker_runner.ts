/**
 * Runs background jobs (storage/jobs.ts) in a worker thread, so that the
 * CPU work of flushes and merges — encoding blocks, checksums, filters,
 * merging — happens on another core than the store's reads and writes.
 *
 * The worker starts with the first job and is stopped once it has been
 * idle for WORKER_IDLE_MS, so that a store left open keeps a program from
 * exiting no longer than that. (A running worker keeps the process alive.)
 */
import { CorruptionError } from "./errors.ts";
import type { Job, JobRunner } from "./jobs.ts";
import type { TableMeta } from "./sstable/mod.ts";

/** How long an idle worker is kept for the next job. */
export const WORKER_IDLE_MS = 1000;

/** What the worker posts back for job `id`. */
export type JobReply =
  | { id: number; metas: TableMeta[] }
  | {
    id: number;
    error: { name: string; message: string; file?: string; offset?: number };
  };

/** A {@linkcode JobRunner} backed by one worker thread. */
export class WorkerRunner implements JobRunner {
  #worker: Worker | undefined;
  #pending = new Map<
    number,
    { resolve: (metas: TableMeta[]) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;
  #closed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  run(job: Job): Promise<TableMeta[]> {
    if (this.#closed) {
      return Promise.reject(new Error("The background worker was stopped"));
    }
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
    return promise;
  }

  /**
   * Starts the worker ahead of the first job (a store about to flush its
   * first memtable), so that the flush does not wait for the thread to
   * start and load its modules; stopped again if no job comes within
   * WORKER_IDLE_MS.
   */
  prepare(): void {
    if (this.#closed) return;
    if (this.#worker === undefined) this.#start();
    // Idle, it would stop before the job comes: keep it another while.
    if (this.#pending.size === 0) this.#armIdleStop();
  }

  /** @internal Whether the worker thread is up (for tests). */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop(new Error("The background worker was stopped"));
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

  /** Terminates the worker, failing the jobs it was running. */
  #stop(error: Error): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#worker?.terminate();
    this.#worker = undefined;
    const waiters = [...this.#pending.values()];
    this.#pending.clear();
    for (const w of waiters) w.reject(error);
  }

  /** Stops the worker if it gets no job within WORKER_IDLE_MS. */
  #armIdleStop(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    const timer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#pending.size === 0) {
        this.#worker?.terminate();
        this.#worker = undefined;
      }
    }, WORKER_IDLE_MS);
    Deno.unrefTimer(timer);
    this.#idleTimer = timer;
  }

  #settle(reply: JobReply): void {
    const waiter = this.#pending.get(reply.id);
    if (!waiter) return;
    this.#pending.delete(reply.id);
    if (this.#pending.size === 0) this.#armIdleStop();
    if ("metas" in reply) {
      waiter.resolve(reply.metas);
      return;
    }
    const { name, message, file, offset } = reply.error;
    let error: Error;
    if (name === "CorruptionError" && file !== undefined) {
      error = new CorruptionError(message, file, offset ?? 0);
    } else {
      // The classes callers tell apart keep their class; others their name.
      const Class = name === "RangeError"
        ? RangeError
        : name === "TypeError"
        ? TypeError
        : Error;
      error = new Class(message);
      error.name = name;
    }
    waiter.reject(error);
  }
}
