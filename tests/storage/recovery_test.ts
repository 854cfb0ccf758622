/**
 * Crash recovery of the WAL: torn tails at every byte offset, zeros and
 * garbage after the last record, corruption in the middle, and --repair.
 * Method: write records through the store, then edit the segment file
 * directly and reopen.
 */
import assert from "node:assert/strict";
import { CorruptionError, openStore } from "../../storage/mod.ts";
import {
  encodedRecordBytes,
  SegmentReader,
  type WalOp,
} from "../../storage/wal.ts";
import { denoEnv } from "../../storage/env_deno.ts";
import { MemEnv } from "../../storage/env_mem.ts";
import { checkStore } from "../../storage/check.ts";
import { describeRecovery } from "../../cli/render.ts";
import {
  crc32c,
  getFixed32,
  maskCrc,
  Prng,
  putFixed32,
} from "../../util/mod.ts";
import {
  BatchOpKind,
  WAL_HEADER_BYTES,
  WAL_TYPE_CRC32,
} from "../../storage/format.ts";
import {
  names,
  overriding,
  tempDir,
  testSeed,
  text,
  wrapWritable,
} from "../helpers.ts";

const SEGMENT = "000001.log";

/** Writes `n` puts (k0..) and a batch; returns the record end offsets. */
async function writeRecords(dir: string, n: number): Promise<number[]> {
  const store = await openStore(dir);
  for (let i = 0; i < n; i++) {
    await store.put(`k${i}`, `value-${i}`.repeat(1 + (i % 3)));
  }
  await store.batch([{ type: "put", key: "b1", value: "x" }, {
    type: "put",
    key: "b2",
    value: "y",
  }]);
  await store.close();
  const ends = (await segmentRecords(`${dir}/${SEGMENT}`)).records.map((r) =>
    r.end
  );
  assert.equal(ends.length, n + 1);
  return ends;
}

/** Keys a store holds, in order. */
async function keysOf(dir: string): Promise<string[]> {
  const store = await openStore(dir);
  const keys: string[] = [];
  for await (const e of store.scan()) keys.push(text(e.key)!);
  await store.close();
  return keys;
}

function expectedKeys(records: number, n: number): string[] {
  const keys = Array.from({ length: Math.min(records, n) }, (_, i) => `k${i}`);
  if (records > n) keys.push("b1", "b2");
  return keys.sort();
}

Deno.test("recovery cuts a torn final record at every byte offset and accepts writes after", async () => {
  await using tmp = await tempDir();
  const n = 6;
  const ends = await writeRecords(tmp.path, n);
  const full = await Deno.readFile(`${tmp.path}/${SEGMENT}`);
  const firstCut = ends[n - 2]!; // inside the last two records
  let checked = 0;
  for (let cut = firstCut; cut < full.length; cut++) {
    await Deno.writeFile(`${tmp.path}/${SEGMENT}`, full.subarray(0, cut));
    const complete = ends.filter((e) => e <= cut).length;
    const store = await openStore(tmp.path);
    const torn = cut > (ends[complete - 1] ?? 0);
    assert.equal(store.recovery.truncated.length, torn ? 1 : 0, `cut ${cut}`);
    if (torn) {
      assert.equal(store.recovery.truncated[0]!.offset, ends[complete - 1]);
    }
    assert.equal(store.recovery.records, complete);
    await store.put("after", "crash");
    await store.close();
    const keys = await keysOf(tmp.path);
    assert.deepEqual(
      keys,
      [...expectedKeys(complete, n), "after"].sort(),
      `cut ${cut}`,
    );
    checked++;
  }
  assert.ok(checked > 20, `checked ${checked} offsets`);
});

Deno.test("zeros or random garbage after the last record are cut as a torn tail", async () => {
  const seed = testSeed("garbage tail");
  const rng = new Prng(seed);
  await using tmp = await tempDir();
  const ends = await writeRecords(tmp.path, 4);
  const full = await Deno.readFile(`${tmp.path}/${SEGMENT}`);
  const tails = [
    new Uint8Array(9),
    new Uint8Array(4096),
    rng.bytes(1),
    rng.bytes(100),
    rng.bytes(5000),
  ];
  for (const tail of tails) {
    const bytes = new Uint8Array(full.length + tail.length);
    bytes.set(full);
    bytes.set(tail, full.length);
    await Deno.writeFile(`${tmp.path}/${SEGMENT}`, bytes);
    const store = await openStore(tmp.path);
    assert.equal(store.recovery.records, ends.length);
    assert.equal(store.recovery.truncated.length, 1);
    const cut = store.recovery.truncated[0]!;
    assert.equal(cut.bytes, tail.length);
    assert.equal(text(await store.get("k3")), "value-3");
    await store.close();
    assert.equal((await Deno.stat(`${tmp.path}/${SEGMENT}`)).size, full.length);
    // Nothing but zeros is cut without a copy in lost/.
    if (tail.every((b) => b === 0)) {
      assert.equal(cut.lost, undefined);
    } else {
      assert.ok(cut.lost, `a copy of the ${tail.length} bytes cut`);
      assert.deepEqual(
        await Deno.readFile(`${tmp.path}/lost/${cut.lost}`),
        tail,
      );
    }
  }
});

