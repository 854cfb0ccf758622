/**
 * The `kv` executable: flags → real environment → REPL or one-shot command.
 *
 * @module
 */
import { main } from "./cli/mod.ts";

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
