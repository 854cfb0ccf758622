/**
 * Argument handling for the `kv` executable: flags, subcommands, help, exit
 * codes. `main.ts` at the root only calls {@linkcode main}.
 */
import { parseArgs } from "node:util";
import {
  type CheckReport,
  checkStore,
  denoEnv,
  limits,
  openStore,
  type StoreOptions,
  SYNC_MODES,
  type SyncMode,
} from "../storage/mod.ts";
import { isStoreFile } from "../storage/check.ts";
import {
  ONESHOT_ARITY,
  ONESHOT_USAGE,
  oneShotArgsProblem,
  runOneShot,
} from "./oneshot.ts";
import {
  BENCH_ROUNDS_MAX,
  type BenchConfig,
  BENCHMARK_NAMES,
  BENCHMARKS,
  SEEK_NEXT,
} from "./bench.ts";
import { runKvBench } from "./bench_kv.ts";
import { describeRecovery } from "./render.ts";
import { runRepl, writeOut } from "./repl.ts";
import { VERSION } from "./version.ts";

const GLOBAL_FLAGS = `Options:
  --data DIR        data directory (default ./data)
  --sync MODE       always (default): a write is acknowledged after fsync
                    interval: after the OS has it; fsync at least every 100 ms
                    none: when queued; the OS writes it back, fsync on close
  --repair          open a corrupt write-ahead log by keeping its valid prefix
                    (the rest is copied to DIR/lost/)
  --limit N         scan only: at most N entries
  --memtable-size N memtable size that triggers a flush to a table
                    (bytes, or with K/M suffix; default 4M)
  -h, --help        show help
  -V, --version     show the version`;

/** What every usage text ends with: `--`, and the exit statuses. */
const USAGE_FOOTER =
  `Put "--" before a key or value that starts with "-" (kv put n -- -5).
Exit status: 0 on success, 1 on a failure or a missing key, 2 on a usage error.`;

/** Top-level usage text. */
export const USAGE_TEXT = `kv ${VERSION}: a durable key-value store

Usage:
  kv [repl] [options]   the REPL (reads commands from stdin when piped)
${Object.values(ONESHOT_USAGE).map((u) => `  ${u}`).join("\n")}
  kv bench [options]    db_bench workloads against kv (kv bench --help)

${GLOBAL_FLAGS}

Run "kv COMMAND --help" for one command; type HELP in the REPL for its commands.
${USAGE_FOOTER}`;

/** Options of `kv check`: it reads a closed store and changes nothing. */
const CHECK_FLAGS = `Options:
  --data DIR        the data directory, when DIR is not given (default ./data)
  -h, --help        show help`;

function commandUsage(name: string): string {
  const flags = name === "check" ? CHECK_FLAGS : GLOBAL_FLAGS;
  // check takes a directory, not a key or value.
  const footer = name === "check"
    ? 'Put "--" before a directory that starts with "-" (kv check -- -dir).' +
      USAGE_FOOTER.slice(USAGE_FOOTER.indexOf("\n"))
    : USAGE_FOOTER;
  return `Usage: ${ONESHOT_USAGE[name]}\n\n${flags}\n\n${footer}`;
}

function printErr(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  let done = 0;
  while (done < bytes.length) {
    done += Deno.stderr.writeSync(bytes.subarray(done));
  }
}

