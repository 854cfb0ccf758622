/**
 * Manifests of many tables: a snapshot is written as several edits, each
 * within SNAPSHOT_EDIT_BYTES, that rebuild the state; a store whose
 * tables' keys add up past one edit's limit still reopens; and a manifest
 * whose snapshot is bigger than the rotation size is not rewritten at
 * every edit; a leftover file that cannot be removed fails a creation
 * rather than being appended to.
 */
import assert from "node:assert/strict";
import { MemEnv } from "../../storage/env_mem.ts";
import {
  KEY_BYTES_MAX,
  MANIFEST_EDIT_BYTES_MAX,
} from "../../storage/limits.ts";
import {
  applyEdit,
  decodeEdit,
  emptyState,
  encodeEdit,
  frameEdit,
  LEVELS,
  type ManifestState,
  ManifestWriter,
  readCurrent,
  readManifest,
  SNAPSHOT_EDIT_BYTES,
  snapshotEdits,
  writeCurrent,
} from "../../storage/manifest.ts";
import { checkStore, CorruptionError, openStore } from "../../storage/mod.ts";
import { denoEnv } from "../../storage/env_deno.ts";
import {
  type TableMeta,
  tableName,
  TableWriter,
} from "../../storage/sstable/mod.ts";
import { Prng } from "../../util/mod.ts";
import { overriding, tempDir, testSeed, text } from "../helpers.ts";

Deno.test("a snapshot is written as edits within SNAPSHOT_EDIT_BYTES that rebuild the state, tables in their order", () => {
  const seed = testSeed("snapshot edits");
  const rng = new Prng(seed);
  const state: ManifestState = {
    ...emptyState(),
    nextFile: 90_000,
    lastSeq: 123_456_789,
    logNumber: 88_888,
    logs: [88_888, 88_890, 89_999],
  };
  let file = 1;
  const key = () => "k".repeat(1 + rng.int(rng.int(8) === 0 ? 60_000 : 200));
  for (let i = 0; i < 3000; i++) {
    const level = rng.int(LEVELS);
    const smallest = `${String(file).padStart(8, "0")}${key()}`;
    const meta: TableMeta = {
      fileNumber: file++,
      size: rng.int(1 << 20),
      entries: rng.int(10_000),
      tombstones: rng.int(100),
      smallest,
      largest: smallest + key(),
      minSeq: rng.int(1000),
      maxSeq: 1000 + rng.int(1000),
    };
    state.levels[level]!.push(meta);
  }
  const edits = snapshotEdits(state);
  assert.ok(edits.length > 10, `${edits.length} edits (seed ${seed})`);
  const rebuilt = emptyState();
  edits.forEach((edit, i) => {
    const bytes = encodeEdit(edit).length;
    assert.ok(
      bytes <= SNAPSHOT_EDIT_BYTES || edit.added.length === 1,
      `edit ${i} is ${bytes} bytes (seed ${seed})`,
    );
    applyEdit(rebuilt, edit, "test", i);
  });
  // Level 0 keeps its order; the others are sorted by key, as applied.
  for (let l = 1; l < LEVELS; l++) {
    state.levels[l]!.sort((a, b) => a.smallest < b.smallest ? -1 : 1);
  }
  assert.deepEqual(rebuilt, state, `seed ${seed}`);
  // A table in two of the edits is caught, as in one.
  const twice = [...edits, { added: [edits[1]!.added[0]!], removed: [] }];
  const again = emptyState();
  assert.throws(
    () => twice.forEach((edit, i) => applyEdit(again, edit, "test", i)),
    /twice/,
  );
});

Deno.test("a store whose tables' keys add up past one edit's limit reopens", async () => {
  const env = new MemEnv();
  const options = {
    env,
    tableBytes: 1024, // every 64 KiB key fills a table alone
    l0MergeTrigger: 1000,
    idleMergeMs: 0,
  };
  let store = await openStore("/db", options);
  const keyOf = (i: number) =>
    String(i).padStart(6, "0") + "k".repeat(KEY_BYTES_MAX - 6);
  const n = Math.ceil(MANIFEST_EDIT_BYTES_MAX / (2 * KEY_BYTES_MAX)) + 10;
  for (let i = 0; i < n; i++) await store.put(keyOf(i), `v${i}`);
  await store.settle();
  const tables = store.stats().levels.reduce((sum, l) => sum + l.tables, 0);
  assert.ok(tables >= n - 10, `${tables} tables`);
  await store.close();
  store = await openStore("/db", options);
  for (const i of [0, n >> 1, n - 1]) {
    assert.equal(text(await store.get(keyOf(i))), `v${i}`);
  }
  await store.close();
});

