/**
 * The REPL on a terminal, driven through a pseudo-terminal with script(1):
 * banner and "> " prompt, responses, clean shutdown, and history kept
 * across sessions (Up recalls a command typed in an earlier session).
 */
import assert from "node:assert/strict";
import { kvArgs } from "../kv_process.ts";
import { tempDir } from "../helpers.ts";

/** Terminal control sequences (ESC [ ... letter), removed from output. */
const ANSI_ESCAPE = new RegExp(
  String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]",
  "g",
);

/** Runs kv under a pty with `input` typed; the output with escapes removed. */
async function onTerminal(
  args: string[],
  input: string,
  history: string,
): Promise<{ code: number; out: string }> {
  const command = [Deno.execPath(), ...kvArgs(args)].map((a) =>
    `'${a.replaceAll("'", "'\\''")}'`
  ).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { KV_HISTORY: history, NO_COLOR: "1", TERM: "xterm" },
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(input));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout)
    .replace(ANSI_ESCAPE, "")
    .replaceAll("\r", "");
  return { code: out.code, out: text };
}

const hasScript = await new Deno.Command("script", {
  args: ["--version"],
  stdout: "null",
  stderr: "null",
})
  .output().then((o) => o.success, () => false);

Deno.test("on a terminal the REPL prompts, answers, keeps history across sessions and shuts down cleanly", async () => {
  if (!hasScript) {
    console.log(
      "SKIPPED: script(1) (util-linux) is not installed, so no pseudo-terminal can be made",
    );
    return;
  }
  await using tmp = await tempDir();
  const history = `${tmp.path}/history`;
  const data = `${tmp.path}/data`;
  const first = await onTerminal(
    ["--data", data],
    "PUT greeting hello there\nGET greeting\nQUIT\n",
    history,
  );
  assert.equal(first.code, 0, first.out);
  assert.match(
    first.out,
    /^kv \d+\.\d+\.\d+: data directory ".*", sync always\. Type HELP for commands\.$/m,
  );
  assert.match(first.out, /> /);
  // Input typed ahead is echoed first; each response follows a prompt.
  assert.match(first.out, /^(> )?OK$/m);
  assert.match(first.out, /^(> )?hello there$/m);
  assert.match(first.out, /^(> )?Shutting down\.\.\.$/m);
  assert.deepEqual((await Deno.readTextFile(history)).trim().split("\n"), [
    "PUT greeting hello there",
    "GET greeting",
    "QUIT",
  ]);
  // Up twice recalls "GET greeting" from the first session.
  const second = await onTerminal(
    ["--data", data],
    "\x1b[A\x1b[A\nQUIT\n",
    history,
  );
  assert.equal(second.code, 0, second.out);
  assert.match(second.out, /^(> )?hello there$/m, second.out);
});
