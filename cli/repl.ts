/**
 * The REPL. On a terminal: prompt, line editing, history kept across
 * sessions, tab completion, Ctrl+C/Ctrl+D shut down cleanly. Piped: no
 * prompt or banner, one response per command in order, commands pipelined
 * so a script of writes shares fsyncs.
 */
import * as readline from "node:readline";
import process from "node:process";
import type { Store } from "../storage/mod.ts";
import { COMMAND_NAMES } from "./command.ts";
import { readLines } from "./lines.ts";
import { describeRecovery } from "./render.ts";
import { drain, issueLine, runPipelined } from "./session.ts";
import { VERSION } from "./version.ts";

/** Most history lines kept in the history file and in memory. */
export const HISTORY_LINES_MAX = 1000;

const encoder = new TextEncoder();

/** Writes all of `text` to stdout, synchronously, so output stays ordered. */
export function writeOut(text: string): void {
  const bytes = encoder.encode(text);
  let done = 0;
  while (done < bytes.length) {
    done += Deno.stdout.writeSync(bytes.subarray(done));
  }
}

/** Path of the history file: $KV_HISTORY, else ~/.kv_history. */
function historyPath(): string | undefined {
  const explicit = Deno.env.get("KV_HISTORY");
  if (explicit) return explicit;
  const home = Deno.env.get("HOME");
  return home ? `${home}/.kv_history` : undefined;
}

function loadHistory(path: string | undefined): string[] {
  if (!path) return [];
  try {
    const lines = Deno.readTextFileSync(path).split("\n").filter((l) =>
      l.length > 0
    );
    return lines.slice(-HISTORY_LINES_MAX).reverse();
  } catch {
    return [];
  }
}

function saveHistory(path: string | undefined, history: string[]): void {
  if (!path) return;
  try {
    const lines = history.slice(0, HISTORY_LINES_MAX).reverse();
    Deno.writeTextFileSync(path, lines.join("\n") + "\n");
  } catch {
    // History is a convenience; failing to save it must not fail the REPL.
  }
}

/** Completes the command name at the start of a line. */
export function complete(line: string): [string[], string] {
  if (/\s/.test(line.trimStart())) return [[], line];
  const word = line.trimStart();
  const upper = word.toUpperCase();
  const hits = COMMAND_NAMES.filter((c) => c.startsWith(upper));
  const lower = word.length > 0 && word === word.toLowerCase();
  return [hits.map((h) => (lower ? h.toLowerCase() : h) + " "), word];
}

/** Runs the REPL on stdin/stdout until QUIT, EOF or Ctrl+C. */
export async function runRepl(store: Store): Promise<void> {
  if (!Deno.stdin.isTerminal()) {
    await runPipelined(
      store,
      readLines(Deno.stdin.readable),
      (line) => writeOut(line + "\n"),
    );
    return;
  }
  const r = store.recovery;
  writeOut(
    `kv ${VERSION}: data directory "${store.dir}", sync ${store.stats().syncMode}. Type HELP for commands.\n`,
  );
  if (r.truncated.length > 0 || r.repaired.length > 0) {
    writeOut(`Recovery: ${describeRecovery(store.stats())}\n`);
  }
  const path = historyPath();
  let history = loadHistory(path);
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: "> ",
    history: [...history],
    historySize: HISTORY_LINES_MAX,
    removeHistoryDuplicates: true,
    completer: complete,
  });
  rl.on("history", (h: string[]) => history = h);
  const closed = new Promise<void>((resolve) => rl.once("close", resolve));
  rl.on("SIGINT", () => rl.close());
  rl.prompt();
  const lines = (async function* () {
    for await (const line of rl) yield line as string;
  })();
  let quit = false;
  const done = (async () => {
    for await (const line of lines) {
      const issued = issueLine(store, line);
      await drain(issued.response, (l) => writeOut(l + "\n"));
      if (issued.quit) {
        quit = true;
        break;
      }
      rl.prompt();
    }
  })();
  await Promise.race([done, closed]);
  if (!quit) writeOut("\nShutting down...\n");
  rl.close();
  saveHistory(path, history);
}
