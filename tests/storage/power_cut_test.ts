/**
 * Crash at every step: a scripted workload (puts, deletes, batches, with a
 * tiny memtable so that WAL rotations, flushes, level-0 merges and manifest
 * edits all happen) runs on the simulated filesystem with the power cut
 * after filesystem operation k, for every k. The store then reopens on what
 * a power cut leaves (synced bytes plus a seeded part of each unsynced
 * tail; directory changes since the last directory sync undone), and must
 * hold exactly the state after some prefix of the issued operations that
 * contains every acknowledged one, and accept writes. The same script also
 * runs with an I/O error (EIO or ENOSPC) injected at the n-th write, sync,
 * rename, open or read, for every n until the script completes; reopened on
 * the healthy filesystem, the store must again hold every acknowledged op.
 * (Fail-stop after a failed fsync is tested in store_test.ts.)
 */
import assert from "node:assert/strict";
import { checkStore, openStore, type Store } from "../../storage/mod.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import { Prng } from "../../util/mod.ts";
import { overriding, testSeed, text, wrapWritable } from "../helpers.ts";

const DIR = "/db";
// A 256-byte manifest limit makes manifest rotation (write a snapshot,
// sync, swap CURRENT, delete the old one) happen every few flushes.
// Tiny level targets and tables make merges reach levels 2 and deeper.
const OPTIONS = {
  memtableBytes: 1024,
  l0MergeTrigger: 2,
  l1Bytes: 2048,
  tableBytes: 1024,
  manifestRotateBytes: 256,
} as const;

interface Op {
  puts: Array<[string, string | undefined]>;
}

function script(rng: Prng, n: number): Op[] {
  return Array.from({ length: n }, (_, i) => {
    const count = rng.chance(0.15) ? 2 + rng.int(3) : 1;
    return {
      puts: Array.from({ length: count }, () => {
        const key = `k${rng.int(40)}`;
        return [
          key,
          rng.chance(0.2) ? undefined : `v${i}-${
            rng.chance(0.3)
              // Bytes that read as record headers (a little-endian length
              // of 10,000, then a PUT), as binary values hold: a torn
              // write of them must still read as a torn write.
              ? "\u0010\u0027\u0000\u0000\u0001".repeat(1 + rng.int(8))
              : "x".repeat(rng.int(50))
          }`,
        ] as [string, string | undefined];
      }),
    };
  });
}

/** Runs the script; returns how many ops were acknowledged (a prefix). */
async function run(env: MemEnv, ops: Op[]): Promise<number> {
  let store: Store;
  try {
    store = await openStore(DIR, { ...OPTIONS, env });
  } catch {
    return 0;
  }
  let acked = 0;
  try {
    for (const op of ops) {
      if (op.puts.length === 1) {
        const [key, value] = op.puts[0]!;
        await (value === undefined ? store.delete(key) : store.put(key, value));
      } else {
        await store.batch(
          op.puts.map(([key, value]) =>
            value === undefined
              ? { type: "delete" as const, key }
              : { type: "put" as const, key, value }
          ),
        );
      }
      acked++;
    }
    await store.settle();
  } catch {
    // The power went out: nothing after this was acknowledged.
  }
  await store.close().catch(() => {});
  // Nothing of the store may touch the filesystem once close() returned
  // (a flush or merge job left running after a failure, say): by then the
  // lock is released and another process may own the directory.
  const opsAtClose = env.ops;
  for (let i = 0; i < 10; i++) await env.yieldNow();
  assert.equal(env.ops, opsAtClose, "a file operation after close()");
  return acked;
}

function stateAfter(ops: Op[], n: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const op of ops.slice(0, n)) {
    for (const [k, v] of op.puts) v === undefined ? m.delete(k) : m.set(k, v);
  }
  return m;
}

