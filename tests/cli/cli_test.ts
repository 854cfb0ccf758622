/**
 * The kv executable end to end: a piped REPL session, one-shot commands,
 * exit codes, help and the directory lock across processes.
 */
import assert from "node:assert/strict";
import { openStore } from "../../storage/mod.ts";
import { runPipelined } from "../../cli/session.ts";
import { kvArgs, runKv, spawnKv } from "../kv_process.ts";
import { names, tempDir, text } from "../helpers.ts";

Deno.test("a piped session prints exactly one response per command, in order", async () => {
  await using tmp = await tempDir();
  const script = [
    "PUT name kv store",
    "get name",
    "PUT  spaced   two  words ",
    "GET spaced",
    "EXISTS name",
    "EXISTS nope",
    "GET nope",
    "BOGUS",
    "GET",
    "",
    "PUT user:1 ada",
    "PUT user:2 grace",
    "SCAN user: LIMIT 5",
    "RANGE name user:2",
    "COUNT",
    "COUNT user:",
    "DELETE name",
    "GET name",
    "STATS",
  ].join("\n") + "\n";
  const r = await runKv(["--data", tmp.path], script);
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  const lines = r.stdout.split("\n");
  const statsAt = lines.indexOf("Statistics:");
  assert.deepEqual(lines.slice(0, statsAt), [
    "OK",
    "kv store",
    "OK",
    "  two  words ",
    "1",
    "0",
    "Error: key not found",
    'Error: unknown command "BOGUS"; usage: PUT, GET, DELETE, EXISTS, SCAN, RANGE, COUNT, STATS, HELP, QUIT (HELP shows each)',
    "Error: wrong number of arguments for GET; usage: GET key",
    "OK",
    "OK",
    "user:1\tada",
    "user:2\tgrace",
    "(2 keys)",
    'name\t"kv store"',
    'spaced\t"  two  words "',
    "user:1\tada",
    "(3 keys)",
    "4",
    "2",
    "OK",
    "Error: key not found",
  ]);
  assert.equal(lines[statsAt + 1], "  num_keys: 3");
  assert.equal(lines[statsAt - 2], "OK", "DELETE name");
  assert.ok(
    lines.slice(statsAt + 1).every((l) =>
      l === "" || /^ {2}[a-z0-9_]+: /.test(l)
    ),
  );
  assert.equal(r.stdout.endsWith("\n"), true);
});

Deno.test("QUIT and EXIT shut down with exit 0 and ignore the rest of the input", async () => {
  await using tmp = await tempDir();
  const r = await runKv(["--data", tmp.path], "PUT a 1\nEXIT\nPUT b 2\n");
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "OK\nShutting down...\n");
  const store = await openStore(tmp.path);
  assert.equal(text(await store.get("a")), "1");
  assert.equal(await store.get("b"), undefined);
  await store.close();
});

