/**
 * The real filesystem's Env reaches the kernel's fsyncs. The power-cut
 * suites run on MemEnv and a SIGKILL cannot show a missing fsync (the page
 * cache survives it), so this watches `Deno.FsFile`'s `syncData` (fdatasync)
 * and `sync` (fsync, used on directories) while the Env and a store work.
 */
import assert from "node:assert/strict";
import { denoEnv } from "../../storage/env_deno.ts";
import { openStore } from "../../storage/mod.ts";
import { tempDir } from "../helpers.ts";

/** Runs `fn` counting the fsyncs of Deno.FsFile, restored after. */
async function countingSyncs(
  fn: (counts: { data: number; full: number }) => Promise<void>,
): Promise<void> {
  const proto = Deno.FsFile.prototype;
  const { syncData, sync } = proto;
  const counts = { data: 0, full: 0 };
  proto.syncData = function (this: Deno.FsFile) {
    counts.data++;
    return syncData.call(this);
  };
  proto.sync = function (this: Deno.FsFile) {
    counts.full++;
    return sync.call(this);
  };
  try {
    await fn(counts);
  } finally {
    proto.syncData = syncData;
    proto.sync = sync;
  }
}

Deno.test("the real Env's syncData, truncate and syncDir each call the kernel's fsync", async () => {
  await using tmp = await tempDir();
  await countingSyncs(async (counts) => {
    const file = await denoEnv.openWritable(`${tmp.path}/f`);
    file.append(new Uint8Array([1, 2, 3]));
    await file.syncData();
    file.close();
    assert.equal(counts.data, 1, "syncData");
    await denoEnv.truncate(`${tmp.path}/f`, 1);
    assert.equal(counts.data, 2, "truncate syncs what it cut");
    await denoEnv.syncDir(tmp.path);
    assert.equal(counts.full, 1, "syncDir");
  });
});

Deno.test("a store on the real filesystem fdatasyncs a put before acknowledging it, and fsyncs the directory of the files it creates", async () => {
  await using tmp = await tempDir();
  await countingSyncs(async (counts) => {
    const store = await openStore(tmp.path, {
      background: "inline",
      memtableBytes: 64 * 1024,
    });
    const data = counts.data;
    await store.put("k", "v");
    assert.ok(counts.data > data, "a put acknowledged without an fdatasync");
    const full = counts.full;
    for (let i = 0; store.stats().flushes === 0 && i < 10_000; i++) {
      await store.put(`k${i}`, "x".repeat(200));
    }
    await store.settle();
    assert.ok(store.stats().flushes > 0, "a flush ran");
    assert.ok(
      counts.full > full,
      "a segment and a table were created without a directory fsync",
    );
    await store.close();
  });
});

Deno.test("the real Env's preallocated space is zero-filled past the appends, which go on where they were, and trim cuts it", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/f`;
  const file = await denoEnv.openWritable(path);
  file.append(new Uint8Array([1, 2, 3]));
  file.preallocate(4096);
  assert.equal((await Deno.stat(path)).size, 4096);
  file.preallocate(100); // never shrinks
  assert.equal((await Deno.stat(path)).size, 4096);
  file.append(new Uint8Array([4, 5]));
  await file.syncData();
  const grown = await Deno.readFile(path);
  assert.deepEqual([...grown.subarray(0, 6)], [1, 2, 3, 4, 5, 0]);
  assert.ok(grown.subarray(5).every((b) => b === 0), "space is zeros");
  file.trim();
  file.close();
  assert.deepEqual([...await Deno.readFile(path)], [1, 2, 3, 4, 5]);
  // Reopened, appends go at the end.
  const again = await denoEnv.openWritable(path);
  again.append(new Uint8Array([6]));
  again.close();
  assert.deepEqual([...await Deno.readFile(path)], [1, 2, 3, 4, 5, 6]);
});
