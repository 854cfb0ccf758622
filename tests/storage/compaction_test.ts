/**
 * The compaction picker: which level is due, which tables a merge takes,
 * when it is a move, and when tombstones may be dropped. Writing tables:
 * every table is durable and in place when writeTables returns, though
 * their fsyncs overlap the writing of the next; a failed one fails it with
 * nothing left running.
 */
import assert from "node:assert/strict";
import {
  isDisjoint,
  levelScores,
  pickCompaction,
  type TableShape,
  writeTables,
} from "../../storage/compaction.ts";
import type { Env } from "../../storage/env.ts";
import { MemEnv, SimulatedFault } from "../../storage/env_mem.ts";
import { encodeEntries, FlushCursor } from "../../storage/jobs.ts";
import {
  BlockCache,
  tableName,
  TableReader,
} from "../../storage/sstable/mod.ts";
import { Prng } from "../../util/mod.ts";
import { testSeed, wrapWritable } from "../helpers.ts";

const MiB = 1024 * 1024;
const policy = { l0Trigger: 4, l1Bytes: 10 * MiB };

let nextFile = 1;
/** A table over keys [lo, hi] of `mib` MiB. */
function t(lo: string, hi: string, mib = 2): TableShape {
  return { fileNumber: nextFile++, smallest: lo, largest: hi, size: mib * MiB };
}

function tree(...levels: TableShape[][]): TableShape[][] {
  return Array.from({ length: 7 }, (_, i) => levels[i] ?? []);
}

Deno.test("nothing is due below every trigger", () => {
  const levels = tree(
    [t("a", "z"), t("b", "y"), t("c", "x")],
    [t("a", "f", 4), t("g", "p", 4)],
    [t("a", "z", 90)],
  );
  assert.deepEqual(levelScores(levels, policy).slice(0, 3), [0.75, 0.8, 0.9]);
  assert.equal(pickCompaction(levels, policy), undefined);
});

Deno.test("level 0 at its trigger merges all of it with the overlapping level-1 tables", () => {
  const l0 = [t("d", "f"), t("e", "h"), t("a", "c"), t("g", "j")];
  const l1 = [t("a", "b", 1), t("k", "m", 1), t("n", "q", 1)];
  const pick = pickCompaction(tree(l0, l1), policy)!;
  assert.equal(pick.level, 0);
  assert.deepEqual(pick.inputs, l0);
  assert.deepEqual(pick.overlaps, [l1[0]]);
  assert.equal(pick.move, false);
  assert.equal(pick.dropTombstones, true, "nothing below level 1");
});

Deno.test("disjoint level-0 tables overlapping nothing below move down", () => {
  const l0 = [t("a", "b"), t("c", "d"), t("e", "f"), t("g", "h")];
  const pick = pickCompaction(tree(l0, [t("m", "z", 1)]), policy)!;
  assert.equal(pick.move, true);
  assert.deepEqual(pick.overlaps, []);
  // Overlapping each other, they must be merged even with nothing below.
  const l0b = [t("a", "c"), t("b", "d"), t("e", "f"), t("g", "h")];
  assert.equal(pickCompaction(tree(l0b), policy)!.move, false);
});

Deno.test("a level over its target merges one table, rotating through the key space", () => {
  const l1 = [t("a", "c", 4), t("d", "f", 4), t("g", "i", 4)]; // 12 MiB > 10
  const l2 = [t("a", "b"), t("b2", "e"), t("h", "z")];
  const levels = tree([], l1, l2);
  const first = pickCompaction(levels, policy)!;
  assert.equal(first.level, 1);
  assert.deepEqual(first.inputs, [l1[0]]);
  assert.deepEqual(first.overlaps, [l2[0], l2[1]]);
  const second = pickCompaction(levels, policy, [undefined, "c"])!;
  assert.deepEqual(second.inputs, [l1[1]]);
  assert.deepEqual(second.overlaps, [l2[1]]);
  const third = pickCompaction(levels, policy, [undefined, "f"])!;
  assert.deepEqual(third.inputs, [l1[2]]);
  assert.deepEqual(third.overlaps, [l2[2]]);
  // Past the last table, back to the first.
  const wrapped = pickCompaction(levels, policy, [undefined, "i"])!;
  assert.deepEqual(wrapped.inputs, [l1[0]]);
});

Deno.test("a deeper table overlapping nothing below moves; tombstones stay when a deeper level overlaps", () => {
  const l1 = [t("a", "c", 6), t("x", "z", 6)];
  const l2 = [t("d", "w", 20)];
  const l3 = [t("a", "b", 1)];
  const move = pickCompaction(tree([], l1, l2, l3), policy, [undefined, "c"])!;
  assert.deepEqual(move.inputs, [l1[1]]);
  assert.equal(move.move, true);
  const merge = pickCompaction(tree([], l1, [t("a", "c")], l3), policy)!;
  assert.equal(merge.move, false);
  assert.equal(merge.dropTombstones, false, "level 3 holds keys a..b");
  const bottom = pickCompaction(
    tree([], l1, [t("a", "c")], [t("m", "n")]),
    policy,
  )!;
  assert.equal(bottom.dropTombstones, true, "level 3 overlaps only m..n");
});