Deno.test("a flipped bit in the last record cuts it as a torn tail, keeping a copy in lost/", async () => {
  await using tmp = await tempDir();
  const ends = await writeRecords(tmp.path, 8);
  const path = `${tmp.path}/${SEGMENT}`;
  const damaged = await Deno.readFile(path);
  const last = ends[7]!; // the last record (the batch) starts here
  damaged[last + 12]! ^= 0x10;
  await Deno.writeFile(path, damaged);
  const store = await openStore(tmp.path);
  assert.equal(store.recovery.records, 8);
  const [cut] = store.recovery.truncated;
  assert.ok(cut?.lost, JSON.stringify(store.recovery.truncated));
  assert.equal(cut.offset, last);
  assert.equal(await store.get("b1"), undefined);
  assert.equal(text(await store.get("k7")), "value-7value-7");
  await store.close();
  assert.deepEqual(await names(`${tmp.path}/lost`), [cut.lost]);
  assert.deepEqual(
    await Deno.readFile(`${tmp.path}/lost/${cut.lost}`),
    damaged.subarray(last),
  );
});

Deno.test("a torn tail's copy in lost/ leaves out the zeros after its last block and is durable before the cut: a power cut right after the open keeps it", async () => {
  const mem = new MemEnv();
  const options = { env: mem, background: "inline" as const, idleMergeMs: 0 };
  const store = await openStore("/db", options);
  for (let i = 0; i < 5; i++) await store.put(`k${i}`, `value-${i}`);
  await store.close();
  const segment = (await mem.list("/db")).find((n) => n.endsWith(".log"))!;
  // A torn record and then preallocated zeros, as a crash leaves them.
  const garbage = new Prng(7).bytes(300);
  garbage[299] = 0xff;
  const tail = new Uint8Array(300 + 64 * 1024);
  tail.set(garbage);
  const f = await mem.openWritable(`/db/${segment}`);
  f.append(tail);
  await f.syncData();
  f.close();
  const opened = await openStore("/db", options);
  const [cut] = opened.recovery.truncated;
  assert.ok(cut?.lost, JSON.stringify(opened.recovery));
  assert.equal(cut.bytes, tail.length);
  assert.equal(
    cut.lostBytes,
    4096,
    "the copy ends with the 4 KiB block of the last non-zero byte",
  );
  assert.match(
    describeRecovery(opened.stats()),
    new RegExp(
      `its first 4096 bytes \\(the rest zeros\\) copied to lost/${cut.lost}`,
    ),
  );
  // No close: the power goes now. Whatever the disk kept of unsynced
  // writes, the copy and its name in lost/ are there, the log cut.
  for (let seed = 1; seed <= 20; seed++) {
    const after = mem.powerCut(new Prng(seed));
    assert.deepEqual(await after.list("/db/lost"), [cut.lost], `seed ${seed}`);
    const r = await after.openReadable(`/db/lost/${cut.lost}`);
    const copy = new Uint8Array(r.size);
    await r.read(0, copy);
    r.close();
    assert.deepEqual(copy, tail.subarray(0, 4096), `seed ${seed}`);
  }
  await opened.close();
});

Deno.test("a lost/ that is not a directory stops the open before anything is cut, saying what to do", async () => {
  await using tmp = await tempDir();
  await writeRecords(tmp.path, 3);
  const path = `${tmp.path}/${SEGMENT}`;
  const full = await Deno.readFile(path);
  const torn = new Uint8Array(full.length + 40).fill(0x5a);
  torn.set(full);
  await Deno.writeFile(path, torn);
  await Deno.writeTextFile(`${tmp.path}/lost`, "someone's notes");
  await assert.rejects(
    openStore(tmp.path),
    /^Error: Cannot set aside in ".*lost" what recovery cuts from ".*000001\.log" at offset \d+ \(.*\): .*\. Nothing was cut: make ".*lost" a directory kv can write \(move aside whatever is there\) and open again$/,
  );
  assert.deepEqual(await Deno.readFile(path), torn, "nothing was cut");
  await Deno.remove(`${tmp.path}/lost`);
  const store = await openStore(tmp.path);
  assert.ok(store.recovery.truncated[0]?.lost);
  await store.close();
});

Deno.test("a flipped bit in a middle record refuses to open, naming file and offset", async () => {
  await using tmp = await tempDir();
  const ends = await writeRecords(tmp.path, 8);
  const path = `${tmp.path}/${SEGMENT}`;
  const full = await Deno.readFile(path);
  const damaged = full.slice();
  const at = ends[2]! + 12; // inside record 3's payload
  damaged[at]! ^= 0x10;
  await Deno.writeFile(path, damaged);
  await assert.rejects(openStore(tmp.path), (error: unknown) => {
    assert.ok(error instanceof CorruptionError);
    assert.equal(error.offset, ends[2]);
    assert.ok(error.file.endsWith(SEGMENT));
    assert.match(error.message, /000001\.log.*offset \d+.*--repair/);
    return true;
  });
  // Refusing touched nothing.
  assert.deepEqual(await Deno.readFile(path), damaged);
});

