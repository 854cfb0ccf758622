/**
 * An fsync that is already running covers only the bytes written before
 * it: a sync() that finds one in flight must wait for it (and sync again
 * if more was written), never return at once. Simulated on MemEnv with
 * WAL fsyncs that take a while, then a power cut that keeps only synced
 * bytes.
 */
import assert from "node:assert/strict";
import type { Env, WritableFile } from "../../storage/env.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import { SYNC_INTERVAL_MS } from "../../storage/limits.ts";
import { openStore } from "../../storage/mod.ts";
import { Prng } from "../../util/mod.ts";
import { text } from "../helpers.ts";

/** How long a slow fsync takes. */
const SLOW_SYNC_MS = 300;

/** A power cut after which files hold only their synced bytes. */
class SyncedOnly extends Prng {
  constructor() {
    super(1);
  }
  override int(_n: number): number {
    return 0;
  }
}

/**
 * `mem` with the fsyncs of files matching `slow` taking SLOW_SYNC_MS, and
 * the set of those still running.
 */
function slowSyncs(mem: MemEnv, slow: (path: string) => boolean) {
  const pending = new Set<Promise<void>>();
  const openWritable = async (path: string): Promise<WritableFile> => {
    const file = await mem.openWritable(path);
    if (!slow(path)) return file;
    return {
      path: file.path,
      append: (bytes) => file.append(bytes),
      syncData: () => {
        const done = new Promise<void>((resolve, reject) => {
          setTimeout(() => file.syncData().then(resolve, reject), SLOW_SYNC_MS);
        });
        pending.add(done);
        done.finally(() => pending.delete(done)).catch(() => {});
        return done;
      },
      close: () => file.close(),
    };
  };
  const env = new Proxy(mem, {
    get(target, prop) {
      if (prop === "openWritable") return openWritable;
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Env;
  return { env, pending };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("interval mode: store.sync() waits for the interval's fsync in flight", async () => {
  const mem = new MemEnv();
  const { env, pending } = slowSyncs(mem, (p) => p.endsWith(".log"));
  const store = await openStore("/db", { env, sync: "interval" });
  await store.put("k", "v");
  await sleep(SYNC_INTERVAL_MS + 50);
  assert.ok(pending.size > 0, "the interval's fsync is running");
  await store.sync();
  const after = mem.powerCut(new SyncedOnly());
  await Promise.all(pending);
  await store.close();
  const reopened = await openStore("/db", { env: after });
  assert.equal(text(await reopened.get("k")), "v", "lost after store.sync()");
  await reopened.close();
});

for (const sync of ["interval", "none"] as const) {
  Deno.test(`${sync} mode: a frozen segment counts as closed only once synced, so a power cut keeps no later segment without it`, async () => {
    const mem = new MemEnv();
    // The first segment's fsyncs are slow, and so are the tables' (so that
    // the flush of the frozen memtable has not committed at the cut).
    const { env, pending } = slowSyncs(
      mem,
      (p) => p.endsWith("/000001.log") || p.endsWith(".sst.tmp"),
    );
    const store = await openStore("/db", { env, sync, memtableBytes: 1024 });
    let n = 0;
    while (store.stats().memtableBytes < 1024) {
      await store.put(`k${n}`, `v${n++}-${"x".repeat(100)}`);
    }
    if (sync === "interval") {
      await sleep(SYNC_INTERVAL_MS + 50); // the interval's fsync runs
    } else {
      await sleep(10); // the queued bytes reach the OS
      void store.sync(); // an fsync of the first segment runs
      await sleep(10);
    }
    assert.ok(pending.size > 0, "an fsync of the first segment is running");
    // These freeze the memtable and go to the next segment.
    for (let j = 0; j < 5; j++) await store.put(`k${n}`, `v${n++}`);
    assert.equal(store.stats().immutableMemtables, 1);
    await store.sync();
    const after = mem.powerCut(new SyncedOnly());
    await Promise.all(pending);
    await store.close().catch(() => {});
    const reopened = await openStore("/db", { env: after });
    const missing: string[] = [];
    for (let j = 0; j < n; j++) {
      if ((await reopened.get(`k${j}`)) === undefined) missing.push(`k${j}`);
    }
    await reopened.close();
    assert.deepEqual(missing, [], "writes lost although store.sync() returned");
  });
}
