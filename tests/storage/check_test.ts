/**
 * kv check: a healthy store checks clean; a flipped bit in a table or the
 * WAL, a missing table, or a table of the wrong size is reported (naming
 * the file); a torn WAL tail is only a note. The CLI exits 1 on problems.
 */
import assert from "node:assert/strict";
import {
  checkStore,
  CorruptionError,
  openStore,
  StoreFailedError,
} from "../../storage/mod.ts";
import { Prng } from "../../util/mod.ts";
import { denoEnv } from "../../storage/env_deno.ts";
import { names, tempDir, testSeed, text } from "../helpers.ts";
import { runKv } from "../kv_process.ts";

async function makeStore(dir: string): Promise<void> {
  const store = await openStore(dir, {
    memtableBytes: 4096,
    l0MergeTrigger: 100,
  });
  for (let i = 0; i < 1500; i++) {
    await store.put(`key${i % 400}`, `value ${i} ${"z".repeat(i % 40)}`);
  }
  await store.settle();
  await store.close();
}

async function flip(path: string, at: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  bytes[at]! ^= 0x20;
  await Deno.writeFile(path, bytes);
}

Deno.test("a healthy store checks clean", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  const r = await checkStore(denoEnv, tmp.path);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.notes, []);
  assert.ok(r.tables > 0 && r.blocks > 0 && r.tableEntries > 0);
  assert.ok(r.walRecords > 0);
  const cli = await runKv(["check", tmp.path]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^OK: every checksum verified/m);
});

Deno.test("a flipped bit in a table is a problem naming the table", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  const table = (await names(tmp.path)).find((n) => n.endsWith(".sst"))!;
  await flip(`${tmp.path}/${table}`, 50);
  const r = await checkStore(denoEnv, tmp.path);
  assert.equal(r.problems.length, 1, r.problems.join("\n"));
  assert.match(r.problems[0]!, new RegExp(`${table}.*checksum mismatch`));
  const cli = await runKv(["--data", tmp.path, "check"]);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /problem: .*checksum mismatch/);
});

Deno.test("a missing or truncated table is a problem", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  const tables = (await names(tmp.path)).filter((n) => n.endsWith(".sst"));
  assert.ok(tables.length >= 2, `${tables.length} tables`);
  await Deno.remove(`${tmp.path}/${tables[0]}`);
  const bytes = await Deno.readFile(`${tmp.path}/${tables[1]}`);
  await Deno.writeFile(
    `${tmp.path}/${tables[1]}`,
    bytes.subarray(0, bytes.length - 1),
  );
  const r = await checkStore(denoEnv, tmp.path);
  assert.ok(
    r.problems.some((p) => p.includes(tables[0]!) && p.includes("missing")),
    r.problems.join("\n"),
  );
  assert.ok(
    r.problems.some((p) => p.includes(tables[1]!)),
    r.problems.join("\n"),
  );
});

Deno.test("WAL damage with records after it is a problem; a torn tail is a note", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  const segment = (await names(tmp.path)).find((n) => n.endsWith(".log"))!;
  const path = `${tmp.path}/${segment}`;
  const good = await Deno.readFile(path);
  assert.ok(good.length > 200, `segment of ${good.length} bytes`);
  await Deno.writeFile(path, good.subarray(0, good.length - 3));
  let r = await checkStore(denoEnv, tmp.path);
  assert.deepEqual(r.problems, []);
  assert.ok(r.notes.some((n) => n.includes("torn tail")), r.notes.join("\n"));
  // --repair would be a promise check does not keep: it changes nothing.
  assert.deepEqual(await runKv(["check", "--repair", tmp.path]), {
    code: 2,
    stdout: "",
    stderr:
      "Error: --repair does not apply to check, which reads a store without changing it\n",
  });
  // The CLI does not claim every checksum verified: the tail's did not.
  const cli = await runKv(["check", tmp.path]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(
    cli.stdout,
    /^OK: nothing damaged \(only the torn tails noted\), nothing missing or inconsistent$/m,
  );
  await Deno.writeFile(path, good);
  await flip(path, 20);
  r = await checkStore(denoEnv, tmp.path);
  assert.ok(
    r.problems.some((p) =>
      p.includes(segment) && p.includes("valid records after")
    ),
    r.problems.join("\n"),
  );
});

