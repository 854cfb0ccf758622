/**
 * REPL command parsing: a pure function from one input line to a command or
 * a usage error. No IO here, so every case is tested directly.
 *
 * Keys are single tokens; a token in double quotes may hold spaces and the
 * escapes \" \\ \n \r \t \0 and \xHH (any byte). The value of PUT is the
 * rest of the line after the key and one space, kept exactly.
 */

/** A parsed command. Keys are raw bytes. */
export type Command =
  | { name: "PUT"; key: Uint8Array; value: Uint8Array }
  | { name: "GET" | "DELETE" | "EXISTS"; key: Uint8Array }
  | { name: "SCAN"; prefix: Uint8Array | undefined; limit: number | undefined }
  | {
    name: "RANGE";
    start: Uint8Array;
    end: Uint8Array;
    limit: number | undefined;
  }
  | { name: "COUNT"; prefix: Uint8Array | undefined }
  | { name: "STATS" | "HELP" | "QUIT" | "EMPTY" };

/** A line that is not a valid command: the message says what to type. */
export interface ParseError {
  name: "ERROR";
  message: string;
}

/** Usage of each command, as printed by HELP and with arity errors. */
export const USAGE: Readonly<Record<string, string>> = {
  PUT: "PUT key value",
  GET: "GET key",
  DELETE: "DELETE key",
  EXISTS: "EXISTS key",
  SCAN: "SCAN [prefix] [LIMIT n]",
  RANGE: "RANGE start end [LIMIT n]",
  COUNT: "COUNT [prefix]",
  STATS: "STATS",
  HELP: "HELP",
  QUIT: "QUIT (or EXIT)",
};

/** Command names, for tab completion. */
export const COMMAND_NAMES: readonly string[] = [
  ...Object.keys(USAGE),
  "EXIT",
];

const encoder = new TextEncoder();

interface Token {
  bytes: Uint8Array;
  /** Offset just past the token in the line. */
  end: number;
}

function isSpace(c: string | undefined): boolean {
  return c === " " || c === "\t";
}

const ESCAPES: Readonly<Record<string, number>> = {
  '"': 0x22,
  "\\": 0x5c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  "0": 0x00,
};

/** Reads one token at `at` (after skipping spaces); undefined at the end. */
function readToken(line: string, at: number): Token | string | undefined {
  while (isSpace(line[at])) at++;
  if (at >= line.length) return undefined;
  if (line[at] !== '"') {
    let end = at;
    while (end < line.length && !isSpace(line[end])) end++;
    return { bytes: encoder.encode(line.slice(at, end)), end };
  }
  const out: number[] = [];
  let i = at + 1;
  while (i < line.length) {
    const c = line[i]!;
    if (c === '"') {
      if (i + 1 < line.length && !isSpace(line[i + 1])) {
        return "a closing quote must be followed by a space";
      }
      return { bytes: new Uint8Array(out), end: i + 1 };
    }
    if (c === "\\") {
      const e = line[i + 1];
      if (e === "x") {
        const hex = line.slice(i + 2, i + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return `bad escape "\\x${hex}"`;
        out.push(parseInt(hex, 16));
        i += 4;
        continue;
      }
      const code = e === undefined ? undefined : ESCAPES[e];
      if (code === undefined) return `bad escape "\\${e ?? ""}"`;
      out.push(code);
      i += 2;
      continue;
    }
    const cp = line.codePointAt(i)!;
    for (const b of encoder.encode(String.fromCodePoint(cp))) out.push(b);
    i += cp > 0xffff ? 2 : 1;
  }
  return "unterminated quote";
}

/** Splits the rest of a line into tokens. */
function tokens(line: string, at: number): Token[] | string {
  const out: Token[] = [];
  for (;;) {
    const t = readToken(line, at);
    if (t === undefined) return out;
    if (typeof t === "string") return t;
    out.push(t);
    at = t.end;
  }
}

function arity(name: string): ParseError {
  return {
    name: "ERROR",
    message: `wrong number of arguments for ${name}; usage: ${USAGE[name]}`,
  };
}

const decoder = new TextDecoder();

/** Parses `LIMIT n` from the end of a token list, in place. */
function takeLimit(args: Token[]): number | undefined | string {
  const n = args.length;
  if (n < 2) return undefined;
  if (decoder.decode(args[n - 2]!.bytes).toUpperCase() !== "LIMIT") {
    return undefined;
  }
  const text = decoder.decode(args[n - 1]!.bytes);
  if (!/^\d{1,15}$/.test(text)) {
    return `LIMIT needs a non-negative integer of at most 15 digits, got "${text}"`;
  }
  args.length = n - 2;
  return Number(text);
}

/** Parses one REPL line. Command names are case-insensitive. */
export function parseCommand(line: string): Command | ParseError {
  let at = 0;
  while (isSpace(line[at])) at++;
  if (at >= line.length) return { name: "EMPTY" };
  let end = at;
  while (end < line.length && !isSpace(line[end])) end++;
  const word = line.slice(at, end).toUpperCase();
  const name = word === "EXIT" ? "QUIT" : word === "DEL" ? "DELETE" : word;
  if (!(name in USAGE)) {
    return {
      name: "ERROR",
      message: `unknown command "${line.slice(at, end)}"; usage: ${
        Object.keys(USAGE).join(", ")
      } (HELP shows each)`,
    };
  }
  if (name === "PUT") {
    const key = readToken(line, end);
    if (typeof key === "string") return { name: "ERROR", message: key };
    if (!key || key.end >= line.length) return arity(name);
    // One separator after the key; the rest of the line is the value.
    const value = encoder.encode(line.slice(key.end + 1));
    return { name, key: key.bytes, value };
  }
  const args = tokens(line, end);
  if (typeof args === "string") return { name: "ERROR", message: args };
  switch (name) {
    case "GET":
    case "DELETE":
    case "EXISTS":
      return args.length === 1 ? { name, key: args[0]!.bytes } : arity(name);
    case "SCAN":
    case "RANGE": {
      const limit = takeLimit(args);
      if (typeof limit === "string") return { name: "ERROR", message: limit };
      if (name === "SCAN") {
        if (args.length > 1) return arity(name);
        return { name, prefix: args[0]?.bytes, limit };
      }
      if (args.length !== 2) return arity(name);
      return { name, start: args[0]!.bytes, end: args[1]!.bytes, limit };
    }
    case "COUNT":
      return args.length <= 1 ? { name, prefix: args[0]?.bytes } : arity(name);
    default:
      return args.length === 0
        ? { name: name as "STATS" | "HELP" | "QUIT" }
        : arity(name);
  }
}