Deno.test("--repair keeps the valid prefix and copies the rest to lost/", async () => {
  await using tmp = await tempDir();
  const ends = await writeRecords(tmp.path, 8);
  const path = `${tmp.path}/${SEGMENT}`;
  const damaged = await Deno.readFile(path);
  damaged[ends[2]! + 12]! ^= 0x10;
  await Deno.writeFile(path, damaged);
  const store = await openStore(tmp.path, { repair: true });
  assert.equal(store.recovery.records, 3);
  assert.equal(store.recovery.repaired.length, 1);
  assert.equal(store.recovery.repaired[0]!.bytes, damaged.length - ends[2]!);
  const lostNames = await names(`${tmp.path}/lost`);
  assert.equal(lostNames.length, 1);
  assert.match(lostNames[0]!, new RegExp(`^${SEGMENT}\\.${ends[2]}\\.\\d+$`));
  const lost = await Deno.readFile(`${tmp.path}/lost/${lostNames[0]}`);
  assert.deepEqual(lost, damaged.subarray(ends[2]!));
  await store.put("new", "1");
  await store.close();
  assert.deepEqual(await keysOf(tmp.path), ["k0", "k1", "k2", "new"]);
});

Deno.test("damage in an earlier segment with valid records in a later one is corruption", async () => {
  await using tmp = await tempDir();
  await writeRecords(tmp.path, 3);
  const path = `${tmp.path}/${SEGMENT}`;
  const full = await Deno.readFile(path);
  // A later segment continuing the sequence, then a torn end on the first.
  await writeRecords(`${tmp.path}/other`, 3);
  const store = await openStore(`${tmp.path}/other`);
  await store.close();
  await Deno.writeFile(path, full.subarray(0, full.length - 3));
  const later = await Deno.readFile(`${tmp.path}/other/${SEGMENT}`);
  // Renumber sequences is not possible by hand, so any valid record counts.
  await Deno.writeFile(`${tmp.path}/000002.log`, later);
  await Deno.remove(`${tmp.path}/other`, { recursive: true });
  await assert.rejects(openStore(tmp.path), CorruptionError);
});

Deno.test("a record with a good checksum but a repeated sequence number is corruption", async () => {
  await using tmp = await tempDir();
  await writeRecords(tmp.path, 3);
  const path = `${tmp.path}/${SEGMENT}`;
  const full = await Deno.readFile(path);
  // Appending the log to itself repeats sequence numbers 1.. after the end.
  const doubled = new Uint8Array(full.length * 2);
  doubled.set(full);
  doubled.set(full, full.length);
  await Deno.writeFile(path, doubled);
  await assert.rejects(openStore(tmp.path), (error: unknown) => {
    assert.ok(error instanceof CorruptionError);
    assert.equal(error.offset, full.length);
    assert.match(error.message, /sequence number 1 does not follow/);
    return true;
  });
});

/**
 * Rewrites the record at `at` as records were written before format 2:
 * type byte without WAL_TYPE_CRC32, checksum CRC-32C.
 */
function toCrc32cRecord(bytes: Uint8Array, at: number): void {
  const end = at + WAL_HEADER_BYTES + getFixed32(bytes, at + 4);
  bytes[at + 8] = bytes[at + 8]! & ~WAL_TYPE_CRC32;
  putFixed32(bytes, at, maskCrc(crc32c(bytes, at + 4, end)));
}

Deno.test("records checksummed with CRC-32C before format 2 still replay, next to new ones", async () => {
  await using tmp = await tempDir();
  const n = 5;
  const ends = await writeRecords(tmp.path, n);
  const path = `${tmp.path}/${SEGMENT}`;
  const full = await Deno.readFile(path);
  // Records 0, 2 and the batch become old records; 1, 3 and 4 stay new.
  for (const i of [0, 2, n]) toCrc32cRecord(full, i === 0 ? 0 : ends[i - 1]!);
  await Deno.writeFile(path, full);
  assert.deepEqual(await keysOf(tmp.path), expectedKeys(n + 1, n));
  const store = await openStore(tmp.path);
  assert.equal(text(await store.get("b2")), "y");
  assert.equal(text(await store.get("k2")), "value-2value-2value-2");
  assert.equal(store.stats().recovery.records, n + 1);
  await store.close();
});

Deno.test("a record whose checksum-kind bit flipped fails its checksum", async () => {
  await using tmp = await tempDir();
  const ends = await writeRecords(tmp.path, 4);
  const path = `${tmp.path}/${SEGMENT}`;
  const full = await Deno.readFile(path);
  full[ends[1]! + 8]! ^= WAL_TYPE_CRC32;
  await Deno.writeFile(path, full);
  await assert.rejects(openStore(tmp.path), (error: unknown) => {
    assert.ok(error instanceof CorruptionError);
    assert.equal(error.offset, ends[1]);
    assert.match(error.message, /checksum mismatch/);
    return true;
  });
});