Deno.test("a manifest whose snapshot outweighs the rotation size is rewritten once its edits outweigh the snapshot, not at every edit", async () => {
  const env = new MemEnv();
  const store = await openStore("/db", {
    env,
    memtableBytes: 4096,
    tableBytes: 1024,
    l0MergeTrigger: 1000,
    idleMergeMs: 0,
    manifestRotateBytes: 64,
  });
  // About 150 tables of two 1 KiB keys: a snapshot of some 300 KiB.
  const big = (i: number) => String(i).padStart(6, "0") + "b".repeat(1024);
  for (let i = 0; i < 150; i++) await store.put(big(i), "x");
  await store.settle();
  const names = new Set<string>();
  const flushesBefore = store.stats().flushes;
  // Then flushes of small tables, each one edit.
  for (let i = 0; i < 400; i++) {
    await store.put(`s${String(i).padStart(4, "0")}`, "y".repeat(200));
    if (i % 10 === 9) {
      await store.settle();
      names.add(store.manifestName);
    }
  }
  await store.settle();
  const edits = store.stats().flushes - flushesBefore;
  assert.ok(edits >= 20, `${edits} flushes`);
  assert.ok(
    names.size <= 4,
    `${names.size} manifests over ${edits} flushes: rewritten at every edit`,
  );
  assert.equal(text(await store.get(big(7))), "x");
  await store.close();
});

Deno.test("a leftover file that cannot be removed fails the creation of CURRENT, a manifest or a table, rather than being appended to", async () => {
  const mem = new MemEnv();
  await mem.mkdirAll("/db");
  const leftovers = [
    "/db/CURRENT.tmp",
    "/db/MANIFEST-000007",
    "/db/000009.sst.tmp",
  ];
  for (const path of leftovers) {
    const f = await mem.openWritable(path);
    f.append(new TextEncoder().encode("garbage from before a crash\n"));
    await f.syncData();
    f.close();
  }
  // Removal refused (as on a directory without write permission); the
  // files themselves can still be opened for appending.
  const env = overriding(mem, {
    remove: (path) =>
      leftovers.includes(path)
        ? Promise.reject(
          Object.assign(new Error("EACCES: permission denied"), {
            code: "EACCES",
          }),
        )
        : mem.remove(path),
  });
  await assert.rejects(writeCurrent(env, "/db", "MANIFEST-000003"), /EACCES/);
  await assert.rejects(
    ManifestWriter.create(env, "/db", 7, emptyState()),
    /EACCES/,
  );
  await assert.rejects(
    TableWriter.create(env, "/db", 9, { blockBytes: 512, bloomBitsPerKey: 10 }),
    /EACCES/,
  );
  // A missing leftover is no failure.
  const manifest = await ManifestWriter.create(mem, "/db", 8, emptyState());
  manifest.close();
  assert.equal(await readCurrent(mem, "/db"), "MANIFEST-000008");
});

Deno.test("a bad frame followed by edit-like bytes is decided within a search budget as damage, not searched for minutes", async () => {
  const env = new MemEnv();
  await env.mkdirAll("/db");
  const manifest = await ManifestWriter.create(env, "/db", 2, emptyState());
  manifest.close();
  const file = await env.openWritable("/db/MANIFEST-000002");
  // A frame whose checksum fails, then 256 KiB whose every fourth offset
  // reads as a frame of 200 KiB.
  file.append(new Uint8Array([1, 2, 3, 4, 10, 0, 0, 0, 9, 9]));
  const pattern = new Uint8Array(256 * 1024);
  for (let i = 0; i < pattern.length; i += 4) {
    pattern.set([0x00, 0x20, 0x03, 0x00], i);
  }
  file.append(pattern);
  await file.syncData();
  file.close();
  await assert.rejects(
    readManifest(env, "/db", "MANIFEST-000002"),
    /too much like edits to tell a torn write from damage/,
  );
});

/** Offsets and lengths of the frames of manifest bytes `m`. */
function frames(m: Uint8Array): Array<{ at: number; length: number }> {
  const out: Array<{ at: number; length: number }> = [];
  const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
  for (let at = 0; at + 8 <= m.length;) {
    const length = view.getUint32(at + 4, true);
    out.push({ at, length });
    at += 8 + length;
  }
  return out;
}