Deno.test("damage at the end of a segment with a later one (even empty) is corruption, not a torn tail: check, open and --repair say so", async () => {
  // A segment is made only once the one before it is synced whole: with a
  // later one on disk, a bad end is damage to acknowledged records. Cut as
  // a torn tail, the last put went without a word, and check said OK.
  for (const later of [new Uint8Array(0), new Uint8Array(4096)]) {
    await using tmp = await tempDir();
    let store = await openStore(tmp.path, { background: "inline" });
    for (let i = 0; i < 10; i++) await store.put(`k${i}`, `v${i}`);
    await store.close();
    const segment = `${tmp.path}/000001.log`;
    const bytes = await Deno.readFile(segment);
    bytes[bytes.length - 3]! ^= 0x10;
    await Deno.writeFile(segment, bytes);
    await Deno.writeFile(`${tmp.path}/000007.log`, later);
    const report = await checkStore(denoEnv, tmp.path);
    // (4096 zeros are the later segment's own torn tail, which is fine.)
    assert.doesNotMatch(report.notes.join("\n"), /000001\.log/);
    assert.match(
      report.problems.join("\n"),
      /000001\.log: checksum mismatch at offset \d+, and a later segment \(000007\.log\) exists/,
    );
    await assert.rejects(
      openStore(tmp.path, { background: "inline" }),
      (error: unknown) =>
        error instanceof CorruptionError &&
        error.file === segment &&
        /a later segment \(000007\.log\) exists.*not a torn write.*--repair/
          .test(error.message),
    );
    store = await openStore(tmp.path, { background: "inline", repair: true });
    assert.equal(await store.count(), 9);
    const recovery = store.stats().recovery!;
    assert.equal(recovery.repaired.length, 1);
    assert.equal(recovery.truncated.length, 0);
    assert.deepEqual(recovery.removedSegments, ["000007.log"]);
    await store.close();
    // Set aside, not deleted.
    assert.ok(
      (await names(`${tmp.path}/lost`)).some((n) =>
        n.startsWith("000007.log.")
      ),
    );
  }
});

Deno.test("bit rot in any file never reads back wrong data: a checksum error names the file", async () => {
  const seed = testSeed("bit rot");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  // The truth, read before any damage.
  const truth = new Map<string, string>();
  let store = await openStore(tmp.path);
  for await (const e of store.scan()) truth.set(text(e.key)!, text(e.value)!);
  await store.close();
  const pristine = new Map<string, Uint8Array>();
  for (const n of await names(tmp.path)) {
    if (n !== "LOCK") pristine.set(n, await Deno.readFile(`${tmp.path}/${n}`));
  }
  for (let trial = 0; trial < 30; trial++) {
    const files = (await names(tmp.path)).filter((n) =>
      /\.(sst|log)$|^MANIFEST-/.test(n)
    );
    const name = files[rng.int(files.length)]!;
    const path = `${tmp.path}/${name}`;
    const good = await Deno.readFile(path);
    const bad = good.slice();
    bad[rng.int(bad.length)]! ^= 1 << rng.int(8);
    await Deno.writeFile(path, bad);
    const where = `seed ${seed} trial ${trial} (${name})`;
    try {
      store = await openStore(tmp.path);
      try {
        for (const [key, value] of truth) {
          const got = await store.get(key);
          // A WAL tail that reads as torn is cut, so a key may read back
          // older or absent there; anywhere else, every key must read back
          // exactly (or the read must fail).
          if (!name.endsWith(".log") && text(got) !== value) {
            assert.fail(`${where}: ${key} read back ${text(got)} not ${value}`);
          }
        }
      } finally {
        await store.close();
      }
    } catch (error) {
      // Damage found at open or on a read is a CorruptionError naming the
      // file; found by a background merge, it stops the store (fail-stop)
      // with the same message.
      if (error instanceof CorruptionError) {
        assert.ok(
          error.file.endsWith(name),
          `${where}: error names ${error.file}: ${error.message}`,
        );
      } else if (error instanceof StoreFailedError) {
        assert.ok(error.message.includes(name), `${where}: ${error.message}`);
      } else {
        throw error;
      }
    }
    // Put the pristine directory back (recovery may have cut or removed).
    await Deno.remove(tmp.path, { recursive: true });
    await Deno.mkdir(tmp.path);
    for (const [n, bytes] of pristine) {
      await Deno.writeFile(`${tmp.path}/${n}`, bytes);
    }
  }
});

Deno.test("without a readable manifest, check calls no table unneeded and no log out of sequence", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  const current = (await Deno.readTextFile(`${tmp.path}/CURRENT`)).trim();
  const manifest = await Deno.readFile(`${tmp.path}/${current}`);
  // CURRENT gone; then a manifest damaged with valid edits after it.
  const damages: Array<[string, () => Promise<void>, RegExp]> = [
    [
      "no CURRENT",
      () => Deno.remove(`${tmp.path}/CURRENT`),
      /holds tables but no CURRENT file/,
    ],
    [
      "a bad manifest frame",
      async () => {
        await Deno.writeTextFile(`${tmp.path}/CURRENT`, `${current}\n`);
        const bad = manifest.slice();
        bad[10]! ^= 0x20;
        await Deno.writeFile(`${tmp.path}/${current}`, bad);
      },
      /bad frame, and valid edits follow/,
    ],
  ];
  for (const [what, damage, problem] of damages) {
    await damage();
    const r = await checkStore(denoEnv, tmp.path);
    assert.equal(r.problems.length, 1, `${what}: ${r.problems.join("\n")}`);
    assert.match(r.problems[0]!, problem, what);
    assert.deepEqual(
      r.notes.filter((n) => n.includes("not needed")),
      [],
      `${what}: a table an open keeps is not called unneeded`,
    );
  }
});

