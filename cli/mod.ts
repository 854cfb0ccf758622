/**
 * kv's command-line interface: the REPL and one-shot commands. Command
 * parsing and rendering are pure; IO happens in repl.ts and main.ts.
 *
 * @module
 */
export { main, USAGE_TEXT } from "./main.ts";
export {
  type Command,
  parseCommand,
  type ParseError,
  USAGE,
} from "./command.ts";
export { renderBytes, renderStats, renderValue } from "./render.ts";
export { issueLine, runPipelined } from "./session.ts";
export { readLines } from "./lines.ts";
export { VERSION } from "./version.ts";
