/**
 * Runs REPL commands against a store and produces their responses, in
 * order, while letting writes overlap: each command is issued as soon as it
 * is read (so a piped script of PUTs shares fsyncs through group commit),
 * and responses are printed strictly in command order. The store keeps
 * issue order, so a GET after a PUT of the same key sees it. "OK" for a
 * write is produced only once the store acknowledged it.
 */
import type { Store } from "../storage/mod.ts";
import { type Command, parseCommand } from "./command.ts";
import { BadLine, type Line } from "./lines.ts";
import { renderBytes, renderHelp, renderValue, statsLines } from "./render.ts";

/** Most commands issued but not yet answered; reading pauses beyond it. */
export const PIPELINE_DEPTH_MAX = 4096;

/** A response: its lines, produced once the command completed. */
export type Response = AsyncIterable<string> | Promise<string[]>;

/** What a line asked for besides its response. */
export interface Issued {
  response: Response;
  quit: boolean;
}

function errorLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `Error: ${message}`;
}

async function* scanLines(
  entries: AsyncIterable<{ key: Uint8Array; value: Uint8Array }>,
): AsyncIterable<string> {
  let n = 0;
  try {
    for await (const { key, value } of entries) {
      n++;
      yield `${renderBytes(key)}\t${renderBytes(value)}`;
    }
  } catch (error) {
    yield errorLine(error);
    return;
  }
  yield `(${n} ${n === 1 ? "key" : "keys"})`;
}

async function lines(work: Promise<string | string[]>): Promise<string[]> {
  try {
    const out = await work;
    return typeof out === "string" ? [out] : out;
  } catch (error) {
    return [errorLine(error)];
  }
}

/** Issues one parsed command; the response settles when it completes. */
export function issue(store: Store, command: Command): Issued {
  const quit = command.name === "QUIT";
  const done = (out: string[]): Issued => ({
    response: Promise.resolve(out),
    quit,
  });
  try {
    switch (command.name) {
      case "EMPTY":
        return done([]);
      case "QUIT":
        return done(["Shutting down..."]);
      case "HELP":
        return done(renderHelp());
      case "STATS":
        return {
          response: lines(
            statsLines(store),
          ),
          quit,
        };
      case "PUT":
        return {
          response: lines(
            store.put(command.key, command.value).then(() => "OK"),
          ),
          quit,
        };
      case "DELETE":
        return {
          response: lines(store.delete(command.key).then(() => "OK")),
          quit,
        };
      case "GET":
        return {
          response: lines(
            store.get(command.key).then((v) =>
              v === undefined ? "Error: key not found" : renderValue(v)
            ),
          ),
          quit,
        };
      case "EXISTS":
        return {
          response: lines(store.has(command.key).then((b) => b ? "1" : "0")),
          quit,
        };
      case "COUNT": {
        const options = command.prefix ? { prefix: command.prefix } : {};
        return { response: lines(store.count(options).then(String)), quit };
      }
      case "SCAN": {
        const options: { prefix?: Uint8Array; limit?: number } = {};
        if (command.prefix) options.prefix = command.prefix;
        if (command.limit !== undefined) options.limit = command.limit;
        return { response: scanLines(store.scan(options)), quit };
      }
      case "RANGE": {
        const options: { start: Uint8Array; end: Uint8Array; limit?: number } =
          {
            start: command.start,
            end: command.end,
          };
        if (command.limit !== undefined) options.limit = command.limit;
        return { response: scanLines(store.scan(options)), quit };
      }
    }
  } catch (error) {
    return done([errorLine(error)]);
  }
}

/** Parses and issues one input line. */
export function issueLine(store: Store, line: Line): Issued {
  if (line instanceof BadLine) {
    return {
      response: Promise.resolve([`Error: ${line.message}`]),
      quit: false,
    };
  }
  const command = parseCommand(line);
  if (command.name === "ERROR") {
    return {
      response: Promise.resolve([`Error: ${command.message}`]),
      quit: false,
    };
  }
  return issue(store, command);
}

/** Whether `line` is a STATS command. */
function isStats(line: Line): boolean {
  return typeof line === "string" && /^\s*stats\s*$/i.test(line);
}

/** Calls `emit` with each line of a response, in order. */
export async function drain(
  response: Response,
  emit: (line: string) => void,
): Promise<void> {
  if (response instanceof Promise) {
    for (const line of await response) emit(line);
    return;
  }
  for await (const line of response) emit(line);
}

/**
 * Runs every line from `input` against the store, pipelined: commands are
 * issued as they are read, at most PIPELINE_DEPTH_MAX in flight, and each
 * response is emitted, in order, as soon as it and those before it are
 * complete. Stops after QUIT/EXIT or at the end of the input.
 */
export async function runPipelined(
  store: Store,
  input: AsyncIterable<Line>,
  emit: (line: string) => void,
): Promise<void> {
  const queue: Array<Response | undefined> = [];
  let head = 0;
  let ended = false;
  let wakePrinter: (() => void) | undefined;
  let wakeReader: (() => void) | undefined;
  /** Responses issued, and emitted in full. */
  let issuedCount = 0;
  let emitted = 0;
  let printerFailure: { error: unknown } | undefined;
  // Settles when the printer fails, so that a reader waiting for a line
  // that may never come (input that does not end) stops at once.
  let failed!: () => void;
  const failure = new Promise<"failed">((resolve) =>
    failed = () => resolve("failed")
  );
  const printer = (async () => {
    for (;;) {
      if (head < queue.length) {
        const response = queue[head]!;
        queue[head++] = undefined;
        await drain(response, emit);
        emitted++;
        wakeReader?.();
        wakeReader = undefined;
      } else if (ended) {
        return;
      } else {
        await new Promise<void>((resolve) => wakePrinter = resolve);
      }
    }
  })().catch((error) => {
    // Output failed (its reader went away): read no more commands.
    printerFailure = { error };
    failed();
    wakeReader?.();
    wakeReader = undefined;
  });
  /** Waits until every response issued so far has been emitted. */
  const caughtUp = async () => {
    while (!printerFailure && emitted < issuedCount) {
      await new Promise<void>((resolve) => wakeReader = resolve);
    }
  };
  const lines = input[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await Promise.race([lines.next(), failure]);
      if (next === "failed" || next.done) break;
      // STATS describes the store as of its place in the script: it is
      // issued once everything before it has completed, and nothing after
      // it until it has.
      const barrier = isStats(next.value);
      if (barrier) await caughtUp();
      const issued = issueLine(store, next.value);
      if (head > 1024 && head * 2 > queue.length) {
        queue.splice(0, head);
        head = 0;
      }
      queue.push(issued.response);
      issuedCount++;
      wakePrinter?.();
      wakePrinter = undefined;
      if (issued.quit) break;
      if (barrier) await caughtUp();
      while (!printerFailure && queue.length - head >= PIPELINE_DEPTH_MAX) {
        await new Promise<void>((resolve) => wakeReader = resolve);
      }
    }
  } finally {
    ended = true;
    wakePrinter?.();
    // Lets go of the input (a read may still be pending: not awaited).
    void Promise.resolve(lines.return?.()).catch(() => {});
    await printer;
  }
  if (printerFailure) throw printerFailure.error;
}