Deno.test("a flipped bit in a record of record-like data, with records after it, is decided within a budget: corruption, not a minutes-long search", async () => {
  await using tmp = await tempDir();
  // Bytes 01 00 02 00 repeated: a plausible record header every 4 bytes.
  const value = new Uint8Array(
    new Uint16Array(512 * 1024).map((_, i) => (i % 2) + 1).buffer,
  );
  let store = await openStore(tmp.path, { background: "inline" });
  await store.put("a", "1");
  await store.put("big", value);
  await store.put("z", "2");
  await store.close();
  const path = `${tmp.path}/${SEGMENT}`;
  const bytes = await Deno.readFile(path);
  bytes[200]! ^= 0x10; // inside the big record
  await Deno.writeFile(path, bytes);
  await assert.rejects(
    openStore(tmp.path, { background: "inline" }),
    (error: unknown) => {
      assert.ok(error instanceof CorruptionError);
      assert.match(error.message, /too much like records to tell a torn write/);
      return true;
    },
  );
  store = await openStore(tmp.path, { background: "inline", repair: true });
  assert.equal(text(await store.get("a")), "1");
  assert.equal(await store.get("big"), undefined);
  await store.close();
});

Deno.test("--repair keeps in lost/ a table the manifest no longer names (its last edit damaged) instead of deleting it", async () => {
  await using tmp = await tempDir();
  const options = {
    memtableBytes: 1024,
    background: "inline" as const,
    idleMergeMs: 0,
  };
  const store = await openStore(tmp.path, options);
  for (
    let n = 0;
    (await names(tmp.path)).filter((f) => f.endsWith(".sst")).length < 3;
    n++
  ) {
    await store.put(`key${String(n).padStart(5, "0")}`, "v".repeat(20));
    await store.settle();
  }
  await store.close();
  const tables = (await names(tmp.path)).filter((f) => f.endsWith(".sst"));
  // A flipped bit in the manifest's last edit (a flush's): read as torn.
  const current = (await Deno.readTextFile(`${tmp.path}/CURRENT`)).trim();
  const manifest = await Deno.readFile(`${tmp.path}/${current}`);
  manifest[manifest.length - 1]! ^= 0x01;
  await Deno.writeFile(`${tmp.path}/${current}`, manifest);
  // The error blames the manifest and says what --repair will do there,
  // not the log's advice (to keep its records before a damage it has not).
  await assert.rejects(
    openStore(tmp.path, options),
    (e: Error) =>
      e instanceof CorruptionError &&
      e.message.startsWith(
        `Corrupt manifest "${tmp.path}/${current}": its last edit`,
      ) &&
      e.message.endsWith(
        "--repair opens the state before that edit and moves the tables and log records written after it to lost/",
      ) && !e.message.includes("Run with --repair"),
  );
  const repaired = await openStore(tmp.path, { ...options, repair: true });
  const report = repaired.stats().recovery!;
  await repaired.close();
  const orphan = report.repaired.find((c) => c.file.endsWith(".sst"));
  assert.ok(orphan, `a table moved to lost/: ${JSON.stringify(report)}`);
  assert.ok(tables.includes(orphan.file));
  assert.ok(!report.removedFiles.includes(orphan.file), "not deleted");
  // The report says what that means for reads: older values, not none.
  assert.match(orphan.reason, /the keys it held read as they were before it/);
  const lost = await names(`${tmp.path}/lost`);
  assert.ok(
    lost.some((f) => f.startsWith(`${orphan.file}.`)),
    `in lost/: ${lost.join(" ")}`,
  );
});

Deno.test("a table whose footer is damaged keeps the store from opening, naming the table and saying what to do", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { memtableBytes: 4096 });
  for (let i = 0; i < 400; i++) await store.put(`key${i}`, `value-${i}`);
  await store.settle();
  await store.close();
  const table = (await names(tmp.path)).find((n) => n.endsWith(".sst"))!;
  const path = `${tmp.path}/${table}`;
  const bytes = await Deno.readFile(path);
  bytes[bytes.length - 20]! ^= 0x40; // in the footer
  await Deno.writeFile(path, bytes);
  await assert.rejects(openStore(tmp.path), (error: unknown) => {
    assert.ok(error instanceof CorruptionError, String(error));
    assert.ok(error.file.endsWith(table), error.file);
    assert.match(
      error.message,
      /^Corrupt table .*\. The store cannot open without this table: restore the file from a backup if there is one \("kv check" lists every damaged file; --repair mends logs and manifests, not tables\)$/,
    );
    return true;
  });
  assert.deepEqual(
    await Deno.readFile(path),
    bytes,
    "refusing touched nothing",
  );
});

Deno.test("a table swapped for another of the same size is refused at open, not read", async () => {
  await using tmp = await tempDir();
  const options = { memtableBytes: 4096, l0MergeTrigger: 1000, idleMergeMs: 0 };
  const store = await openStore(tmp.path, options);
  for (let i = 0; i < 400; i++) {
    await store.put(
      `key${String(i).padStart(5, "0")}`,
      `value-${i}`.padEnd(60),
    );
  }
  await store.settle();
  await store.close();
  // Two tables of the same size (flushes of equal memtables).
  const bySize = new Map<number, string[]>();
  for (
    const name of (await names(tmp.path)).filter((n) => n.endsWith(".sst"))
  ) {
    const size = (await Deno.stat(`${tmp.path}/${name}`)).size;
    bySize.set(size, [...(bySize.get(size) ?? []), name]);
  }
  const pair = [...bySize.values()].find((names) => names.length >= 2);
  assert.ok(pair, `two tables of one size: ${JSON.stringify([...bySize])}`);
  await Deno.copyFile(`${tmp.path}/${pair[1]}`, `${tmp.path}/${pair[0]}`);
  await assert.rejects(
    openStore(tmp.path, options),
    (e: Error) =>
      e instanceof CorruptionError &&
      e.message.startsWith(
        `Table "${tmp.path}/${pair[0]}" is not the table manifest`,
      ),
  );
});