Deno.test("files a crash left half written are notes, as the next open removes them", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  for (const name of ["CURRENT.tmp", "000999.sst.tmp", "000998.log.tmp"]) {
    await Deno.writeTextFile(`${tmp.path}/${name}`, "half");
  }
  const r = await checkStore(denoEnv, tmp.path);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.notes.toSorted(), [
    "000998.log.tmp: left by a write a crash interrupted (removed at the next open)",
    "000999.sst.tmp: left by a write a crash interrupted (removed at the next open)",
    "CURRENT.tmp: left by a write a crash interrupted (removed at the next open)",
  ]);
  const store = await openStore(tmp.path);
  await store.close();
  assert.deepEqual(
    (await names(tmp.path)).filter((n) => n.endsWith(".tmp")),
    [],
    "removed at open",
  );
});

Deno.test("stats still answers with a damaged table, saying why its count is not exact", async () => {
  await using tmp = await tempDir();
  await makeStore(tmp.path);
  const table = (await names(tmp.path)).find((n) => n.endsWith(".sst"))!;
  await flip(`${tmp.path}/${table}`, 50);
  const stats = await runKv(["--data", tmp.path, "stats"]);
  assert.equal(stats.code, 0, stats.stderr);
  assert.match(
    stats.stdout,
    new RegExp(
      `^  num_keys_exact: no \\(an upper bound: counting failed: Corrupt table ".*${table}".*checksum mismatch`,
      "m",
    ),
  );
  assert.match(stats.stdout, /^ {2}last_sequence: 1500$/m);
});

Deno.test("a deleted live WAL segment is a problem, and the next one is not blamed for the gap", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { memtableBytes: 4096 });
  for (let i = 0; i < 100; i++) await store.put(`k${i}`, "v".repeat(30));
  await store.close();
  const segments = (await names(tmp.path)).filter((n) => n.endsWith(".log"));
  assert.ok(segments.length >= 1, segments.join(" "));
  // The oldest segment the manifest needs.
  await Deno.remove(`${tmp.path}/${segments[0]}`);
  const r = await checkStore(denoEnv, tmp.path);
  assert.ok(
    r.problems.some((p) => p.startsWith(`${segments[0]}: missing`)),
    r.problems.join("\n"),
  );
  assert.ok(
    !r.problems.some((p) => p.includes("does not follow")),
    r.problems.join("\n"),
  );
  const cli = await runKv(["check", tmp.path]);
  assert.equal(cli.code, 1, cli.stdout + cli.stderr);
});

Deno.test("kv check reports a table swapped for one of the same size, keys and entries (only its sequence numbers differ), as open refuses it", async () => {
  await using tmp = await tempDir();
  const options = {
    l0MergeTrigger: 1000,
    idleMergeMs: 0,
    background: "inline" as const,
  };
  // The same keys and value sizes twice: two level-0 tables alike but for
  // their sequence numbers (and values). A write to a reopened store whose
  // replayed memtable is over a tiny size flushes it first.
  const session = async (
    memtableBytes: number,
    from: number,
    to: number,
    v: string,
  ) => {
    const store = await openStore(tmp.path, { ...options, memtableBytes });
    for (let i = from; i < to; i++) await store.put(`key${i}`, `${v}${i}`);
    await store.settle();
    await store.close();
  };
  await session(1 << 20, 0, 50, "a");
  await session(1024, 0, 1, "b"); // flushes round a's keys
  await session(1 << 20, 1, 50, "b");
  await session(1024, 0, 1, "c"); // flushes round b's keys
  const tables = (await names(tmp.path)).filter((n) => n.endsWith(".sst"));
  assert.equal(tables.length, 2, `two tables: ${tables}`);
  const [older, newer] = tables as [string, string];
  const size = async (n: string) => (await Deno.stat(`${tmp.path}/${n}`)).size;
  assert.equal(await size(older), await size(newer));
  await Deno.copyFile(`${tmp.path}/${newer}`, `${tmp.path}/${older}`);
  const report = await checkStore(denoEnv, tmp.path);
  assert.match(
    report.problems.join("\n"),
    new RegExp(`${older}: not the table the manifest recorded`),
  );
  await assert.rejects(
    openStore(tmp.path, options),
    (e: unknown) =>
      e instanceof CorruptionError &&
      /is not the table manifest/.test(e.message),
  );
});

Deno.test("a directory where a store file belongs is named in open's error and in kv check's problems, not a bare EISDIR", async () => {
  for (const name of ["CURRENT", "000009.log"]) {
    await using tmp = await tempDir();
    const store = await openStore(tmp.path);
    await store.put("k", "v");
    await store.close();
    await Deno.remove(`${tmp.path}/${name}`).catch(() => {});
    await Deno.mkdir(`${tmp.path}/${name}`);
    await assert.rejects(
      openStore(tmp.path),
      (e: unknown) =>
        e instanceof Error &&
        e.message.includes(`"${tmp.path}/${name}" is a directory`),
    );
    const report = await checkStore(denoEnv, tmp.path);
    assert.match(
      report.problems.join("\n"),
      new RegExp(`${name.replace(".", "\\.")}" is a directory`),
    );
  }
});