/** Usage of `kv bench`. */
export const BENCH_USAGE = `Usage: kv bench [options]

Runs LevelDB db_bench's workloads against kv in a temporary directory and
prints ops/s and latency percentiles as a markdown table.

  --benchmarks LIST   comma-separated, in order (default
                      ${BENCHMARKS.join(",")});
                      also settle: wait for background flushes and merges
                      (its p50 is the wait)
  --num N             keys a fill writes (default 1000000)
  --reads N           gets per read workload; seekrandom does N/10 seeks of
                      ${SEEK_NEXT} entries (default 200000), read one at a
                      time; seekrandom-batch reads them with scan().all()
  --value-size N      bytes per value (default 100)
  --batch N           puts per write call in fills (default 1000; 1 = single puts)
  --sync MODE         always, interval or none (default always)
  --memtable-size N   as for the store (default 4M)
  --cache-size N      block cache size (default 64M)
  --seed N            PRNG seed for keys and values (default 301)
  --bench-dir DIR     where the temporary store goes (default the system temp dir)
  --rounds N          run the workloads N times, each round from a fresh
                      store, then print each one's medians and range of
                      ops/s (default 1; at most ${BENCH_ROUNDS_MAX})`;

function positiveInt(
  text: string | undefined,
  fallback: number,
  what: string,
): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,12}$/.test(text) || Number(text) < 1) {
    throw new RangeError(`${what} needs a positive integer, got "${text}"`);
  }
  return Number(text);
}

async function bench(
  values: Record<string, string | boolean | undefined>,
  sync: SyncMode,
  memtableBytes: number | undefined,
): Promise<number> {
  let config: BenchConfig;
  let rounds: number;
  try {
    rounds = positiveInt(values.rounds as string | undefined, 1, "--rounds");
    if (rounds > BENCH_ROUNDS_MAX) {
      throw new RangeError(
        `--rounds is at most ${BENCH_ROUNDS_MAX} (BENCH_ROUNDS_MAX), got ${rounds}`,
      );
    }
    config = {
      num: positiveInt(values.num as string | undefined, 1_000_000, "--num"),
      reads: positiveInt(
        values.reads as string | undefined,
        200_000,
        "--reads",
      ),
      valueSize: positiveInt(
        values["value-size"] as string | undefined,
        100,
        "--value-size",
      ),
      batch: positiveInt(values.batch as string | undefined, 1000, "--batch"),
      seed: positiveInt(values.seed as string | undefined, 301, "--seed"),
      benchmarks:
        ((values.benchmarks as string | undefined) ?? BENCHMARKS.join(","))
          .split(",")
          .filter((b) => b.length > 0),
    };
    for (const b of config.benchmarks) {
      if (!(BENCHMARK_NAMES as readonly string[]).includes(b)) {
        throw new RangeError(
          `unknown benchmark "${b}"; use ${BENCHMARK_NAMES.join(", ")}`,
        );
      }
    }
  } catch (error) {
    printErr(`Error: ${(error as Error).message}`);
    return 2;
  }
  const options: StoreOptions = { sync };
  if (memtableBytes !== undefined) options.memtableBytes = memtableBytes;
  const cache = values["cache-size"] as string | undefined;
  if (cache !== undefined) {
    const bytes = parseSize(cache);
    if (bytes === undefined) {
      printErr(
        `Error: --cache-size needs a size, like 67108864, 512K or 256M, got "${cache}"`,
      );
      return 2;
    }
    options.blockCacheBytes = bytes;
  }
  try {
    return await runKvBench(
      config,
      options,
      values["bench-dir"] as string | undefined,
      (line) => writeOut(line + "\n"),
      rounds,
    );
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) throw error;
    printErr(`Error: ${(error as Error).message}`);
    return 1;
  }
}

/** Runs `kv check DIR`: 0 when healthy, 1 on any problem. */
async function runCheck(dir: string): Promise<number> {
  let report: CheckReport;
  try {
    report = await checkStore(denoEnv, dir);
  } catch (error) {
    printErr(`Error: ${(error as Error).message}`);
    return 1;
  }
  const n = (x: number) => x.toLocaleString("en-US");
  writeOut(
    `Checked "${dir}": manifest ${report.manifest ?? "none"}, ${
      n(report.tables)
    } tables ` +
      `(${n(report.tableEntries)} entries in ${n(report.blocks)} blocks), ` +
      `${n(report.walSegments)} WAL segment(s) (${
        n(report.walRecords)
      } records)\n`,
  );
  for (const note of report.notes) writeOut(`note: ${note}\n`);
  for (const problem of report.problems) printErr(`problem: ${problem}`);
  if (report.problems.length > 0) {
    printErr(`${report.problems.length} problem(s) found`);
    return 1;
  }
  // A torn tail failed its checksum too; it is not damage (never
  // acknowledged, cut at the next open), but "every checksum verified"
  // would not be true.
  writeOut(
    report.tornTails > 0
      ? "OK: nothing damaged (only the torn tails noted), nothing missing or inconsistent\n"
      : "OK: every checksum verified, nothing missing or inconsistent\n",
  );
  return 0;
}