Deno.test("thousands of piped writes are all acknowledged and durable", async () => {
  await using tmp = await tempDir();
  const n = 3000;
  let script = "";
  for (let i = 0; i < n; i++) script += `PUT key${i} value ${i}\n`;
  for (let i = 0; i < n; i += 100) script += `GET key${i}\n`;
  script += "STATS\n";
  const r = await runKv(["--data", tmp.path], script);
  assert.equal(r.code, 0, r.stderr);
  // Pipelined writes share fsyncs (group commit).
  const syncs = Number(/wal_syncs: (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(syncs > 0 && syncs < n / 4, `${syncs} fsyncs for ${n} writes`);
  const lines = r.stdout.slice(0, r.stdout.indexOf("Statistics:")).trimEnd()
    .split("\n");
  assert.equal(lines.length, n + n / 100);
  assert.ok(lines.slice(0, n).every((l) => l === "OK"));
  assert.deepEqual(
    lines.slice(n),
    Array.from({ length: n / 100 }, (_, j) => `value ${j * 100}`),
  );
  const stats = await runKv(["--data", tmp.path, "stats"]);
  assert.match(stats.stdout, /num_keys: 3000\n/);
  assert.match(stats.stdout, /recovery_records: 3000\n/);
});

Deno.test("one-shot commands print results and use exit codes", async () => {
  await using tmp = await tempDir();
  const d = ["--data", tmp.path];
  assert.deepEqual(await runKv([...d, "put", "k", "v v"]), {
    code: 0,
    stdout: "OK\n",
    stderr: "",
  });
  assert.deepEqual(await runKv([...d, "get", "k"]), {
    code: 0,
    stdout: "v v\n",
    stderr: "",
  });
  assert.deepEqual(await runKv([...d, "get", "missing"]), {
    code: 1,
    stdout: "",
    stderr: "Error: key not found\n",
  });
  await runKv([...d, "put", "k2", "x"]);
  assert.deepEqual(await runKv([...d, "scan"]), {
    code: 0,
    stdout: 'k\t"v v"\nk2\tx\n',
    stderr: "",
  });
  assert.deepEqual(await runKv([...d, "scan", "k2"]), {
    code: 0,
    stdout: "k2\tx\n",
    stderr: "",
  });
  assert.deepEqual(await runKv([...d, "scan", "--limit", "1"]), {
    code: 0,
    stdout: 'k\t"v v"\n',
    stderr: "",
  });
  assert.deepEqual(await runKv([...d, "delete", "k"]), {
    code: 0,
    stdout: "OK\n",
    stderr: "",
  });
  const stats = await runKv([...d, "stats"]);
  assert.equal(stats.code, 0);
  assert.match(stats.stdout, /^Statistics:\n {2}num_keys: 1\n/);
  const bad = await runKv([...d, "get"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /wrong number of arguments for get/);
  const unknown = await runKv([...d, "frob"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frob"/);
  const flag = await runKv([...d, "--bogus"]);
  assert.equal(flag.code, 2);
  assert.equal(
    flag.stderr,
    'Error: unknown option "--bogus" (an argument that starts with "-" goes after "--": kv put n -- -5)\nRun "kv --help" for usage\n',
  );
  const sync = await runKv([...d, "--sync", "sometimes", "stats"]);
  assert.equal(sync.code, 2);
  assert.equal(
    sync.stderr,
    'Error: unknown sync mode "sometimes"; use always, interval, none\nRun "kv --help" for usage\n',
  );
  // A negative number after a flag is the flag's value, refused in the
  // flag's own words (parseArgs alone calls it ambiguous).
  const negative = await runKv([...d, "scan", "--limit", "-1"]);
  assert.equal(negative.code, 2);
  assert.equal(
    negative.stderr,
    'Error: --limit needs a non-negative integer of at most 15 digits, got "-1"\n',
  );
  const size = await runKv([...d, "--memtable-size", "-5", "stats"]);
  assert.equal(size.code, 2);
  assert.match(
    size.stderr,
    /^Error: --memtable-size needs a size .* got "-5"\n$/,
  );
  // A value flag followed by another flag is missing its value.
  const missing = await runKv(["scan", "--data", "--limit", "5"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^Error: --data needs a value/);
  const boolean = await runKv([...d, "--repair=yes", "stats"]);
  assert.equal(boolean.code, 2);
  assert.match(boolean.stderr, /^Error: --repair takes no value\n/);
  const help = await runKv(["--help=x"]);
  assert.match(help.stderr, /^Error: --help takes no value\n/);
  // A directory is not a number: "--data -1" stays refused as a missing
  // value, and "--data=-1" is the way to name such a directory.
  const dashDir = await runKv(["--data", "-1", "stats"]);
  assert.equal(dashDir.code, 2);
  assert.match(
    dashDir.stderr,
    /^Error: --data needs a value \(one that starts with "-" goes as --data=-x\)\n/,
  );
});

Deno.test("reading commands on a missing directory say so and create nothing; a bad --data is named", async () => {
  await using tmp = await tempDir();
  const missing = `${tmp.path}/typo/sub`;
  for (const command of [["get", "k"], ["scan"], ["stats"]]) {
    assert.deepEqual(await runKv(["--data", missing, ...command]), {
      code: 1,
      stdout: "",
      stderr:
        `Error: data directory "${missing}" does not exist (put, delete and the REPL create one)\n`,
    }, command[0]);
  }
  assert.deepEqual(await names(tmp.path), [], "nothing created");
  // An existing directory without a store (empty, or a mistyped path to
  // someone's files) is not made into one by a read.
  const other = `${tmp.path}/other`;
  await Deno.mkdir(`${other}/empty`, { recursive: true });
  await Deno.writeTextFile(`${other}/notes.txt`, "x");
  for (const dir of [other, `${other}/empty`]) {
    for (const command of [["get", "k"], ["scan"], ["stats"]]) {
      assert.deepEqual(await runKv(["--data", dir, ...command]), {
        code: 1,
        stdout: "",
        stderr:
          `Error: data directory "${dir}" holds no kv store (put, delete and the REPL create one)\n`,
      }, `${command[0]} ${dir}`);
    }
  }
  assert.deepEqual(await names(other), ["empty", "notes.txt"], "nothing added");
  assert.deepEqual(await names(`${other}/empty`), [], "nothing added");
  assert.deepEqual(await runKv(["--data", "", "stats"]), {
    code: 2,
    stdout: "",
    stderr: "Error: --data needs a directory\n",
  });
  await Deno.writeTextFile(`${tmp.path}/file`, "x");
  const file = await runKv(["--data", `${tmp.path}/file`, "put", "k", "v"]);
  assert.equal(file.code, 1);
  assert.equal(
    file.stderr,
    `Error: --data "${tmp.path}/file" is not a directory\n`,
  );
  const under = await runKv(["--data", `${tmp.path}/file/sub`, "get", "k"]);
  assert.equal(under.code, 1);
  assert.match(under.stderr, /^Error: --data ".*\/file\/sub": Not a directory/);
  assert.doesNotMatch(under.stderr, /\n\s+at /, "no stack trace");
  // A write creates the directory, as before.
  assert.equal((await runKv(["--data", missing, "put", "k", "v"])).code, 0);
  assert.equal((await runKv(["--data", missing, "get", "k"])).stdout, "v\n");
});

/**
 * Runs kv with `args` and `input`, reads its stdout until the first line,
 * then closes it (as `| head -1` does); returns that line, the exit code
 * and stderr.
 */
async function runKvHead(args: string[], input: string) {
  const child = spawnKv(args);
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input)).catch(() => {});
    await writer.close().catch(() => {});
  })();
  const reader = child.stdout.getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    first += new TextDecoder().decode(value);
  }
  await reader.cancel();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
    writing,
  ]);
  return { first: first.split("\n")[0], code: status.code, stderr };
}