Deno.test("the most overdue level goes first and the last level is never an input", () => {
  const levels = tree(
    [t("a", "b"), t("c", "d"), t("e", "f"), t("g", "h")], // score 1
    [t("a", "z", 25)], // score 2.5
  );
  assert.equal(pickCompaction(levels, policy)!.level, 1);
  // Level 0 at its stop size (3 x 4 tables) by score too: a deeper level
  // further past its target still goes first, or it would never drain
  // while writes keep level 0 full.
  const stopped = tree(
    Array.from({ length: 12 }, () => t("a", "z")), // score 3
    [t("a", "z", 50)], // score 5
  );
  assert.equal(pickCompaction(stopped, policy)!.level, 1);
  const full = tree();
  full[6] = [t("a", "z", 1_000_000)];
  assert.equal(levelScores(full, policy)[6], 0);
  assert.equal(pickCompaction(full, policy), undefined);
});

Deno.test("isDisjoint", () => {
  assert.equal(isDisjoint([t("a", "b"), t("c", "d")]), true);
  assert.equal(isDisjoint([t("c", "d"), t("a", "c")]), false);
  assert.equal(isDisjoint([]), true);
});

/** 3000 entries as a flush's table source. */
function source(rng: Prng): FlushCursor {
  const value = rng.bytes(200);
  const rows = Array.from({ length: 3000 }, (_, i) => ({
    key: `key${String(i).padStart(6, "0")}`,
    seq: i + 1,
    value,
    expiry: 0,
  }));
  return new FlushCursor(encodeEntries(rows.values(), 1 << 20), false);
}

const SMALL_TABLES = {
  blockBytes: 1024,
  bloomBitsPerKey: 10,
  tableBytes: 64 * 1024,
};

Deno.test("every table writeTables returns is durable and in place, though their fsyncs overlap", async () => {
  const seed = testSeed("writeTables durability");
  const rng = new Prng(seed);
  const env = new MemEnv();
  await env.mkdirAll("/db");
  let file = 1;
  const metas = await writeTables(
    slowSyncs(env),
    "/db",
    source(rng),
    () => file++,
    SMALL_TABLES,
    false,
  );
  assert.ok(metas.length >= 8, `${metas.length} tables`);
  assert.deepEqual(metas.map((m) => m.fileNumber), metas.map((_, i) => i + 1));
  // Power cut right after it returns: each table survives whole.
  const after = env.powerCut(rng);
  const names = await after.list("/db");
  let entries = 0;
  for (const m of metas) {
    assert.ok(names.includes(tableName(m.fileNumber)), `table ${m.fileNumber}`);
    const t = await TableReader.open(
      after,
      "/db",
      m.fileNumber,
      new BlockCache(0),
      {
        negatives: 0,
        falsePositives: 0,
      },
    );
    for (const b of t.scanBlocks()) entries += b.keys.length;
    t.close();
  }
  assert.equal(entries, 3000, `seed ${seed}`);
  assert.ok(!names.some((n) => n.endsWith(".tmp")), "no temporary file left");
});

/** `env` with every file fsync taking a few milliseconds, as on a disk. */
function slowSyncs(env: MemEnv): Env {
  return {
    mkdirAll: (dir) => env.mkdirAll(dir),
    list: (dir) => env.list(dir),
    openWritable: async (path) => {
      const file = await env.openWritable(path);
      return wrapWritable(file, {
        syncData: async () => {
          await new Promise((resolve) => setTimeout(resolve, 3));
          await file.syncData();
        },
      });
    },
    openReadable: (path) => env.openReadable(path),
    truncate: (path, length) => env.truncate(path, length),
    rename: (from, to) => env.rename(from, to),
    remove: (path) => env.remove(path),
    syncDir: (dir) => env.syncDir(dir),
    tryLock: (path) => env.tryLock(path),
    now: () => env.now(),
    setTimer: (ms, fn, unref) => env.setTimer(ms, fn, unref),
    yieldNow: () => env.yieldNow(),
  };
}

Deno.test("a failed table fsync fails writeTables, with nothing of it still running", async () => {
  for (const n of [1, 2, 5]) {
    const env = new MemEnv();
    await env.mkdirAll("/db");
    env.failAt = { kind: "sync", n, code: "EIO" };
    let file = 1;
    await assert.rejects(
      writeTables(
        slowSyncs(env),
        "/db",
        source(new Prng(n)),
        () => file++,
        SMALL_TABLES,
        false,
      ),
      SimulatedFault,
    );
    // Every table it started has finished or been abandoned: no operation
    // comes after it failed.
    const ops = env.ops;
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(env.ops, ops, `sync ${n}: operations after the failure`);
  }
});