/** Parses "4194304", "512K" or "4M" (KiB/MiB); undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,12})([kKmM]?)$/.exec(text);
  if (!m) return undefined;
  const unit = m[2]!.toUpperCase();
  return Number(m[1]) * (unit === "K" ? 1024 : unit === "M" ? 1024 * 1024 : 1);
}

/** Runs kv with command-line `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    // The reader of our output went away (`kv --help | head -1`, `kv scan |
    // head`): stop quietly, with the status a shell gives a process that
    // SIGPIPE ends.
    if (error instanceof Deno.errors.BrokenPipe) return EXIT_BROKEN_PIPE;
    throw error;
  }
}

/**
 * `args` with a flag that takes a number and a negative number after it
 * (`--limit -1`) joined as `--limit=-1`, which parseArgs reads as the value
 * (refused then with the flag's own message), where it would call the pair
 * ambiguous. Flags taking a path or a name are left alone (`--data -1`
 * stays an error: such a directory is given as `--data=-1`). Nothing after
 * a `--` changes.
 */
function joinDashValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    const next = args[i + 1];
    if (
      arg.startsWith("--") && takesNumber(arg.slice(2)) &&
      next !== undefined && /^-\d/.test(next)
    ) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** What parseArgs refused, in kv's words. */
function parseArgsProblem(error: Error): string {
  const code = (error as { code?: string }).code;
  // parseArgs names an option as '--limit', '--limit <value>' or, with a
  // short form, '-h, --help': the long name.
  const option = /'(?:-\w, )?(--?[^' ]+)/.exec(error.message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option !== undefined) {
    return `unknown option "${option}" (an argument that starts with "-" goes after "--": kv put n -- -5)`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option !== undefined) {
    if (/ambiguous/.test(error.message)) {
      return `${option} needs a value (one that starts with "-" goes as ${option}=-x)`;
    }
    return `${option} ${
      /argument missing/.test(error.message)
        ? "needs a value"
        : "takes no value"
    }`;
  }
  return error.message;
}

