/**
 * An fsync that is already running covers only the bytes written before
 * it: a sync() that finds one in flight must wait for it (and sync again
 * if more was written), never return at once; and group commit must not
 * acknowledge a write before an fsync that started after it. Simulated on
 * MemEnv with WAL fsyncs that make durable what was written when they
 * start and finish a while later, as a disk's do, then power cuts that
 * keep only synced bytes.
 */
import assert from "node:assert/strict";
import type { WritableFile } from "../../storage/env.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import { SYNC_INTERVAL_MS } from "../../storage/limits.ts";
import { openStore } from "../../storage/mod.ts";
import { Prng } from "../../util/mod.ts";
import { overriding, testSeed, text, wrapWritable } from "../helpers.ts";

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
 * `mem` with the fsyncs of files matching `slow` taking `ms()` (durable as
 * of their start), and the set of those still running.
 */
function slowSyncs(
  mem: MemEnv,
  slow: (path: string) => boolean,
  ms: () => number = () => SLOW_SYNC_MS,
) {
  const pending = new Set<Promise<void>>();
  const openWritable = async (path: string): Promise<WritableFile> => {
    const file = await mem.openWritable(path);
    if (!slow(path)) return file;
    return wrapWritable(file, {
      syncData: () => {
        const started = file.syncData();
        const done = new Promise<void>((resolve, reject) => {
          setTimeout(() => started.then(resolve, reject), ms());
        });
        pending.add(done);
        done.finally(() => pending.delete(done)).catch(() => {});
        return done;
      },
    });
  };
  const env = overriding(mem, { openWritable });
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

Deno.test("interval mode: store.sync() also covers a write made while the interval's fsync ran", async () => {
  const mem = new MemEnv();
  const { env, pending } = slowSyncs(mem, (p) => p.endsWith(".log"));
  const store = await openStore("/db", { env, sync: "interval" });
  await store.put("k1", "v1");
  await sleep(SYNC_INTERVAL_MS + 50);
  assert.ok(pending.size > 0, "the interval's fsync is running");
  await store.put("k2", "v2"); // reaches the OS after that fsync started
  await store.sync();
  const after = mem.powerCut(new SyncedOnly());
  await Promise.all(pending);
  await store.close();
  const reopened = await openStore("/db", { env: after });
  assert.equal(text(await reopened.get("k2")), "v2", "lost after store.sync()");
  await reopened.close();
});

Deno.test("always mode: concurrent writers are acknowledged only after an fsync that started after their write, at every acknowledgement", async () => {
  const seed = testSeed("group commit cuts");
  const rng = new Prng(seed);
  const mem = new MemEnv();
  const { env } = slowSyncs(
    mem,
    (p) => p.endsWith(".log"),
    () => 1 + rng.int(5),
  );
  const store = await openStore("/db", { env, memtableBytes: 64 * 1024 });
  const acked: string[] = [];
  const cuts: Array<{ after: MemEnv; acked: number }> = [];
  await Promise.all(
    Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 20; i++) {
        if (rng.chance(0.3)) await sleep(rng.int(3));
        const key = `w${w}-${i}`;
        await store.put(key, `v${i}`);
        acked.push(key);
        cuts.push({
          after: mem.powerCut(new SyncedOnly()),
          acked: acked.length,
        });
      }
    }),
  );
  await store.close();
  assert.ok(store.stats().wal.groupMax > 1, "writes shared fsyncs");
  for (const [n, { after, acked: count }] of cuts.entries()) {
    const reopened = await openStore("/db", { env: after });
    const missing: string[] = [];
    for (const key of acked.slice(0, count)) {
      if ((await reopened.get(key)) === undefined) missing.push(key);
    }
    await reopened.close();
    assert.deepEqual(missing, [], `seed ${seed}, cut at acknowledgement ${n}`);
  }
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

Deno.test("always mode: a get behind a put whose fsync is running when the store fails elsewhere sees the put if it succeeds", async () => {
  const mem = new MemEnv();
  let failTables = false;
  let slow = false;
  const { env, pending } = slowSyncs(
    mem,
    (p) => p.endsWith(".log"),
    () => slow ? SLOW_SYNC_MS : 0,
  );
  // The table fails once the put's fsync runs (the new segment made, its
  // directory synced, recorded in the manifest, the put written to it).
  const failing = overriding(env, {
    openWritable: async (path) => {
      if (!failTables || !path.endsWith(".sst.tmp")) {
        return await env.openWritable(path);
      }
      while (pending.size === 0) await sleep(1);
      throw new Error("EIO: cannot create the table");
    },
  });
  const store = await openStore("/db", {
    env: failing,
    memtableBytes: 4096,
    background: "inline",
    idleMergeMs: 0,
  });
  await store.put("k", "v1");
  for (let i = 0; store.stats().memtableBytes < 4096; i++) {
    await store.put(`f${i}`, "x".repeat(300));
  }
  failTables = slow = true;
  // Freezes the memtable: its flush fails while the put's fsync runs.
  const put = store.put("k", "v2");
  const got = store.get("k").then(text);
  while (store.stats().failure === undefined) await sleep(1);
  assert.ok(pending.size > 0, "the put's fsync is running");
  assert.match(String(store.stats().failure), /cannot create the table/);
  await put;
  assert.equal(await got, "v2", "a get issued after an acknowledged put");
  await store.close().catch(() => {});
});