Deno.test("a lost last edit of a merge (its inputs deleted) is refused, without the advice to --repair", async () => {
  await using tmp = await tempDir();
  const options = {
    memtableBytes: 1024,
    l0MergeTrigger: 2,
    idleMergeMs: 0,
    background: "inline" as const,
  };
  const store = await openStore(tmp.path, options);
  // Overlapping keys: level 0's two tables are merged (rewritten and
  // deleted), not moved down.
  for (let i = 0; store.stats().merges === 0; i++) {
    await store.put(`key${i % 50}`, `value ${i}`.padEnd(40));
    await store.settle();
  }
  await store.close();
  const current = (await Deno.readTextFile(`${tmp.path}/CURRENT`)).trim();
  const manifest = await Deno.readFile(`${tmp.path}/${current}`);
  manifest[manifest.length - 1]! ^= 0x01;
  await Deno.writeFile(`${tmp.path}/${current}`, manifest);
  for (const repair of [false, true]) {
    await assert.rejects(
      openStore(tmp.path, { ...options, repair }),
      (e: Error) =>
        e instanceof CorruptionError &&
        /is missing\)\. --repair cannot open it: the state before that edit names tables no longer there$/
          .test(e.message),
      `repair ${repair}`,
    );
  }
});

Deno.test("a deleted live WAL segment is refused at open, not read as no writes; --repair opens without it, once", async () => {
  await using tmp = await tempDir();
  const options = { memtableBytes: 4096, idleMergeMs: 0 };
  const store = await openStore(tmp.path, options);
  // Flushed writes (in tables), then writes only the active segment holds.
  for (let i = 0; i < 200; i++) {
    await store.put(`old${String(i).padStart(3, "0")}`, "x".repeat(40));
  }
  await store.settle();
  for (let i = 0; i < 5; i++) await store.put(`new${i}`, `value ${i}`);
  await store.close();
  const segments = (await names(tmp.path)).filter((n) => n.endsWith(".log"));
  assert.equal(segments.length, 1, segments.join(" "));
  const segment = segments[0]!;
  await Deno.remove(`${tmp.path}/${segment}`);
  await assert.rejects(
    openStore(tmp.path, options),
    (e: Error) =>
      e instanceof CorruptionError &&
      e.file === `${tmp.path}/${segment}` &&
      e.message.startsWith(`WAL segment "${tmp.path}/${segment}" is missing`) &&
      e.message.includes("Run with --repair"),
  );
  // Refusing changed nothing.
  assert.deepEqual(
    (await names(tmp.path)).filter((n) => n.endsWith(".log")),
    [],
  );
  const repaired = await openStore(tmp.path, { ...options, repair: true });
  assert.deepEqual(repaired.recovery.missingSegments, [segment]);
  // What reached tables reads back (a prefix of the writes); what only
  // the lost segment held is gone.
  const kept = [];
  for await (const e of repaired.scan({ prefix: "old" })) {
    assert.equal(text(e.value), "x".repeat(40));
    kept.push(text(e.key));
  }
  assert.ok(kept.length > 0 && kept.length < 200, `${kept.length} kept`);
  assert.equal(kept.at(-1), `old${String(kept.length - 1).padStart(3, "0")}`);
  assert.equal(await repaired.get("new0"), undefined);
  await repaired.put("after", "repair");
  await repaired.close();
  // The repaired store's manifest no longer needs the lost segment.
  const again = await openStore(tmp.path, options);
  assert.deepEqual(again.recovery.missingSegments, []);
  assert.equal(text(await again.get("after")), "repair");
  await again.close();
});

Deno.test("a store that never flushed still notices its deleted log", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  await store.put("k", "v");
  await store.close();
  // The first open's manifest already names the segment it created.
  const reopened = await openStore(tmp.path);
  assert.equal(text(await reopened.get("k")), "v");
  await reopened.close();
  for (const n of await names(tmp.path)) {
    if (n.endsWith(".log")) await Deno.remove(`${tmp.path}/${n}`);
  }
  await assert.rejects(
    openStore(tmp.path),
    (e: Error) => e instanceof CorruptionError && /is missing/.test(e.message),
  );
});

Deno.test("open removes only its own obsolete files and reports only what it removed", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  await store.put("k", "v");
  await store.close();
  // A user's files named like a manifest, and a directory named like a
  // table, holding a file: none is the store's to remove.
  await Deno.writeTextFile(`${tmp.path}/MANIFEST-backup.bak`, "mine");
  await Deno.writeTextFile(`${tmp.path}/MANIFEST-README.txt`, "mine");
  await Deno.mkdir(`${tmp.path}/000998.sst`);
  await Deno.writeTextFile(`${tmp.path}/000998.sst/inside`, "mine");
  // A stray table file with no manifest naming it is the store's own.
  await Deno.writeFile(`${tmp.path}/000999.sst`, new Uint8Array(100));
  store = await openStore(tmp.path);
  const removed = store.stats().recovery!.removedFiles;
  assert.equal(text(await store.get("k")), "v");
  await store.close();
  const left = await names(tmp.path);
  for (
    const n of ["MANIFEST-backup.bak", "MANIFEST-README.txt", "000998.sst"]
  ) {
    assert.ok(left.includes(n), `${n} kept: ${left}`);
    assert.ok(!removed.includes(n), `${n} not reported removed: ${removed}`);
  }
  assert.ok(!left.includes("000999.sst"));
  assert.ok(removed.includes("000999.sst"), `${removed}`);
});