Deno.test("output cut short by its reader (| head) ends kv quietly with status 141", async () => {
  await using tmp = await tempDir();
  const d = ["--data", tmp.path];
  // More output than a pipe holds (64 KiB), so that kv is still writing.
  const puts = Array.from({ length: 20000 }, (_, i) => `PUT k${i} v${i}\n`);
  assert.equal((await runKv(d, puts.join(""))).code, 0);
  const scan = await runKvHead([...d, "scan"], "");
  assert.deepEqual(scan, { first: "k0\tv0", code: 141, stderr: "" });
  const gets = Array.from({ length: 100000 }, (_, i) => `GET k${i % 20000}\n`);
  const repl = await runKvHead(d, gets.join(""));
  assert.deepEqual(repl, { first: "v0", code: 141, stderr: "" });
  // Nothing was lost: the store reopens with every key.
  assert.equal((await runKv([...d, "get", "k19999"])).stdout, "v19999\n");
});

Deno.test("a piped session whose output fails stops at once, even while its input waits for a line that never comes", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path, { sync: "none" });
  let waiting = false;
  async function* input(): AsyncGenerator<string> {
    yield "PUT a 1";
    yield "GET a";
    waiting = true;
    await new Promise(() => {}); // like `tail -f`: no next line, no end
  }
  let emitted = 0;
  const session = runPipelined(store, input(), () => {
    if (++emitted === 2) throw new Deno.errors.BrokenPipe("EPIPE: injected");
  });
  await assert.rejects(session, Deno.errors.BrokenPipe);
  assert.ok(waiting, "the input was waiting for a line");
  assert.equal(text(await store.get("a")), "1", "the write was performed");
  await store.close();
});