async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinDashValues(args),
      allowPositionals: true,
      strict: true,
      // Which options were given, not defaulted (bench refuses --data).
      tokens: true,
      options: {
        data: { type: "string", default: "./data" },
        sync: { type: "string", default: "always" },
        repair: { type: "boolean", default: false },
        "memtable-size": { type: "string" },
        limit: { type: "string" },
        num: { type: "string" },
        reads: { type: "string" },
        "value-size": { type: "string" },
        batch: { type: "string" },
        benchmarks: { type: "string" },
        seed: { type: "string" },
        "bench-dir": { type: "string" },
        "cache-size": { type: "string" },
        rounds: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
    });
  } catch (error) {
    printErr(`Error: ${parseArgsProblem(error as Error)}`);
    printErr('Run "kv --help" for usage');
    return 2;
  }
  const { values, positionals } = parsed;
  const [name, ...rest] = positionals;
  if (
    name !== undefined && !(name in ONESHOT_ARITY) && name !== "repl" &&
    name !== "bench"
  ) {
    printErr(`Error: unknown command "${name}"`);
    printErr('Run "kv --help" for usage');
    return 2;
  }
  if (values.version) {
    writeOut(`kv ${VERSION}\n`);
    return 0;
  }
  if (name !== "bench") {
    const misplaced = BENCH_FLAGS.find((flag) => values[flag] !== undefined);
    if (misplaced !== undefined) {
      printErr(`Error: --${misplaced} applies to kv bench only`);
      return 2;
    }
  }
  if (values.data === "") {
    printErr("Error: --data needs a directory");
    return 2;
  }
  // Deno decodes the command line as UTF-8, replacing bad bytes with
  // U+FFFD: such a path would name another directory than the one typed.
  const dirArg = name === "check" ? rest[0] ?? values.data! : values.data!;
  if (dirArg.includes("\uFFFD")) {
    printErr(
      `Error: the data directory "${dirArg}" holds U+FFFD: the command line was not valid UTF-8 there, and kv would use another directory than the one given`,
    );
    return 2;
  }
  if (values.help) {
    const text = name === "bench"
      ? BENCH_USAGE
      : name && name !== "repl"
      ? commandUsage(name)
      : USAGE_TEXT;
    writeOut(text + "\n");
    return 0;
  }
  const sync = values.sync as SyncMode;
  if (!SYNC_MODES.includes(sync)) {
    printErr(
      `Error: unknown sync mode "${values.sync}"; use ${SYNC_MODES.join(", ")}`,
    );
    printErr('Run "kv --help" for usage');
    return 2;
  }
  let limit: number | undefined;
  if (values.limit !== undefined) {
    if (name !== "scan" || !/^\d{1,15}$/.test(values.limit)) {
      printErr(
        name === "scan"
          ? `Error: --limit needs a non-negative integer of at most 15 digits, got "${values.limit}"`
          : "Error: --limit applies to scan only",
      );
      return 2;
    }
    limit = Number(values.limit);
  }
  let memtableBytes: number | undefined;
  if (values["memtable-size"] !== undefined) {
    memtableBytes = parseSize(values["memtable-size"]);
    if (
      memtableBytes === undefined ||
      memtableBytes < limits.MEMTABLE_BYTES_MIN ||
      memtableBytes > limits.MEMTABLE_BYTES_MAX
    ) {
      printErr(
        `Error: --memtable-size needs a size from 1K to 1024M, like 4194304, 512K or 4M, got "${
          values["memtable-size"]
        }"`,
      );
      return 2;
    }
  }
  if (name === "check") {
    // check never changes a store: flags that would are mistakes.
    const changing = values.repair
      ? "--repair"
      : values["memtable-size"] !== undefined
      ? "--memtable-size"
      : undefined;
    if (changing !== undefined) {
      printErr(
        `Error: ${changing} does not apply to check, which reads a store without changing it`,
      );
      return 2;
    }
    const [min, max] = ONESHOT_ARITY.check!;
    if (rest.length < min || rest.length > max) {
      printErr("Error: wrong number of arguments for check");
      printErr(commandUsage("check"));
      return 2;
    }
    return await runCheck(rest[0] ?? values.data!);
  }
  if (name === "bench") {
    // Its store is a temporary one: flags and arguments for a store of the
    // user's would be ignored, so they are mistakes.
    const stray = rest.length > 0
      ? `unexpected argument "${rest[0]}"`
      : values.repair
      ? "--repair does not apply to bench"
      : parsed.tokens.some((t) => t.kind === "option" && t.name === "data")
      ? "--data does not apply to bench (its store is a temporary one: see --bench-dir)"
      : undefined;
    if (stray !== undefined) {
      printErr(`Error: ${stray}`);
      printErr('Run "kv bench --help" for usage');
      return 2;
    }
    return await bench(values, sync, memtableBytes);
  }
  if (name !== undefined && name !== "repl") {
    const [min, max] = ONESHOT_ARITY[name]!;
    if (rest.length < min || rest.length > max) {
      printErr(`Error: wrong number of arguments for ${name}`);
      printErr(commandUsage(name));
      return 2;
    }
    const argsProblem = oneShotArgsProblem(name, rest);
    if (argsProblem !== undefined) {
      printErr(`Error: ${argsProblem}`);
      return 2;
    }
  } else if (rest.length > 0) {
    printErr(`Error: unexpected argument "${rest[0]}"`);
    return 2;
  }
  const problem = await dataDirProblem(values.data!, READ_ONLY.has(name));
  if (problem !== undefined) {
    printErr(`Error: ${problem}`);
    return 1;
  }
  let store;
  try {
    const options: StoreOptions = { sync, repair: values.repair! };
    if (memtableBytes !== undefined) options.memtableBytes = memtableBytes;
    store = await openStore(values.data!, options);
  } catch (error) {
    printErr(`Error: ${(error as Error).message}`);
    return 1;
  }
  const interactive = (name === undefined || name === "repl") &&
    Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const r = store.recovery;
  if (
    !interactive && (r.repaired.length > 0 || r.missingSegments.length > 0 ||
      r.truncated.some((c) => c.lost !== undefined))
  ) {
    // What --repair dropped, or a torn tail cut (copied to lost/), where a
    // script's output does not mix with it (the terminal REPL prints it in
    // its banner). The zero-filled space after the last record that a
    // crash leaves is cut without a word.
    printErr(`Recovery: ${describeRecovery(store.stats())}`);
  }
  let code: number;
  try {
    if (name === undefined || name === "repl") {
      code = await runRepl(store, interactive);
    } else {
      code = await runOneShot(store, name, rest, {
        out: (line) => writeOut(line + "\n"),
        err: printErr,
      }, limit);
    }
  } catch (error) {
    // The reader of our output went away (`kv scan | head`): stop quietly,
    // with the status a shell gives a process that SIGPIPE ends.
    if (error instanceof Deno.errors.BrokenPipe) {
      code = EXIT_BROKEN_PIPE;
    } else {
      printErr(`Error: ${(error as Error).message}`);
      code = 1;
    }
  }
  try {
    await store.close();
  } catch (error) {
    // A failed close may have lost writes acknowledged under --sync
    // interval or none: never report success after it.
    printErr(`Error: ${(error as Error).message}`);
    if (code === 0) code = 1;
  }
  return code;
}