Deno.test("a repair's report counts the segments it read, and the ones it set aside as set aside, not removed", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  for (let i = 0; i < 20; i++) await store.put(`key${i}`, `value-${i}`);
  await store.close();
  // Damage in the middle of the only segment, and two later ones.
  const first = `${tmp.path}/${SEGMENT}`;
  const bytes = await Deno.readFile(first);
  bytes[bytes.length >> 1]! ^= 0x40;
  await Deno.writeFile(first, bytes);
  const later = ["000007.log", "000008.log"];
  for (const l of later) {
    await Deno.writeFile(`${tmp.path}/${l}`, new Uint8Array(0));
  }
  store = await openStore(tmp.path, { repair: true });
  const report = store.stats().recovery!;
  await store.close();
  assert.equal(report.segments, 1);
  assert.deepEqual(report.removedSegments, later);
  for (const l of later) {
    assert.ok(
      !report.removedFiles.includes(l),
      `${l} is in lost/, not removed`,
    );
  }
});

Deno.test("a lost newest WAL segment is refused at open, though sequence numbers cannot show it; --repair opens without it", async () => {
  // Flushes that never finish keep frozen memtables' segments on disk; the
  // newest segment, after the one the manifest's log number names, holds
  // acknowledged writes. Before segments were recorded (ADD_LOG), losing
  // it lost them without a word: nothing follows it to show a gap.
  const mem = new MemEnv();
  let hang = false;
  const env = overriding(mem, {
    openWritable: (path) =>
      hang && path.endsWith(".sst.tmp")
        ? new Promise<never>(() => {})
        : mem.openWritable(path),
  });
  const options = {
    env,
    memtableBytes: 1024,
    background: "inline" as const,
    idleMergeMs: 0,
  };
  const store = await openStore("/db", options);
  hang = true;
  const acked: string[] = [];
  let i = 0;
  while (store.stats().immutableMemtables < 2) {
    const key = `key${i++}`;
    await store.put(key, "v".repeat(60));
    acked.push(key);
  }
  for (let j = 0; j < 3; j++) {
    const key = `key${i++}`;
    await store.put(key, "v".repeat(60));
    acked.push(key);
  }
  const after = mem.powerCut(new Prng(1));
  const logs = (await after.list("/db")).filter((n) => n.endsWith(".log"))
    .sort();
  assert.ok(logs.length >= 3, `segments: ${logs}`);
  const newest = logs.at(-1)!;
  await after.remove(`/db/${newest}`);
  const reopen = { ...options, env: after };
  await assert.rejects(
    openStore("/db", reopen),
    (e: unknown) =>
      e instanceof CorruptionError &&
      e.message.includes(`WAL segment "/db/${newest}" is missing`),
  );
  const report = await checkStore(after, "/db");
  assert.match(report.problems.join("\n"), new RegExp(`${newest}: missing`));
  const repaired = await openStore("/db", { ...reopen, repair: true });
  assert.deepEqual(repaired.stats().recovery!.missingSegments, [newest]);
  // The writes of the other segments are there; the lost one's are not.
  assert.equal(text(await repaired.get(acked[0]!)), "v".repeat(60));
  assert.equal(await repaired.get(acked.at(-1)!), undefined);
  await repaired.close();
  // The repaired store's manifest needs the lost segment no more.
  const again = await openStore("/db", reopen);
  await again.close();
});

Deno.test("a segment name with a seventh leading zero is not the store's: not read as a second copy of that segment, nor removed", async () => {
  await using tmp = await tempDir();
  let store = await openStore(tmp.path);
  for (let i = 0; i < 5; i++) await store.put(`k${i}`, `v${i}`);
  await store.close();
  await Deno.copyFile(`${tmp.path}/${SEGMENT}`, `${tmp.path}/0${SEGMENT}`);
  store = await openStore(tmp.path);
  assert.equal(store.stats().recovery!.segments, 1);
  assert.equal(await store.count(), 5);
  await store.put("k5", "v5");
  await store.close();
  assert.ok((await names(tmp.path)).includes(`0${SEGMENT}`));
  store = await openStore(tmp.path);
  assert.equal(await store.count(), 6);
  await store.close();
});

/**
 * The records of segment file `path` (offset and end of each, up to the
 * first byte that is not one), and the file's size.
 */
async function segmentRecords(path: string): Promise<{
  records: Array<{ offset: number; end: number }>;
  end: number;
  size: number;
}> {
  const file = await denoEnv.openReadable(path);
  try {
    const reader = new SegmentReader(file);
    const records: Array<{ offset: number; end: number }> = [];
    let r = await reader.next();
    for (; r.kind === "record"; r = await reader.next()) {
      records.push({ offset: r.offset, end: r.end });
    }
    return { records, end: r.offset, size: file.size };
  } finally {
    file.close();
  }
}

