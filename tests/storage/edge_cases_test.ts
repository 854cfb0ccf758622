/**
 * Edge cases a mutation audit found untested: tombstones kept when a merge's
 * overlapped tables reach past its input, empty values in scans and counts,
 * one entry per key from a memtable iterated while it grows, and a snapshot
 * whose sequence is only in a table.
 */
import assert from "node:assert/strict";
import { openStore } from "../../storage/mod.ts";
import { pickCompaction, type TableShape } from "../../storage/compaction.ts";
import { Memtable } from "../../storage/memtable.ts";
import { denoEnv } from "../../storage/env_deno.ts";
import { readCurrent, readManifest } from "../../storage/manifest.ts";
import { tempDir, text } from "../helpers.ts";

const MiB = 1024 * 1024;
let n = 1;
const t = (lo: string, hi: string, mib = 2): TableShape => ({
  fileNumber: n++,
  smallest: lo,
  largest: hi,
  size: mib * MiB,
});
const tree = (...levels: TableShape[][]) =>
  Array.from({ length: 7 }, (_, i) => levels[i] ?? []);

Deno.test("tombstones of an overlapped next-level table outside the input range stay when a deeper level holds them", () => {
  const pick = pickCompaction(
    tree([], [t("a", "c", 12)], [t("a", "z", 20)], [t("y", "y", 1)]),
    { l0Trigger: 4, l1Bytes: 10 * MiB },
  )!;
  assert.equal(pick.level, 1);
  assert.equal(pick.overlaps.length, 1);
  assert.equal(
    pick.dropTombstones,
    false,
    "level 3 holds y, inside the level-2 table's range",
  );
});

Deno.test("empty values are live in scans and counts, in memtables and tables", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, {
    memtableBytes: 1024,
    blockBytes: 256,
  });
  const check = async (where: string) => {
    const got: string[] = [];
    for await (const e of store.scan({ start: "e", end: "f" })) {
      got.push(`${text(e.key)}=${text(e.value)}`);
    }
    assert.deepEqual(got, ["e=", "e1=x"], where);
    assert.equal(await store.count({ prefix: "e" }), 2, where);
  };
  await store.put("e", "");
  await store.put("e1", "x");
  await check("memtable");
  for (let i = 0; i < 200; i++) await store.put(`f${i}`, "y".repeat(40));
  await store.settle();
  assert.ok(store.stats().flushes > 0);
  await check("tables");
  await store.close();
});

Deno.test("memtable entries yield each key once while keys are inserted during the iteration", () => {
  const m = new Memtable();
  const enc = (s: string) => new TextEncoder().encode(s);
  m.apply(1, "a", enc("1"), 0);
  m.apply(2, "c", enc("2"), 0);
  m.apply(3, "e", enc("3"), 0);
  const keys: string[] = [];
  let seq = 4;
  for (const [k] of m.entries(3, {})) {
    keys.push(k);
    m.apply(seq++, k + "0", enc("late"), 0); // a key inserted right after k
  }
  assert.deepEqual(keys, ["a", "c", "e"]);
});

Deno.test("a snapshot at a sequence number whose write is only in a table (WAL tail lost) sees it", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path, {
    memtableBytes: 1024,
    sync: "always",
    l0MergeTrigger: 64,
    idleMergeMs: 0,
  });
  for (let i = 0; i < 60; i++) {
    await store.put(`k${String(i).padStart(3, "0")}`, `v${i}`);
  }
  await store.settle();
  await store.close();
  const cur = (await readCurrent(denoEnv, tmp.path))!;
  const lastSeq = (await readManifest(denoEnv, tmp.path, cur)).state.lastSeq;
  assert.ok(lastSeq > 0 && lastSeq < 60, `flushed up to ${lastSeq}`);
  // Lose every write not in a table (as a power cut under sync "none" may).
  for await (const e of Deno.readDir(tmp.path)) {
    if (e.name.endsWith(".log")) {
      await Deno.truncate(`${tmp.path}/${e.name}`, 0);
    }
  }
  store = await openStore(tmp.path, {
    memtableBytes: 1024,
    l0MergeTrigger: 64,
    idleMergeMs: 0,
  });
  assert.equal(store.stats().lastSequence, lastSeq);
  const key = `k${String(lastSeq - 1).padStart(3, "0")}`;
  assert.equal(text(await store.get(key)), `v${lastSeq - 1}`);
  const snap = store.snapshot();
  assert.equal(text(await snap.get(key)), `v${lastSeq - 1}`, "snapshot get");
  snap.release();
  await store.close();
});
