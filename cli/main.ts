/**
 * Argument handling for the `kv` executable: flags, subcommands, help, exit
 * codes. `main.ts` at the root only calls {@linkcode main}.
 */
import { parseArgs } from "node:util";
import { openStore, SYNC_MODES, type SyncMode } from "../storage/mod.ts";
import { ONESHOT_ARITY, ONESHOT_USAGE, runOneShot } from "./oneshot.ts";
import { runRepl, writeOut } from "./repl.ts";
import { VERSION } from "./version.ts";

const GLOBAL_FLAGS = `Options:
  --data DIR        data directory (default ./data)
  --sync MODE       always (default): a write is acknowledged after fsync
                    interval: after the OS has it; fsync at least every 100 ms
                    none: when queued; the OS writes it back, fsync on close
  --repair          open a corrupt write-ahead log by keeping its valid prefix
                    (the rest is copied to DIR/lost/)
  -h, --help        show help
  -V, --version     show the version`;

/** Top-level usage text. */
export const USAGE_TEXT = `kv ${VERSION}: a durable key-value store

Usage:
  kv [options]                 interactive REPL (reads commands from stdin when piped)
${Object.values(ONESHOT_USAGE).map((u) => `  ${u}`).join("\n")}

${GLOBAL_FLAGS}

Run "kv COMMAND --help" for one command; type HELP in the REPL for its commands.`;

function commandUsage(name: string): string {
  const extra = name === "scan"
    ? "\n  --limit N         at most N entries"
    : "";
  return `Usage: ${ONESHOT_USAGE[name]}\n\n${GLOBAL_FLAGS}${extra}`;
}

function printErr(line: string): void {
  const bytes = new TextEncoder().encode(line + "\n");
  let done = 0;
  while (done < bytes.length) {
    done += Deno.stderr.writeSync(bytes.subarray(done));
  }
}

/** Runs kv with command-line `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        data: { type: "string", default: "./data" },
        sync: { type: "string", default: "always" },
        repair: { type: "boolean", default: false },
        limit: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
    });
  } catch (error) {
    printErr(`Error: ${(error as Error).message}`);
    printErr('Run "kv --help" for usage');
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    writeOut(`kv ${VERSION}\n`);
    return 0;
  }
  const [name, ...rest] = positionals;
  if (name !== undefined && !(name in ONESHOT_ARITY) && name !== "repl") {
    printErr(`Error: unknown command "${name}"`);
    printErr('Run "kv --help" for usage');
    return 2;
  }
  if (values.help) {
    writeOut(
      (name && name !== "repl" ? commandUsage(name) : USAGE_TEXT) + "\n",
    );
    return 0;
  }
  const sync = values.sync as SyncMode;
  if (!SYNC_MODES.includes(sync)) {
    printErr(
      `Error: unknown sync mode "${values.sync}"; use ${SYNC_MODES.join(", ")}`,
    );
    return 2;
  }
  let limit: number | undefined;
  if (values.limit !== undefined) {
    if (name !== "scan" || !/^\d{1,15}$/.test(values.limit)) {
      printErr(
        name === "scan"
          ? `Error: --limit needs a non-negative integer, got "${values.limit}"`
          : "Error: --limit applies to scan only",
      );
      return 2;
    }
    limit = Number(values.limit);
  }
  if (name !== undefined && name !== "repl") {
    const [min, max] = ONESHOT_ARITY[name]!;
    if (rest.length < min || rest.length > max) {
      printErr(`Error: wrong number of arguments for ${name}`);
      printErr(commandUsage(name));
      return 2;
    }
  } else if (rest.length > 0) {
    printErr(`Error: unexpected argument "${rest[0]}"`);
    return 2;
  }
  let store;
  try {
    store = await openStore(values.data!, { sync, repair: values.repair! });
  } catch (error) {
    printErr(`Error: ${(error as Error).message}`);
    return 1;
  }
  try {
    if (name === undefined || name === "repl") {
      await runRepl(store);
      return 0;
    }
    return await runOneShot(store, name, rest, {
      out: (line) => writeOut(line + "\n"),
      err: printErr,
    }, limit);
  } catch (error) {
    printErr(`Error: ${(error as Error).message}`);
    return 1;
  } finally {
    try {
      await store.close();
    } catch (error) {
      printErr(`Error: ${(error as Error).message}`);
    }
  }
}
