/**
 * `deno task compile` builds one `kv` executable. deno compile downloads its
 * runtime (denort) on first use; where that download cannot happen (no
 * internet), this test says so and skips. Otherwise the binary must answer
 * --version and run a piped session.
 */
import assert from "node:assert/strict";
import { tempDir } from "./helpers.ts";

Deno.test("the compiled kv executable runs a session (skips when denort cannot be downloaded)", async () => {
  await using tmp = await tempDir();
  const root = new URL("..", import.meta.url).pathname;
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const task: string = config.tasks.compile;
  assert.match(task, /^deno compile .* --output dist\/kv main\.ts$/);
  const args = task.split(" ").slice(1).map((a) =>
    a === "dist/kv" ? `${tmp.path}/kv` : a
  );
  const built = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(built.stderr);
  if (!built.success) {
    if (/dl\.deno\.land|dns error|error sending request|Download/i.test(err)) {
      console.log(
        `SKIPPED: deno compile could not download its runtime (denort): ${
          err.split("\n").find((l) =>
            /dns error|error sending request/i.test(l)
          )?.trim()
        }`,
      );
      return;
    }
    assert.fail(`deno compile failed:\n${err}`);
  }
  const bin = `${tmp.path}/kv`;
  const version = await new Deno.Command(bin, {
    args: ["--version"],
    stdout: "piped",
  }).output();
  assert.match(new TextDecoder().decode(version.stdout), /^kv \d/);
  // A small memtable, so that tables are flushed by the background worker
  // thread, whose module the executable must include.
  const child = new Deno.Command(bin, {
    args: ["--data", `${tmp.path}/data`, "--memtable-size", "4K"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  let script = "";
  for (let i = 0; i < 300; i++) script += `PUT key${i} value ${i}\n`;
  await w.write(new TextEncoder().encode(script + "GET key7\nCOUNT\n"));
  await w.close();
  const out = await child.output();
  assert.equal(
    new TextDecoder().decode(out.stdout),
    "OK\n".repeat(300) + "value 7\n300\n",
  );
  const files = [...Deno.readDirSync(`${tmp.path}/data`)].map((e) => e.name);
  assert.ok(files.some((n) => n.endsWith(".sst")), `tables: ${files}`);
});
