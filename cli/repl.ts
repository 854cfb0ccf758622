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
import { drain, issueLine, type Response, runPipelined } from "./session.ts";
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
    // Private to the user, as redis-cli keeps its history: it holds values.
    Deno.writeTextFileSync(path, lines.join("\n") + "\n", { mode: 0o600 });
    Deno.chmodSync(path, 0o600);
  } catch {
    // History is a convenience; failing to save it must not fail the REPL.
  }
}

/** Exit status after SIGTERM: 128 + 15, as a shell reports it. */
export const EXIT_TERMINATED = 143;

/**
 * Longest a terminal response prints without letting the event loop turn:
 * a long SCAN still sees Ctrl+C within about this long.
 */
const INTERRUPT_CHECK_MS = 50;

/**
 * Calls `emit` with each line of a response, letting the event loop turn
 * every INTERRUPT_CHECK_MS so that Ctrl+C reaches readline; stops early,
 * closing the response (a scan lets go of its view), once `stop()` holds.
 * Returns whether it stopped early.
 */
async function drainUnlessStopped(
  response: Response,
  emit: (line: string) => void,
  stop: () => boolean,
): Promise<boolean> {
  if (response instanceof Promise) {
    await drain(response, emit);
    return false;
  }
  let turned = performance.now();
  for await (const line of response) {
    emit(line);
    if (performance.now() - turned >= INTERRUPT_CHECK_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      turned = performance.now();
      if (stop()) return true;
    }
  }
  return false;
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

/**
 * Runs the REPL until QUIT, EOF, Ctrl+C or SIGTERM: on stdin/stdout as a
 * terminal when `interactive`, else pipelined. Returns the exit status.
 *
 * On a terminal, every line accepted before Ctrl+D is run and answered
 * before "Shutting down...". Ctrl+C stops a running SCAN or RANGE and
 * shuts down without running lines typed or pasted after the command that
 * was running (it says how many); a write already issued completes.
 * SIGTERM does the same and exits with status 143, leaving the terminal
 * as it found it and the history saved.
 */
export async function runRepl(
  store: Store,
  interactive: boolean,
): Promise<number> {
  if (!interactive) {
    await runPipelined(
      store,
      readLines(Deno.stdin.readable),
      (line) => writeOut(line + "\n"),
    );
    return 0;
  }
  const r = store.recovery;
  writeOut(
    `kv ${VERSION}: data directory "${store.dir}", sync ${store.stats().syncMode}. Type HELP for commands.\n`,
  );
  if (
    r.truncated.length > 0 || r.repaired.length > 0 ||
    r.missingSegments.length > 0
  ) {
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
  let interrupted = false;
  let terminated = false;
  let closed = false;
  rl.once("close", () => closed = true);
  rl.on("SIGINT", () => {
    interrupted = true;
    rl.close();
  });
  const onTerm = () => {
    terminated = interrupted = true;
    rl.close();
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  let quit = false;
  let skipped = 0;
  try {
    rl.prompt();
    // Lines readline accepted before it closed still come, in order.
    for await (const line of rl) {
      if (interrupted) {
        skipped++;
        continue;
      }
      const issued = issueLine(store, line as string);
      const emit = (l: string) => writeOut(l + "\n");
      if (await drainUnlessStopped(issued.response, emit, () => interrupted)) {
        emit("(interrupted)");
      }
      if (issued.quit) {
        quit = true;
        break;
      }
      if (!closed) rl.prompt();
    }
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    rl.close();
    saveHistory(path, history);
  }
  if (!quit) {
    if (interrupted && skipped > 0) {
      writeOut(
        `\n(${skipped} ${
          skipped === 1 ? "command" : "commands"
        } not run: interrupted)`,
      );
    }
    writeOut("\nShutting down...\n");
  }
  return terminated ? EXIT_TERMINATED : 0;
}
