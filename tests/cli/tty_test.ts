/**
 * The REPL on a terminal, driven through a pseudo-terminal with script(1):
 * banner and "> " prompt, responses, clean shutdown, and history kept
 * across sessions (Up recalls a command typed in an earlier session).
 */
import assert from "node:assert/strict";
import { kvArgs } from "../kv_process.ts";
import { tempDir } from "../helpers.ts";
import { openStore } from "../../storage/mod.ts";

/** Terminal control sequences (ESC [ ... letter), removed from output. */
const ANSI_ESCAPE = new RegExp(
  String.fromCharCode(27) + "\\[[0-9;]*[A-Za-z]",
  "g",
);

/** Starts kv with `args` under a pty made by script(1); stdin and stdout piped. */
function spawnOnTerminal(args: string[], history: string): Deno.ChildProcess {
  const command = [Deno.execPath(), ...kvArgs(args)].map((a) =>
    `'${a.replaceAll("'", "'\\''")}'`
  ).join(" ");
  return new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    env: { KV_HISTORY: history, NO_COLOR: "1", TERM: "xterm" },
  }).spawn();
}

/** Runs kv under a pty with `input` typed; the output with escapes removed. */
async function onTerminal(
  args: string[],
  input: string,
  history: string,
): Promise<{ code: number; out: string }> {
  const child = spawnOnTerminal(args, history);
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

Deno.test("on a terminal, lines pasted before Ctrl+D are all run before shutting down", async () => {
  if (!hasScript) {
    console.log("SKIPPED: script(1) (util-linux) is not installed");
    return;
  }
  await using tmp = await tempDir();
  const data = `${tmp.path}/data`;
  const pasted = Array.from({ length: 20 }, (_, i) => `PUT k${i} v\n`).join("");
  const r = await onTerminal(
    ["--data", data],
    pasted + "\x04",
    `${tmp.path}/history`,
  );
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.match(/^(> )?OK$/gm)?.length, 20, r.out);
  assert.ok(
    r.out.lastIndexOf("OK") < r.out.indexOf("Shutting down..."),
    r.out,
  );
  const store = await openStore(data);
  try {
    assert.equal(await store.count(), 20);
  } finally {
    await store.close();
  }
});

/**
 * Starts kv under a pty; returns a way to type, to wait for output
 * matching a pattern, and to collect the rest once it exits.
 */
function startOnTerminal(args: string[], history: string) {
  const child = spawnOnTerminal(args, history);
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let out = "";
  return {
    type: (text: string) => writer.write(new TextEncoder().encode(text)),
    /** Reads until `pattern` matches the output so far (or it ends). */
    async waitFor(pattern: RegExp): Promise<boolean> {
      while (!pattern.test(out)) {
        const { value, done } = await reader.read();
        if (done) return false;
        out += value;
      }
      return true;
    },
    async finish(): Promise<{ code: number; out: string }> {
      await writer.close().catch(() => {});
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        out += value;
      }
      const { code } = await child.status;
      return {
        code,
        out: out.replace(ANSI_ESCAPE, "").replaceAll("\r", ""),
      };
    },
  };
}

Deno.test("on a terminal, Ctrl+C stops a long SCAN and shuts down cleanly", async () => {
  if (!hasScript) {
    console.log("SKIPPED: script(1) (util-linux) is not installed");
    return;
  }
  await using tmp = await tempDir();
  const data = `${tmp.path}/data`;
  const keys = 100_000;
  const store = await openStore(data, { sync: "none" });
  for (let i = 0; i < keys; i += 1000) {
    await store.batch(
      Array.from({ length: 1000 }, (_, j) => ({
        type: "put" as const,
        key: `key${String(i + j).padStart(7, "0")}`,
        value: "v",
      })),
    );
  }
  await store.close();
  const kv = startOnTerminal(["--data", data], `${tmp.path}/history`);
  assert.ok(await kv.waitFor(/> /), "a prompt");
  await kv.type("SCAN\n");
  assert.ok(await kv.waitFor(/key0001000/), "the scan is printing");
  await kv.type("\x03");
  const r = await kv.finish();
  assert.equal(r.code, 0, r.out.slice(-500));
  assert.match(r.out, /^\(interrupted\)$/m);
  assert.match(r.out, /^Shutting down\.\.\.$/m);
  const printed = r.out.match(/^key\d{7}\tv$/gm)?.length ?? 0;
  assert.ok(printed < keys, `stopped early: ${printed} of ${keys} printed`);
  assert.doesNotMatch(r.out, /\(100000 keys\)/);
});

Deno.test("on a terminal, SIGTERM shuts down with status 143 and saves the history", async () => {
  if (!hasScript) {
    console.log("SKIPPED: script(1) (util-linux) is not installed");
    return;
  }
  await using tmp = await tempDir();
  const data = `${tmp.path}/data-sigterm`;
  const history = `${tmp.path}/history`;
  const kv = startOnTerminal(["--data", data], history);
  assert.ok(await kv.waitFor(/> /), "a prompt");
  await kv.type("PUT a 1\n");
  assert.ok(await kv.waitFor(/OK/), "the put answered");
  // The kv process is script(1)'s child; find it by its data directory.
  const found = await new Deno.Command("pgrep", {
    args: ["-f", `main.ts --data ${data}$`],
    stdout: "piped",
  }).output();
  const pids = new TextDecoder().decode(found.stdout).trim().split("\n")
    .filter((p) => p !== "").map(Number);
  assert.ok(pids.length >= 1, "kv is running");
  for (const pid of pids) Deno.kill(pid, "SIGTERM");
  const r = await kv.finish();
  assert.equal(r.code, 143, r.out);
  assert.match(r.out, /^Shutting down\.\.\.$/m);
  assert.equal((await Deno.readTextFile(history)).trim(), "PUT a 1");
  assert.equal((Deno.statSync(history).mode ?? 0) & 0o777, 0o600);
});