Deno.test("a power cut after any filesystem operation loses no acknowledged write", async () => {
  const seed = testSeed("power cut at every step");
  const ops = script(
    new Prng(seed),
    Number(Deno.env.get("KV_POWER_CUT_OPS") ?? 150),
  );
  const full = new MemEnv();
  assert.equal(await run(full, ops), ops.length);
  const total = full.ops;
  let explored = 0;
  for (let k = 0; k <= total; k++) {
    const env = new MemEnv();
    env.cutAfter = k;
    const acked = await run(env, ops);
    const after = env.powerCut(new Prng(seed + k));
    // Exactly one version is live (CURRENT names one manifest) and every
    // file it names exists and verifies, block by block: whatever step of a
    // flush, merge or manifest switch the power cut interrupted.
    if (await after.list(DIR).then(() => true, () => false)) {
      const checked = await checkStore(after, DIR);
      assert.deepEqual(
        checked.problems,
        [],
        `seed ${seed}, cut after operation ${k}`,
      );
    }
    await expectPrefix(
      after,
      ops,
      acked,
      `seed ${seed}, cut after operation ${k}`,
    );
    explored++;
  }
  console.log(
    `explored ${explored} crash points (${total} filesystem operations)`,
  );
});

/**
 * Runs the script on `env`, then clears the fault and reopens the same
 * (now healthy) filesystem: every acknowledged op must be there.
 */
async function checkFault(
  env: MemEnv,
  ops: Op[],
  what: string,
  rng: Prng,
): Promise<{ acked: number; completed: boolean }> {
  const acked = await run(env, ops);
  env.failAt = undefined;
  // What a power cut at the end of the run would leave, taken before the
  // reopen writes. (Acks without a durable fsync are caught by the power
  // cut test above, which cuts right after each operation.)
  const cut = env.powerCut(rng);
  await expectPrefix(env, ops, acked, `${what}, reopened`);
  await expectPrefix(cut, ops, acked, `${what}, then a power cut`);
  return { acked, completed: acked === ops.length };
}

/**
 * Reopens the store on `env` and checks that it holds exactly the state
 * after some prefix of `ops` at least `acked` long, and accepts a write.
 */
async function expectPrefix(
  env: MemEnv,
  ops: Op[],
  acked: number,
  what: string,
): Promise<void> {
  let store: Store;
  try {
    store = await openStore(DIR, { ...OPTIONS, env });
  } catch (error) {
    assert.fail(`${what}: reopen failed: ${(error as Error).message}`);
  }
  const got = new Map<string, string>();
  for await (const e of store.scan()) got.set(text(e.key)!, text(e.value)!);
  let matched = -1;
  for (let n = acked; n <= ops.length && matched < 0; n++) {
    const want = stateAfter(ops, n);
    if (
      want.size === got.size &&
      [...want].every(([key, v]) => got.get(key) === v)
    ) matched = n;
  }
  assert.ok(
    matched >= 0,
    `${what}: state is no prefix of >= ${acked} acknowledged ops`,
  );
  await store.put("after", "power");
  assert.equal(text(await store.get("after")), "power");
  await store.close();
  // And once more: the write after recovery is there, and so is the state
  // (a torn tail left in place would put it after garbage).
  try {
    store = await openStore(DIR, { ...OPTIONS, env });
  } catch (error) {
    assert.fail(`${what}: second reopen failed: ${(error as Error).message}`);
  }
  assert.equal(text(await store.get("after")), "power", `${what}: reopened`);
  const again = new Map<string, string>();
  for await (const e of store.scan()) {
    const key = text(e.key)!;
    if (key !== "after") again.set(key, text(e.value)!);
  }
  assert.deepEqual(again, got, `${what}: state after a second reopen`);
  await store.close();
}

