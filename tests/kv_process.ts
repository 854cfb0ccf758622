/**
 * Runs the `kv` executable (main.ts under this Deno) as a subprocess, for
 * end-to-end and crash tests.
 */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Deno arguments that run main.ts with the permissions kv needs. */
export function kvArgs(args: string[]): string[] {
  return [
    "run",
    "--quiet",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    MAIN,
    ...args,
  ];
}

/** Result of a finished kv process. */
export interface KvResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Starts kv with `args`, its stdin, stdout and stderr piped. */
export function spawnKv(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: kvArgs(args),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { KV_HISTORY: "/dev/null", NO_COLOR: "1" },
  }).spawn();
}

/** Runs kv with `args`, feeding `input` on stdin; waits for it to exit. */
export async function runKv(
  args: string[],
  input: string | Uint8Array = "",
): Promise<KvResult> {
  const child = spawnKv(args);
  const writer = child.stdin.getWriter();
  await writer.write(
    typeof input === "string" ? new TextEncoder().encode(input) : input,
  );
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}
