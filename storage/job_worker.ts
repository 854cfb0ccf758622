/**
 * Entry point of the background worker thread: runs the jobs the store
 * posts (storage/jobs.ts) on the real filesystem and posts back the new
 * tables' metadata or the error. Jobs run side by side (a flush is not held
 * up by a long merge), taking turns every few thousand entries.
 */
import { macrotask } from "./env.ts";
import { denoEnv } from "./env_deno.ts";
import { CorruptionError } from "./errors.ts";
import { type Job, runJob } from "./jobs.ts";
import type { JobReply } from "./worker_runner.ts";

const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<{ id: number; job: Job }>) => void) | null;
  postMessage(message: JobReply, transfer: ArrayBuffer[]): void;
};

scope.onmessage = async ({ data: { id, job } }) => {
  let reply: JobReply;
  const transfer: ArrayBuffer[] = [];
  try {
    reply = { id, metas: await runJob(denoEnv, job, macrotask) };
    if (job.kind === "flush") {
      // Done with the entries: their buffer goes back for the next flush.
      const entries = job.entries.buffer as ArrayBuffer;
      reply.entries = entries;
      transfer.push(entries);
    }
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    reply = {
      id,
      error: {
        name: e.name,
        message: e.message,
        ...(e instanceof CorruptionError
          ? { file: e.file, offset: e.offset }
          : {}),
      },
    };
  }
  scope.postMessage(reply, transfer);
};