Deno.test("an I/O error at any write, sync, rename, open or read loses no acknowledged write", async () => {
  const seed = testSeed("io error sweep");
  const ops = script(new Prng(seed), 80);
  let explored = 0;
  for (const kind of ["write", "sync", "rename", "open", "read"] as const) {
    for (let n = 1; n < 10_000; n++) {
      const env = new MemEnv();
      env.failAt = { kind, n, code: n % 2 ? "EIO" : "ENOSPC" };
      const { completed } = await checkFault(
        env,
        ops,
        `seed ${seed}, ${kind} ${n} failing`,
        new Prng(seed + n),
      );
      explored++;
      if (completed) break;
    }
  }
  console.log(`explored ${explored} injected faults`);
});

Deno.test("randomized power cuts over many seeds of longer workloads lose no acknowledged write", async () => {
  const base = testSeed("random power cuts");
  const seeds = Number(Deno.env.get("KV_POWER_CUT_SEEDS") ?? 200);
  let cuts = 0;
  for (let s = 0; s < seeds; s++) {
    const seed = (base + s) >>> 0;
    const rng = new Prng(seed);
    const ops = script(rng, 300 + rng.int(300));
    const env = new MemEnv();
    // Somewhere in the run: the script takes two to four thousand operations.
    env.cutAfter = rng.int(3000);
    const acked = await run(env, ops);
    await expectPrefix(
      env.powerCut(rng),
      ops,
      acked,
      `seed ${seed}, cut after operation ${env.cutAfter}`,
    );
    cuts++;
  }
  console.log(`${cuts} seeds, each cut at a random operation`);
});

Deno.test("after a failure mid-flush, nothing touches the files once close() returns", async () => {
  // Many writers at once fill memtables faster than they flush, so that
  // flush jobs of several frozen memtables run together when an fsync or
  // write fails; close() must wait for every job it started.
  let failures = 0;
  for (const kind of ["sync", "write"] as const) {
    for (let n = 1; n <= 60; n++) {
      const env = new MemEnv();
      const store = await openStore(DIR, { ...OPTIONS, env });
      env.failAt = { kind, n, code: "EIO" };
      const writes: Array<Promise<void>> = [];
      for (let i = 0; i < 400; i++) {
        writes.push(store.put(`k${i % 50}`, `value ${i} ${"x".repeat(30)}`));
      }
      const results = await Promise.allSettled(writes);
      if (results.some((r) => r.status === "rejected")) failures++;
      await store.close().catch(() => {});
      const opsAtClose = env.ops;
      for (let i = 0; i < 10; i++) await env.yieldNow();
      assert.equal(
        env.ops,
        opsAtClose,
        `${kind} ${n} failing: a file operation after close()`,
      );
    }
  }
  assert.ok(failures > 0, "no injected fault failed a write");
});

Deno.test("after a manifest edit fails, no other edit is appended to the manifest", async () => {
  // A failed edit's bytes may be half on disk; a later edit appended after
  // them would turn a torn tail into corruption with valid edits after it.
  // Flushes and merges commit from two lanes, so one may be queued behind
  // the edit that fails.
  let hit = 0;
  for (let failing = 2; failing <= 40; failing++) {
    const inner = new MemEnv();
    let syncs = 0;
    let failed = false;
    const late: string[] = [];
    const openManifestWatched = async (path: string) => {
      const file = await inner.openWritable(path);
      if (!path.includes("MANIFEST")) return file;
      return wrapWritable(file, {
        append(bytes: Uint8Array) {
          if (failed) late.push(`${bytes.length} bytes to ${path}`);
          file.append(bytes);
        },
        syncData() {
          if (++syncs !== failing) return file.syncData();
          failed = true;
          return Promise.reject(new Error("EIO: injected manifest fsync"));
        },
      });
    };
    // MemEnv's methods, bound to it, with manifest files watched.
    const env = overriding(inner, { openWritable: openManifestWatched });
    const store = await openStore(DIR, {
      env,
      memtableBytes: 4096,
      l0MergeTrigger: 2,
      sync: "none",
    });
    const writes: Array<Promise<void>> = [];
    for (let i = 0; i < 3000; i++) {
      writes.push(
        store.put(`k${i % 500}`, `v${i} ${"x".repeat(40)}`).catch(() => {}),
      );
    }
    await Promise.all(writes);
    await store.settle().catch(() => {});
    await store.close().catch(() => {});
    if (failed) hit++;
    assert.deepEqual(late, [], `manifest fsync ${failing} failing`);
  }
  assert.ok(hit > 0, "no manifest fsync failed");
});