/** Copies every file of `from` into `to`: what a SIGKILL leaves on disk. */
async function copyAsKilled(from: string, to: string): Promise<void> {
  // (The page cache survives a kill: every written byte is there.)
  for (const name of await names(from)) {
    await Deno.copyFile(`${from}/${name}`, `${to}/${name}`);
  }
}

Deno.test("a segment grows into preallocated space; each is cut at its last record before a later one is made, and at close", async () => {
  await using tmp = await tempDir();
  let made = 0;
  let sealedChecked = 0;
  const env = overriding(denoEnv, {
    async openWritable(path: string) {
      const isNew = path.endsWith(".log") &&
        !(await Deno.stat(path).then(() => true, () => false));
      if (isNew) {
        made++;
        // Every segment already there was sealed: it ends at its last record.
        for (const name of await names(tmp.path)) {
          if (!name.endsWith(".log")) continue;
          const { end, size } = await segmentRecords(`${tmp.path}/${name}`);
          assert.equal(size, end, `${name} left with preallocated space`);
          sealedChecked++;
        }
      }
      return denoEnv.openWritable(path);
    },
  });
  const store = await openStore(tmp.path, {
    env,
    memtableBytes: 8 * 1024,
    background: "inline",
  });
  for (let i = 0; i < 300; i++) {
    await store.put(`k${i}`, "v".repeat(100));
    const logs = (await names(tmp.path)).filter((n) => n.endsWith(".log"));
    const active = await segmentRecords(`${tmp.path}/${logs.at(-1)}`);
    assert.ok(active.size > active.end, "the active segment is preallocated");
  }
  await store.close();
  assert.ok(made > 3, `${made} segments made`);
  assert.ok(sealedChecked > 0, "no sealed segment was checked");
  for (const name of await names(tmp.path)) {
    if (!name.endsWith(".log")) continue;
    const { end, size } = await segmentRecords(`${tmp.path}/${name}`);
    assert.equal(size, end, `${name} kept preallocated space after close`);
  }
});

Deno.test("a crash leaves zero-filled space after the last record; open cuts it, reports it, and keeps every acknowledged write", async () => {
  await using tmp = await tempDir();
  await using copy = await tempDir();
  const store = await openStore(tmp.path);
  for (let i = 0; i < 50; i++) await store.put(`k${i}`, `value-${i}`);
  await copyAsKilled(tmp.path, copy.path);
  await store.close();
  const { end, size } = await segmentRecords(`${copy.path}/${SEGMENT}`);
  assert.ok(size > end, "the segment had preallocated space");
  const reopened = await openStore(copy.path);
  assert.deepEqual(reopened.recovery.truncated, [{
    file: SEGMENT,
    offset: end,
    bytes: size - end,
    reason: "zero-filled space",
  }]);
  assert.equal(reopened.recovery.records, 50);
  assert.match(
    describeRecovery(reopened.stats()),
    new RegExp(
      `cut ${
        size - end
      } bytes of zero-filled space after the last record of ${SEGMENT} \\(the log's preallocated space, left by a crash or a failed write: the store did not close cleanly\\)`,
    ),
  );
  for (let i = 0; i < 50; i++) {
    assert.equal(text(await reopened.get(`k${i}`)), `value-${i}`);
  }
  await reopened.put("after", "crash");
  await reopened.close();
  const after = await segmentRecords(`${copy.path}/${SEGMENT}`);
  assert.equal(after.size, after.end);
  assert.deepEqual(
    await keysOf(copy.path),
    [
      "after",
      ...Array.from({ length: 50 }, (_, i) => `k${i}`).sort(),
    ].sort(),
  );
});

Deno.test("a write cut part-way into preallocated space, of binary values full of record-like headers, is a torn tail, not damage", async () => {
  // Little-endian counts below 2^20 followed by a PUT's kind byte read as
  // record headers of up to a megabyte at many offsets; each ran into the
  // zeros after the cut, and checksumming them spent the search's budget:
  // open refused the store over a write never acknowledged.
  await using tmp = await tempDir();
  let full = false;
  const env = overriding(denoEnv, {
    async openWritable(path: string) {
      const f = await denoEnv.openWritable(path);
      if (!path.endsWith(".log")) return f;
      return wrapWritable(f, {
        append(bytes: Uint8Array) {
          if (!full) return f.append(bytes);
          // What a full disk does: a short write, then ENOSPC.
          f.append(bytes.subarray(0, bytes.length >> 1));
          throw new Error("ENOSPC: no space left on device, write");
        },
      });
    },
  });
  const store = await openStore(tmp.path, { env, background: "inline" });
  for (let i = 0; i < 20; i++) await store.put(`k${i}`, `acked-${i}`);
  const rng = new Prng(1);
  const ops = Array.from({ length: 2000 }, (_, i) => {
    const value = new Uint8Array(4);
    putFixed32(value, 0, rng.int(1 << 20));
    return { type: "put" as const, key: `counter:${i}`, value };
  });
  full = true;
  await assert.rejects(store.batch(ops), /ENOSPC/);
  await store.close().catch(() => {});
  const { end, size } = await segmentRecords(`${tmp.path}/${SEGMENT}`);
  assert.ok(size - end > 512 * 1024, "the cut write is followed by zeros");
  assert.deepEqual((await checkStore(denoEnv, tmp.path)).problems, []);
  const reopened = await openStore(tmp.path);
  assert.equal(reopened.recovery.truncated.length, 1);
  assert.equal(reopened.recovery.truncated[0]!.offset, end);
  assert.equal(reopened.recovery.records, 20);
  for (let i = 0; i < 20; i++) {
    assert.equal(text(await reopened.get(`k${i}`)), `acked-${i}`);
  }
  assert.equal(await reopened.get("counter:0"), undefined);
  await reopened.close();
});