/** Flags only `kv bench` takes. */
const BENCH_FLAGS = [
  "num",
  "reads",
  "value-size",
  "batch",
  "benchmarks",
  "seed",
  "bench-dir",
  "cache-size",
  "rounds",
] as const;

/** Whether flag `--name` takes a number (`--limit N`, `--memtable-size 4M`). */
function takesNumber(name: string): boolean {
  return name === "memtable-size" || name === "limit" ||
    (name !== "benchmarks" && name !== "bench-dir" &&
      (BENCH_FLAGS as readonly string[]).includes(name));
}

/** Exit status when stdout's reader has gone: 128 + SIGPIPE. */
const EXIT_BROKEN_PIPE = 141;

/** One-shot commands that only read: they never create a store. */
const READ_ONLY = new Set<string | undefined>(["get", "scan", "stats"]);

/**
 * Why `dir` cannot hold the store, or undefined: a path that is not a
 * directory, or (for a command that only reads, which must not
 * create a store where a mistyped path points) a directory that does not
 * exist or holds no store.
 */
async function dataDirProblem(
  dir: string,
  readOnly: boolean,
): Promise<string | undefined> {
  try {
    const info = await Deno.stat(dir);
    if (!info.isDirectory) return `--data "${dir}" is not a directory`;
    if (readOnly) {
      for await (const entry of Deno.readDir(dir)) {
        if (isStoreFile(entry.name)) return undefined;
      }
      return `data directory "${dir}" holds no kv store (put, delete and the REPL create one)`;
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      return `--data "${dir}": ${(error as Error).message}`;
    }
    if (readOnly) {
      return `data directory "${dir}" does not exist (put, delete and the REPL create one)`;
    }
  }
  return undefined;
}
