/**
 * One-shot commands: `kv get KEY`, `kv put KEY VALUE`, `kv delete KEY`,
 * `kv scan [PREFIX]`, `kv stats`. Each returns an exit code and writes its
 * output through the given functions.
 */
import type { Store } from "../storage/mod.ts";
import { keyToBinary } from "../storage/input.ts";
import { renderBytes, renderValue, statsLines } from "./render.ts";

/** Output channels of a one-shot command. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
}

const encoder = new TextEncoder();

/** Arity of each one-shot command: [min, max] positional arguments. */
export const ONESHOT_ARITY: Readonly<Record<string, [number, number]>> = {
  get: [1, 1],
  put: [2, 2],
  delete: [1, 1],
  scan: [0, 1],
  stats: [0, 0],
  check: [0, 1],
};

/** Usage line of each one-shot command. */
export const ONESHOT_USAGE: Readonly<Record<string, string>> = {
  get: "kv get KEY            print the value of KEY (exit 1 if missing)",
  put: "kv put KEY VALUE      set KEY to VALUE",
  delete: "kv delete KEY         remove KEY",
  scan:
    "kv scan [PREFIX]      list keys and values (tab-separated), in key order",
  stats: "kv stats              print statistics",
  check:
    "kv check [DIR]        verify every checksum and file of a closed store (default --data)",
};

/**
 * Why the arguments of one-shot command `name` cannot be used, or
 * undefined: checked before the store is opened, so that a bad key is a
 * usage error (exit 2) that creates and changes nothing.
 *
 * Arguments are text: Deno decodes the command line as UTF-8, replacing
 * bytes that are not with U+FFFD, so two different byte strings could
 * reach kv as one key. An argument holding U+FFFD is refused (a real
 * U+FFFD cannot be told from a replaced byte); the REPL's "\xNN" escapes
 * and the library take any bytes.
 */
export function oneShotArgsProblem(
  name: string,
  args: readonly string[],
): string | undefined {
  for (const [i, arg] of args.entries()) {
    if (arg.includes("\uFFFD")) {
      return `argument ${
        i + 1
      } holds U+FFFD: the command line was not valid UTF-8 there, ` +
        'or held a U+FFFD kv cannot tell from one (use the REPL\'s "\\xNN" escapes, or the library)';
    }
  }
  if (name === "get" || name === "put" || name === "delete") {
    try {
      keyToBinary(args[0]!);
    } catch (error) {
      return (error as Error).message;
    }
  }
  // A value needs no check here: no command line holds one past
  // VALUE_BYTES_MAX (Linux takes 128 KiB per argument).
  return undefined;
}

/** Runs one command; returns the process exit code. */
export async function runOneShot(
  store: Store,
  name: string,
  args: string[],
  io: Output,
  limit?: number,
): Promise<number> {
  switch (name) {
    case "get": {
      const value = await store.get(args[0]!);
      if (value === undefined) {
        io.err("Error: key not found");
        return 1;
      }
      io.out(renderValue(value));
      return 0;
    }
    case "put":
      await store.put(args[0]!, encoder.encode(args[1]!));
      io.out("OK");
      return 0;
    case "delete":
      await store.delete(args[0]!);
      io.out("OK");
      return 0;
    case "scan": {
      const options: { prefix?: string; limit?: number } = {};
      if (args[0] !== undefined) options.prefix = args[0];
      if (limit !== undefined) options.limit = limit;
      for await (const { key, value } of store.scan(options)) {
        io.out(`${renderBytes(key)}\t${renderBytes(value)}`);
      }
      return 0;
    }
    case "stats":
      for (const line of await statsLines(store)) {
        io.out(line);
      }
      return 0;
  }
  io.err(`Error: unknown command "${name}"`);
  return 2;
}