Deno.test("after a crash, damage followed by valid records within the last block written, with zeros after it, is a torn write; in an earlier block it is corruption", async () => {
  await using tmp = await tempDir();
  await using copy = await tempDir();
  const store = await openStore(tmp.path);
  for (let i = 0; i < 120; i++) await store.put(`k${i}`, `value-${i}`);
  await copyAsKilled(tmp.path, copy.path);
  await store.close();
  const path = `${copy.path}/${SEGMENT}`;
  const crashed = await Deno.readFile(path);
  const { records, end } = await segmentRecords(path);
  const lastBlock = Math.floor((end - 1) / 4096) * 4096;
  assert.ok(lastBlock > 0, "the records span more than one block");
  // Sectors of a record in the last block lost, later ones there kept.
  const inLast = records.findIndex((r) => r.offset >= lastBlock);
  assert.ok(inLast >= 0 && inLast < records.length - 2);
  const torn = crashed.slice();
  torn.fill(0, records[inLast]!.offset, records[inLast]!.end);
  await Deno.writeFile(path, torn);
  const reopened = await openStore(copy.path);
  assert.equal(reopened.recovery.records, inLast);
  assert.equal(reopened.recovery.truncated[0]!.offset, records[inLast]!.offset);
  assert.equal(
    text(await reopened.get(`k${inLast - 1}`)),
    `value-${inLast - 1}`,
  );
  assert.equal(await reopened.get(`k${inLast}`), undefined);
  await reopened.close();
  // The same damage a block earlier, with the last block's records after
  // it, is not a torn write.
  const early = records.findLastIndex((r) => r.end <= lastBlock);
  const damaged = crashed.slice();
  damaged.fill(0, records[early]!.offset, records[early]!.end);
  await Deno.writeFile(path, damaged);
  await assert.rejects(
    openStore(copy.path),
    (error: unknown) =>
      error instanceof CorruptionError &&
      error.offset === records[early]!.offset &&
      /valid records follow/.test(error.message),
  );
  assert.ok(
    (await checkStore(denoEnv, copy.path)).problems.some((p) =>
      p.includes(`offset ${records[early]!.offset}`)
    ),
  );
});

Deno.test("after a clean close, a last record whose value ends in zeros past a block boundary does not make damage before it in that block read as a torn write", async () => {
  // The file, cut at its records, then ends in zeros after a block, as
  // preallocated space would: the zeros are a value's, and the record
  // running past the block counts as a valid record after the damage.
  // Past the boundary by 4 bytes, and by a whole block (the file's size
  // then a whole number of blocks, as preallocated space is).
  for (const past of [4, 4096]) {
    await using tmp = await tempDir();
    const store = await openStore(tmp.path);
    for (let i = 0; i < 20; i++) await store.put(`k${i}`, `value-${i}`);
    // A record of zeros ending `past` bytes past the next block boundary.
    const before = (await segmentRecords(`${tmp.path}/${SEGMENT}`)).end;
    const blockEnd = (Math.floor(before / 4096) + 1) * 4096;
    const blob = (v: number): WalOp => ({
      kind: BatchOpKind.PUT,
      key: "blob",
      value: new Uint8Array(v),
      expiry: 0,
    });
    let v = blockEnd + past - before;
    while (before + encodedRecordBytes([blob(v)]) > blockEnd + past) v--;
    assert.equal(before + encodedRecordBytes([blob(v)]), blockEnd + past);
    await store.put("blob", blob(v).value!);
    await store.close();
    const path = `${tmp.path}/${SEGMENT}`;
    const { end, size } = await segmentRecords(path);
    assert.equal(size, end, "cut at its records");
    const bytes = await Deno.readFile(path);
    assert.ok(
      size > blockEnd && bytes.subarray(blockEnd).every((b) => b === 0),
    );
    // Damage to k5's record, in the same block as the blob's start.
    const k5 = (await segmentRecords(path)).records[5]!.offset;
    assert.ok(Math.floor(k5 / 4096) === Math.floor((blockEnd - 1) / 4096));
    bytes[k5 + 12]! ^= 0x01;
    await Deno.writeFile(path, bytes);
    await assert.rejects(
      openStore(tmp.path),
      (error: unknown) =>
        error instanceof CorruptionError && error.offset === k5 &&
        /valid records follow/.test(error.message),
    );
    assert.ok(
      (await checkStore(denoEnv, tmp.path)).problems.some((p) =>
        p.includes(`offset ${k5}`)
      ),
    );
  }
});