Deno.test("--help and --version work on every command", async () => {
  const top = await runKv(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /Usage:\n {2}kv \[repl\] \[options\] {3}the REPL/);
  assert.match(top.stdout, /--sync MODE/);
  for (const cmd of ["get", "put", "delete", "scan", "stats"]) {
    const r = await runKv([cmd, "--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: kv ${cmd}`));
  }
  const v = await runKv(["--version"]);
  assert.match(v.stdout, /^kv \d+\.\d+\.\d+\n$/);
});

Deno.test("a second process on a locked data directory exits non-zero and touches nothing", async () => {
  await using tmp = await tempDir();
  const store = await openStore(tmp.path);
  await store.put("k", "v");
  const before = await names(tmp.path);
  const logBefore = await Deno.readFile(`${tmp.path}/000001.log`);
  const r = await runKv(["--data", tmp.path], "PUT x y\n");
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.equal(
    r.stderr,
    `Error: data directory "${tmp.path}" is in use by another process\n`,
  );
  const r2 = await runKv(["--data", tmp.path, "get", "k"]);
  assert.equal(r2.code, 1);
  assert.deepEqual(await names(tmp.path), before);
  assert.deepEqual(await Deno.readFile(`${tmp.path}/000001.log`), logBefore);
  await store.close();
});

Deno.test("a corrupt log fails to open with the file and offset, and --repair opens it", async () => {
  await using tmp = await tempDir();
  const d = ["--data", tmp.path];
  await runKv(d, "PUT a 1\nPUT b 2\nPUT c 3\n");
  const path = `${tmp.path}/000001.log`;
  const bytes = await Deno.readFile(path);
  bytes[12]! ^= 1;
  await Deno.writeFile(path, bytes);
  const r = await runKv([...d, "get", "c"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^Error: Cannot open the write-ahead log ".*000001\.log": checksum mismatch at offset 0/,
  );
  const repaired = await runKv([...d, "--repair", "stats"]);
  assert.equal(repaired.code, 0, repaired.stderr);
  assert.match(repaired.stdout, /num_keys: 0\n/);
  assert.match(repaired.stdout, /recovery_repaired_bytes: \d+/);
});

Deno.test("a last record cut as a torn tail is told on stderr, with its copy in lost/, by one-shot commands and piped sessions", async () => {
  await using tmp = await tempDir();
  for (const piped of [false, true]) {
    const dir = `${tmp.path}/${piped ? "piped" : "one-shot"}`;
    const d = ["--data", dir];
    await runKv(d, "PUT a 1\nPUT b 2\n");
    const path = `${dir}/000001.log`;
    const bytes = await Deno.readFile(path);
    bytes[bytes.length - 3]! ^= 1; // in the last record, b's
    await Deno.writeFile(path, bytes);
    const r = piped
      ? await runKv(d, "GET a\n")
      : await runKv([...d, "get", "a"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "1\n");
    const m =
      /^Recovery: .*cut a torn tail of \d+ bytes at offset \d+ of 000001\.log \(checksum mismatch\); copy in lost\/([^;\s]+)/m
        .exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.deepEqual(await names(`${dir}/lost`), [m[1]]);
    // The next open finds nothing to cut, and says nothing.
    const again = await runKv(d, "GET b\n");
    assert.equal(again.stdout, "Error: key not found\n");
    assert.equal(again.stderr, "");
  }
});

Deno.test("a deleted log fails to open, naming it, and --repair says what it opened without", async () => {
  await using tmp = await tempDir();
  const d = ["--data", tmp.path];
  await runKv(d, "PUT a 1\n");
  await runKv(d, "PUT b 2\n");
  await Deno.remove(`${tmp.path}/000001.log`);
  const r = await runKv([...d, "get", "a"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^Error: WAL segment ".*000001\.log" is missing: manifest "MANIFEST-\d+" needs it for writes that are in no table\. Run with --repair/,
  );
  const repaired = await runKv([...d, "--repair", "get", "a"]);
  assert.equal(repaired.code, 1, "a was in the lost segment");
  assert.match(
    repaired.stderr,
    /^Recovery: .*repair opened without missing WAL segment 000001\.log/m,
  );
  const after = await runKv([...d, "stats"]);
  assert.equal(after.code, 0, after.stderr);
});

Deno.test("kv bench runs every db_bench workload and reports a row for each", async () => {
  const r = await runKv([
    "bench",
    "--num",
    "3000",
    "--reads",
    "2000",
    "--sync",
    "none",
    "--memtable-size",
    "16K",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.split("\n").filter((l) =>
    /^\| [a-z-]+ \| kv \|/.test(l)
  );
  assert.deepEqual(rows.map((l) => l.split("|")[1]!.trim()), [
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "readseq",
    "seekrandom",
    "seekrandom-batch",
  ]);
  for (const row of rows) {
    const opsPerSec = Number(row.split("|")[3]!.trim().replaceAll(",", ""));
    assert.ok(opsPerSec > 0, row);
  }
  const bad = await runKv(["bench", "--benchmarks", "fillseq,nope"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown benchmark "nope"/);
  const help = await runKv(["bench", "--help"]);
  assert.match(help.stdout, /^Usage: kv bench/);
  const settled = await runKv([
    "bench",
    "--num",
    "3000",
    "--reads",
    "500",
    "--sync",
    "none",
    "--memtable-size",
    "16K",
    "--cache-size",
    "64K",
    "--benchmarks",
    "fillrandom,settle,readrandom",
  ]);
  assert.equal(settled.code, 0, settled.stderr);
  assert.match(settled.stdout, /^\| settle \| kv \| — \| \d/m);
  assert.match(settled.stdout, /^\| readrandom \| kv \| [\d,]+ \|/m);
  const badCache = await runKv(["bench", "--cache-size", "lots"]);
  assert.equal(badCache.code, 2);
  assert.match(badCache.stderr, /--cache-size needs a size/);
});

Deno.test("kv bench --rounds runs the workloads that many times, then their medians and ranges", async () => {
  const r = await runKv([
    "bench",
    "--num",
    "2000",
    "--reads",
    "500",
    "--sync",
    "none",
    "--memtable-size",
    "16K",
    "--benchmarks",
    "fillrandom,settle,readrandom",
    "--rounds",
    "3",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  const medians = lines.indexOf("Medians of 3 rounds:");
  assert.ok(medians > 0, r.stdout);
  for (let round = 1; round <= 3; round++) {
    assert.ok(lines.includes(`Round ${round} of 3:`), r.stdout);
  }
  const cells = (l: string) => l.split("|").slice(1, -1).map((c) => c.trim());
  const rate = (c: string) => Number(c.replaceAll(",", ""));
  for (const name of ["fillrandom", "readrandom"]) {
    const rounds = lines.slice(0, medians).filter((l) =>
      l.startsWith(`| ${name} | kv |`)
    ).map((l) => rate(cells(l)[2]!));
    assert.equal(rounds.length, 3);
    const row = lines.slice(medians).find((l) =>
      l.startsWith(`| ${name} | kv |`)
    );
    assert.ok(row, `no median row for ${name}`);
    const c = cells(row);
    const sorted = [...rounds].sort((a, b) => a - b);
    assert.equal(rate(c[2]!), sorted[1], row);
    assert.equal(c[6], `${rateText(sorted[0]!)}–${rateText(sorted[2]!)}`, row);
  }
  assert.match(
    r.stdout,
    /^\| settle \| kv \| — \| [\d.]+ \| [\d.]+ \| 1 \| — \|$/m,
  );
  for (const bad of ["0", "101", "two"]) {
    const refused = await runKv(["bench", "--rounds", bad]);
    assert.equal(refused.code, 2, bad);
    assert.match(refused.stderr, /--rounds/);
  }
  const elsewhere = await runKv(["stats", "--rounds", "2"]);
  assert.equal(elsewhere.code, 2);
  assert.match(elsewhere.stderr, /--rounds applies to kv bench only/);
});

/** `n` as kv bench prints a rate: whole, with thousands separators. */
function rateText(n: number): string {
  return n.toLocaleString("en-US");
}

Deno.test("a line that is not valid UTF-8 gets an error and stores nothing; the session goes on", async () => {
  await using tmp = await tempDir();
  const enc = new TextEncoder();
  const input = new Uint8Array([
    ...enc.encode("PUT k "),
    0xff,
    0xfe,
    ...enc.encode("\nGET k\nPUT j ok\nGET j\n"),
  ]);
  const r = await runKv(["--data", tmp.path], input);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4, r.stdout);
  assert.match(lines[0]!, /^Error: line is not valid UTF-8; nothing was run/);
  assert.deepEqual(lines.slice(1), ["Error: key not found", "OK", "ok"]);
});

Deno.test("STATS in a pipelined script counts the writes before it and none after it", async () => {
  await using tmp = await tempDir();
  const puts = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => `PUT k${from + i} v\n`).join("");
  const script = puts(0, 300) + "STATS\n" + puts(300, 2000) + "STATS\n";
  const r = await runKv(["--data", tmp.path, "--sync", "none"], script);
  assert.equal(r.code, 0, r.stderr);
  const field = (name: string) =>
    [...r.stdout.matchAll(new RegExp(`^  ${name}: (\\d+)$`, "gm"))].map((m) =>
      Number(m[1])
    );
  assert.deepEqual(field("num_keys"), [300, 2300]);
  assert.deepEqual(field("last_sequence"), [300, 2300]);
});

Deno.test("kv check refuses a directory that holds no store and leaves it untouched", async () => {
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/notes.txt`, "hi\n");
  const r = await runKv(["check", tmp.path]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not a kv data directory/);
  assert.deepEqual(await names(tmp.path), ["notes.txt"]);
  const missing = await runKv(["check", `${tmp.path}/nope`]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /data directory ".*nope" does not exist/);
});

Deno.test("flag mistakes are usage errors (exit 2) that name the flag", async () => {
  await using tmp = await tempDir();
  const data = `${tmp.path}/d`;
  const cases: Array<[string[], RegExp]> = [
    [
      ["--data", data, "--memtable-size", "999999999999", "put", "x", "y"],
      /--memtable-size needs a size from 1K to 1024M/,
    ],
    [["--data", "", "get", "x"], /--data needs a directory/],
    [
      ["--data", data, "--num", "5", "get", "x"],
      /--num applies to kv bench only/,
    ],
    [["frob", "--version"], /unknown command "frob"/],
    // kv bench uses a store of its own: these would be ignored.
    [["bench", "extra", "--num", "10"], /unexpected argument "extra"/],
    [
      ["bench", "--data", data, "--num", "10"],
      /--data does not apply to bench/,
    ],
    [["bench", "--repair", "--num", "10"], /--repair does not apply to bench/],
  ];
  for (const [args, message] of cases) {
    const r = await runKv(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.deepEqual(await names(tmp.path), [], "nothing created");
  const bench = await runKv(["bench", "--bench-dir", `${tmp.path}/nope`]);
  assert.equal(bench.code, 1);
  assert.match(bench.stderr, /--bench-dir ".*nope"/);
});

/** bash, to run kv under a file size limit; absent on some machines. */
const hasBash = await new Deno.Command("bash", {
  args: ["-c", "true"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

/** Quotes `a` for bash. */
const shellQuote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;

Deno.test("bad one-shot arguments are usage errors that create and change nothing", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/store`;
  const d = ["--data", dir];
  const cases: Array<[string[], string]> = [
    [["put", "", "v"], "Error: Key must not be empty\n"],
    [["delete", ""], "Error: Key must not be empty\n"],
    [["get", ""], "Error: Key must not be empty\n"],
    [
      ["put", "k".repeat(65_537), "v"],
      "Error: Key is 65537 bytes; the limit is 65536 (KEY_BYTES_MAX)\n",
    ],
    [
      ["put", "k", "a\uFFFDb"],
      "Error: argument 2 holds U+FFFD: the command line was not valid UTF-8 there, " +
      'or held a U+FFFD kv cannot tell from one (use the REPL\'s "\\xNN" escapes, or the library)\n',
    ],
    [
      ["scan", "--limit", "1234567890123456"],
      'Error: --limit needs a non-negative integer of at most 15 digits, got "1234567890123456"\n',
    ],
  ];
  for (const [args, stderr] of cases) {
    assert.deepEqual(
      await runKv([...d, ...args]),
      { code: 2, stdout: "", stderr },
      args.join(" ").slice(0, 40),
    );
  }
  assert.deepEqual(await names(tmp.path), [], "no directory created");
  // Bytes that are not UTF-8 on the command line reach kv as U+FFFD: two
  // different keys would have become one, the second put overwriting the
  // first. Refused instead.
  if (!hasBash) {
    console.log("SKIPPED (bytes on the command line): bash is not installed");
    return;
  }
  assert.equal((await runKv([...d, "put", "k", "v"])).code, 0);
  const kv = [Deno.execPath(), ...kvArgs(d)].map(shellQuote).join(" ");
  for (const bytes of ["\\xff", "\\xfe"]) {
    const out = await new Deno.Command("bash", {
      args: ["-c", `${kv} put $'${bytes}' one`],
      stdout: "piped",
      stderr: "piped",
      env: { KV_HISTORY: "/dev/null", NO_COLOR: "1" },
    }).output();
    assert.equal(out.code, 2, new TextDecoder().decode(out.stderr));
    assert.match(
      new TextDecoder().decode(out.stderr),
      /^Error: argument 1 holds U\+FFFD/,
    );
  }
  assert.deepEqual(await runKv([...d, "scan"]), {
    code: 0,
    stdout: "k\tv\n",
    stderr: "",
  });
});

Deno.test("a store that fails to close makes kv exit non-zero", async () => {
  if (!hasBash) {
    console.log(
      "SKIPPED: bash is not installed, so no file size limit can be set",
    );
    return;
  }
  await using tmp = await tempDir();
  // Under --sync none the PUTs are acknowledged from memory; the log can
  // only grow to 200 KiB (ulimit -f, with SIGXFSZ ignored so that a write
  // past it fails with EFBIG), so the writes at close fail.
  const script = Array.from(
    { length: 40 },
    (_, i) => `PUT k${i} ${"v".repeat(10_000)}\n`,
  ).join("");
  const command = [
    Deno.execPath(),
    ...kvArgs(["--data", tmp.path, "--sync", "none"]),
  ]
    .map(shellQuote).join(" ");
  const child = new Deno.Command("bash", {
    args: ["-c", `ulimit -f 200; trap '' XFSZ; exec ${command}`],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { KV_HISTORY: "/dev/null", NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.match(stderr, /File too large/);
  assert.equal(out.code, 1, stderr);
});

Deno.test("help, version and check output to a reader already gone ends kv with status 141, no stack trace", async () => {
  await using tmp = await tempDir();
  for (
    const args of [["--version"], ["--help"], ["get", "--help"], [
      "check",
      tmp.path,
    ]]
  ) {
    const child = spawnKv(args);
    // Closed before kv starts writing: its first write fails.
    await child.stdout.cancel();
    await child.stdin.close().catch(() => {});
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    assert.deepEqual(
      { code: status.code, stderr },
      { code: 141, stderr: "" },
      args.join(" "),
    );
  }
});

Deno.test("a data directory given as bytes that are not UTF-8 is a usage error that creates nothing, not another directory", async () => {
  await using tmp = await tempDir();
  // As Deno hands kv a path holding \xff: decoded with U+FFFD.
  const dir = `${tmp.path}/new\uFFFDdir`;
  for (const args of [["--data", dir, "put", "k", "v"], ["check", dir]]) {
    const r = await runKv(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /holds U\+FFFD/);
  }
  assert.deepEqual(await names(tmp.path), []);
});

Deno.test("each command's help lists the options it takes, once, and says how to pass a value starting with -", async () => {
  const scan = await runKv(["scan", "--help"]);
  assert.equal(scan.stdout.match(/--limit N/g)?.length, 1);
  const check = await runKv(["check", "--help"]);
  for (const flag of ["--repair", "--memtable-size", "--limit", "--sync"]) {
    assert.ok(!check.stdout.includes(flag), `check --help lists ${flag}`);
  }
  assert.match(
    check.stdout,
    /Put "--" before a directory that starts with "-" \(kv check -- -dir\)/,
  );
  for (const r of [scan, check, await runKv(["--help"])]) {
    assert.match(
      r.stdout,
      r === check
        ? /^(?!.*key or value)/s
        : /Put "--" before a key or value that starts with "-"/,
    );
    assert.match(
      r.stdout,
      /Exit status: 0 on success, 1 .*, 2 on a usage error/,
    );
  }
});