Deno.test("a damaged last edit of a snapshot is damage, not a torn write: the snapshot's tables are not dropped", async () => {
  await using tmp = await tempDir();
  const state: ManifestState = { ...emptyState(), nextFile: 500, lastSeq: 9 };
  // Tables with long keys: a snapshot of several edits.
  for (let i = 0; i < 40; i++) {
    const smallest = `${String(i).padStart(4, "0")}${"k".repeat(60_000)}`;
    state.levels[1]!.push({
      fileNumber: 10 + i,
      size: 1000,
      entries: 1,
      tombstones: 0,
      smallest,
      largest: smallest + "z",
      minSeq: 1,
      maxSeq: 9,
    });
  }
  const edits = snapshotEdits(state).length;
  assert.ok(edits >= 2, `${edits} snapshot edits`);
  const writer = await ManifestWriter.create(denoEnv, tmp.path, 2, state);
  writer.close();
  const path = `${tmp.path}/MANIFEST-000002`;
  const whole = await Deno.readFile(path);
  const framed = frames(whole);
  // The snapshot's edits, then the edit that ends it.
  assert.equal(framed.length, edits + 1);
  assert.deepEqual(
    (await readManifest(denoEnv, tmp.path, "MANIFEST-000002")).state,
    state,
  );
  // A bit flipped in the snapshot's last edit: refused, whatever follows.
  const last = framed[edits - 1]!;
  const bad = whole.slice();
  bad[last.at + 8 + (last.length >> 1)]! ^= 0x10;
  await Deno.writeFile(path, bad);
  await assert.rejects(
    readManifest(denoEnv, tmp.path, "MANIFEST-000002"),
    (e: Error) =>
      e instanceof CorruptionError &&
      /at offset \d+: bad frame, and valid edits follow/.test(e.message),
  );
  // The ending edit damaged instead reads as a torn tail: the snapshot is
  // whole without it.
  const end = framed[edits]!;
  const torn = whole.slice();
  torn[end.at + 8]! ^= 0x10;
  await Deno.writeFile(path, torn);
  const read = await readManifest(denoEnv, tmp.path, "MANIFEST-000002");
  assert.deepEqual(read.state, state);
  assert.equal(read.tornBytes, 8 + end.length);
});

Deno.test("ADD_LOG records the WAL segments made; a log number drops those below it; out of order is corruption", () => {
  const edit = { added: [], removed: [], addedLogs: [7, 9] };
  const decoded = decodeEdit(encodeEdit(edit), "test", 0);
  assert.deepEqual(decoded.addedLogs, [7, 9]);
  const state = emptyState();
  applyEdit(state, decoded, "test", 0);
  applyEdit(state, { added: [], removed: [], addedLogs: [12] }, "test", 1);
  assert.deepEqual(state.logs, [7, 9, 12]);
  applyEdit(state, { added: [], removed: [], logNumber: 9 }, "test", 2);
  assert.deepEqual(state.logs, [9, 12]);
  assert.throws(
    () => applyEdit(state, { added: [], removed: [], addedLogs: [11] }, "M", 3),
    (e: unknown) =>
      e instanceof CorruptionError && /adds WAL segment 11 after segment 12/
        .test(e.message),
  );
});

Deno.test("a manifest whose level-1 tables overlap is refused at open: reads search those levels by key", async () => {
  await using tmp = await tempDir();
  const options = {
    memtableBytes: 4096,
    l0MergeTrigger: 2,
    idleMergeMs: 0,
    background: "inline" as const,
  };
  const store = await openStore(tmp.path, options);
  for (let i = 0; i < 400; i++) {
    await store.put(`key${String(i).padStart(4, "0")}`, "v".repeat(40));
  }
  await store.settle();
  await store.close();
  const current = (await readCurrent(denoEnv, tmp.path))!;
  const { state } = await readManifest(denoEnv, tmp.path, current);
  const l1 = state.levels[1]!;
  assert.ok(l1.length > 0, "a table in level 1");
  // A copy of a level-1 table under a new number, recorded at level 1 too:
  // a valid table whose key range overlaps its original's.
  const copy = { ...l1[0]!, fileNumber: state.nextFile };
  await Deno.copyFile(
    `${tmp.path}/${tableName(l1[0]!.fileNumber)}`,
    `${tmp.path}/${tableName(copy.fileNumber)}`,
  );
  const edit = frameEdit(encodeEdit({
    nextFile: copy.fileNumber + 1,
    added: [{ level: 1, meta: copy }],
    removed: [],
  }));
  await Deno.writeFile(`${tmp.path}/${current}`, edit, { append: true });
  const report = await checkStore(denoEnv, tmp.path);
  assert.match(report.problems.join("\n"), /level 1: tables .* overlap/);
  await assert.rejects(
    openStore(tmp.path, options),
    (e: unknown) =>
      e instanceof CorruptionError &&
      /level 1 tables \d+\.sst and \d+\.sst overlap/.test(e.message),
  );
});