Deno.test("a segment inherited from a killed process is fsynced at open: a power cut after the next process's first acknowledged write keeps it", async () => {
  // Process 1 is killed while a write's fsync runs: its bytes are in the
  // segment, not synced. Process 2's first write freezes the replayed
  // memtable before appending to that segment, then is acknowledged in the
  // next segment. Unless open fsyncs the inherited segment, a power cut
  // tears a segment that a later one follows: open refused the store, and
  // --repair set the acknowledged write aside.
  for (let seed = 1; seed <= 8; seed++) {
    const mem = new MemEnv();
    let hang = false;
    const process1 = overriding(mem, {
      // The lock dies with process 1.
      tryLock: () => Promise.resolve({ release() {} }),
      openWritable: async (path) => {
        const f = await mem.openWritable(path);
        if (!path.endsWith(".log")) return f;
        return wrapWritable(f, {
          syncData: () => hang ? new Promise<void>(() => {}) : f.syncData(),
        });
      },
    });
    const options = {
      sync: "always" as const,
      memtableBytes: 1024,
      idleMergeMs: 0,
    };
    const p1 = await openStore("/db", { ...options, env: process1 });
    for (let i = 0; i < 17; i++) await p1.put(`p1-${i}`, "x".repeat(40));
    await p1.settle();
    hang = true;
    void p1.put("p1-17", "x".repeat(40)); // written; never acknowledged
    await mem.yieldNow();
    const p2 = await openStore("/db", { ...options, env: mem });
    await p2.put("acked", "yes");
    const after = mem.powerCut(new Prng(seed));
    const store = await openStore("/db", { env: after });
    assert.equal(text(await store.get("acked")), "yes", `seed ${seed}`);
    assert.equal(
      text(await store.get("p1-16")),
      "x".repeat(40),
      `seed ${seed}`,
    );
    await store.close();
  }
});

Deno.test("a power cut during a group commit into preallocated space, keeping some sectors of its block and not others, loses no acknowledged write and needs no --repair", async () => {
  // Concurrent writers put several records in one write: a power cut
  // during its fsync may keep a later record's sectors and not an earlier
  // one's. The space after the block is zeros (never written), and open
  // must read that as a torn write, not as damage that valid records
  // follow (which refused the store over writes never acknowledged).
  const seed = testSeed("sector tears");
  const WRITERS = 8;
  const PUTS = 40;
  let cuts = 0;
  for (let k = 20; k <= 400; k += 3) {
    const env = new MemEnv();
    env.cutAfter = k;
    const acked = new Map<string, string>();
    try {
      const store = await openStore(DIR, { env, memtableBytes: 64 * 1024 });
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let i = 0; i < PUTS; i++) {
            const key = `w${w}-${i}`;
            const value = `${key} ${"v".repeat(20 + ((w * 37 + i) % 90))}`;
            await store.put(key, value);
            acked.set(key, value);
          }
        }),
      ).catch(() => {});
      await store.close().catch(() => {});
    } catch {
      // The power went out during open.
    }
    const what = `seed ${seed}, cut after operation ${k}`;
    const after = env.powerCut(new Prng(seed + k));
    if (!(await after.list(DIR).then(() => true, () => false))) continue;
    const store = await openStore(DIR, { env: after }).catch((error) =>
      assert.fail(`${what}: reopen failed: ${(error as Error).message}`)
    );
    cuts += store.recovery.truncated.length;
    for (const [key, value] of acked) {
      assert.equal(text(await store.get(key)), value, `${what}: ${key}`);
    }
    await store.close();
  }
  assert.ok(cuts > 0, "no power cut left a torn write to cut");
});
